"""How an enterprise tool is made: argument base model, shared field types, the tool
definition, the LangChain tool class, and the reference and status helpers effects use.

A tool is a ``ToolDefinition`` (name, argument model, owning function, risk, the
arguments that name what it acts on (``targets``), and either an ``effect`` run once per
idempotency key or a read-only ``query``) turned by
``build_tool`` into an ``EnterpriseTool``: a LangChain ``StructuredTool`` whose schema
has the model-visible arguments plus ``idempotency_key`` as an ``InjectedToolArg`` (so it
never appears in ``tool_call_schema``, the schema a model sees). The tool returns its
result as content and a ``ToolReceipt`` as artifact, and ``EnterpriseTool.recall`` gives
the enterprise's record of the call made under a key. What each tool does lives in the
system modules (``tools.crm`` …).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from langchain_core.tools import InjectedToolArg, StructuredTool
from pydantic import BaseModel, ConfigDict, Field, SkipValidation, create_model
from sqlalchemy import Connection, Select, Table, bindparam, func, select, update

from decisionops.agent.errors import ToolArgumentsError, ToolCallError
from decisionops.agent.models import Risk
from decisionops.agent.ports import CompensationSpec, PreviewSpec, TargetLookup, ToolReceipt, ToolSpec
from decisionops.tools.enterprise import EffectContext, Enterprise

__all__ = [
    "Body",
    "EnterpriseTool",
    "EntityId",
    "Reason",
    "Subject",
    "ToolArgs",
    "ToolDefinition",
    "build_tool",
    "compensated_by",
    "count_with_status",
    "looked_up_by",
    "require",
    "set_status",
]

EntityId = Annotated[str, Field(min_length=1, max_length=64,
                                pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/+-]*$")]
Subject = Annotated[str, Field(min_length=1, max_length=200)]
Body = Annotated[str, Field(min_length=1, max_length=4000)]
Reason = Annotated[str, Field(min_length=1, max_length=500)]

_KEY_HELP = ("Idempotency key: the same key returns the first result and changes nothing. "
             "Supplied by the executor, never by a model.")


class ToolArgs(BaseModel):
    """Base of every tool's arguments: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


@dataclass(frozen=True)
class ToolDefinition:
    """What a system module declares about one tool; ``build_tool`` binds it."""

    name: str
    """``system.action``."""
    description: str
    arguments: type[ToolArgs]
    function: str
    risk: Risk
    effect: Callable[[EffectContext, Any], dict[str, Any]] | None = None
    """Changes the system; runs once per idempotency key."""
    query: Callable[[Connection, Any], dict[str, Any]] | None = None
    """Reads only; nothing is recorded."""
    compensation: CompensationSpec | None = None
    targets: tuple[str, ...] = ()
    """Arguments that name what the call acts on; an approval binds them (see
    ``agent.ports.ToolSpec.targets``)."""
    qualifiers: tuple[str, ...] = ()
    """Targets that name no entity (``agent.ports.ToolSpec.qualifiers``)."""
    lookups: tuple[TargetLookup, ...] = ()
    """Read-only tools that confirm the targets exist before anyone is asked (see
    ``agent.ports.ToolSpec.lookups``); the registry checks they are reads."""
    preview: PreviewSpec | None = None
    """A read-only tool showing what the call would change (see
    ``agent.ports.PreviewSpec``); the registry checks it is a read."""

    def __post_init__(self) -> None:
        if (self.effect is None) == (self.query is None):
            raise ValueError(f"{self.name}: give exactly one of effect or query")
        for lookup in self.lookups:
            for source in lookup.arguments.values():
                if source not in self.arguments.model_fields:
                    raise ValueError(f"{self.name}: lookup {lookup.tool} reads {source!r}, "
                                     f"which is not a field of {self.arguments.__name__}")
        for target in self.targets:
            if target not in self.arguments.model_fields:
                raise ValueError(f"{self.name}: target {target!r} is not a field of "
                                 f"{self.arguments.__name__}")


class EnterpriseTool(StructuredTool):
    """A LangChain tool acting on the reference enterprise."""

    arguments_model: Annotated[type[ToolArgs], SkipValidation()]
    """The arguments a model or approver supplies (no idempotency key)."""
    recaller: Annotated[Callable[[str], ToolReceipt | None], SkipValidation()]
    """Bound by ``build_tool``: the enterprise's record of the call under a key."""

    def recall(self, idempotency_key: str) -> ToolReceipt | None:
        """The stored receipt (``replayed``) of the call made with this key, or ``None``
        when there is none; a read-only tool records nothing and always answers ``None``."""
        return self.recaller(idempotency_key)

    def spec(self) -> ToolSpec:
        meta = self.metadata or {}
        compensation = meta.get("compensation")
        return ToolSpec(
            name=self.name,
            function=meta["function"],
            description=self.description,
            risk=Risk(meta["risk"]),
            side_effects=meta["side_effects"],
            compensation=CompensationSpec(**compensation) if compensation else None,
            parameters=self.arguments_model.model_json_schema(),
            targets=tuple(meta.get("targets", ())),
            qualifiers=tuple(meta.get("qualifiers", ())),
            lookups=tuple(TargetLookup(**lookup) for lookup in meta.get("lookups", ())),
            preview=PreviewSpec(**meta["preview"]) if meta.get("preview") else None,
            in_process=True,
        )


def compensated_by(tool: str, *, reason_field: str = "reason",
                   **from_result: str) -> CompensationSpec:
    """``compensated_by("crm.withdraw_offer", offer_id="offer_id")``: undo by calling
    ``tool`` with the named result fields and the fixed reason ``"compensated"``."""
    return CompensationSpec(tool=tool, arguments_from_result=from_result,
                            fixed_arguments={reason_field: "compensated"})


def looked_up_by(tool: str, *, matches: dict[str, str] | None = None,
                 at_least: dict[str, str] | None = None, **arguments: str) -> TargetLookup:
    """``looked_up_by("crm.get_account", account_id="account_id")``: before routing,
    confirm the target exists by calling the read-only ``tool`` with the call's own
    arguments (lookup argument = call argument); ``matches``: result field → the call's
    argument that must equal it; ``at_least``: result field → the call's argument that
    must not exceed it."""
    return TargetLookup(tool=tool, arguments=arguments, matches=matches or {},
                        at_least=at_least or {})


def build_tool(enterprise: Enterprise, definition: ToolDefinition) -> EnterpriseTool:
    """Bind a definition to an enterprise. The key is required for tools with effects and
    optional (ignored) for reads, so the executor can pass one to every tool."""
    side_effects = definition.effect is not None
    if side_effects:
        key_field: Any = (Annotated[str, InjectedToolArg(),
                                    Field(min_length=1, max_length=200,
                                          description=_KEY_HELP)], ...)
    else:
        key_field = (Annotated[str | None, InjectedToolArg(),
                               Field(max_length=200, description=_KEY_HELP)], None)
    call_model = create_model(f"{definition.arguments.__name__}Call",
                              __base__=definition.arguments, idempotency_key=key_field)

    effect, query = definition.effect, definition.query
    model, name = definition.arguments, definition.name

    def run(idempotency_key: str | None = None,
            **values: Any) -> tuple[dict[str, Any], ToolReceipt]:
        arguments = model.model_validate(values)
        if effect is not None and idempotency_key is not None:
            performed = enterprise.perform(
                name, arguments.model_dump(mode="json"), idempotency_key=idempotency_key,
                effect=lambda ctx: effect(ctx, arguments))
            result, replayed = performed.result, performed.replayed
        elif query is not None:
            result = enterprise.read(name, lambda conn: query(conn, arguments))
            replayed = False
        else:  # the schema requires the key for tools with effects
            raise ToolArgumentsError("required for a tool with side effects",
                                     field="idempotency_key", location=name)
        receipt = ToolReceipt(tool=name, idempotency_key=idempotency_key or "",
                              result=result, replayed=replayed)
        return result, receipt

    def recall(idempotency_key: str) -> ToolReceipt | None:
        if effect is None:  # a read leaves no record: there is nothing to reconcile
            return None
        performed = enterprise.recall(name, idempotency_key)
        if performed is None:
            return None
        return ToolReceipt(tool=name, idempotency_key=idempotency_key,
                           result=performed.result, replayed=True)

    return EnterpriseTool.from_function(
        func=run,
        name=definition.name,
        description=definition.description,
        args_schema=call_model,
        arguments_model=definition.arguments,
        recaller=recall,
        infer_schema=False,
        response_format="content_and_artifact",
        metadata={
            "function": definition.function,
            "risk": definition.risk.value,
            "side_effects": side_effects,
            "compensation": (definition.compensation.model_dump(mode="json")
                             if definition.compensation else None),
            # Kept out of the JSON schema: that goes to LLM endpoints in strict mode.
            "targets": list(definition.targets),
            "qualifiers": list(definition.qualifiers),
            "lookups": [lookup.model_dump() for lookup in definition.lookups],
            "preview": definition.preview.model_dump() if definition.preview else None,
        },
    )


# --------------------------------------------------------------------------- helpers for effects


@functools.cache
def _by_key(table: Table) -> Select[Any]:
    """``table``'s row by primary key, built once per table (effects look rows up on
    every call)."""
    (column,) = table.primary_key.columns
    return select(table).where(column == bindparam("key"))


@functools.cache
def _count_where(table: Table, column: str) -> Select[Any]:
    """How many of ``table``'s rows have ``column`` = :key and status = :status, built
    once per table (previews and reads count on every call)."""
    return (select(func.count()).select_from(table)
            .where(table.c[column] == bindparam("key"), table.c.status == bindparam("status")))


def count_with_status(conn: Connection, table: Table, column: str, key: str, status: str
                      ) -> int:
    """How many of ``table``'s rows with ``column`` = ``key`` are in ``status``."""
    return conn.execute(_count_where(table, column), {"key": key, "status": status}).scalar_one()


def require(conn: Connection, table: Table, key: str, what: str) -> dict[str, Any]:
    """The row whose primary key is ``key``; an unknown reference fails for good."""
    row = conn.execute(_by_key(table), {"key": key}).mappings().first()
    if row is None:
        raise ToolCallError(f"unknown {what} {key!r}", retryable=False, reference=key)
    return dict(row)


def set_status(ctx: EffectContext, table: Table, key: str, what: str, *, to: str,
               reason: str, allowed_from: tuple[str, ...]) -> dict[str, Any]:
    """Move a record to status ``to``. Already there: a no-op (so compensation can be
    retried under a new key). Any other status outside ``allowed_from``: refused."""
    (column,) = table.primary_key.columns
    row = require(ctx.conn, table, key, what)
    previous = row["status"]
    if previous != to:
        if previous not in allowed_from:
            raise ToolCallError(f"{what} {key!r} is {previous} and cannot become {to}",
                                retryable=False, reference=key)
        ctx.conn.execute(update(table).where(column == key).values(
            status=to, status_reason=reason, updated_at=ctx.timestamp()))
    return {column.name: key, "status": to, "previous_status": previous}
