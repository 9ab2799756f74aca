"""``Enterprise``: the SQLite-backed reference systems the demo and the tests act on.

It owns the database (creation, seed, schema version), runs each tool effect exactly
once per idempotency key (the effect and its ``tool_calls`` row commit in one
transaction), recalls the recorded result of a key, plays back injected faults, and
answers the queries tests and the demo summary need. What each tool does lives in the
tool modules (``tools.crm`` …).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, bindparam, delete, func, insert, literal_column, select

from decisionops.agent.errors import (
    ConfigError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    ToolCallError,
)
from decisionops.agent.hashing import canonical_json, digest
from decisionops.agent.ports import Clock, SystemClock
from decisionops.tools.enterprise import schema
from decisionops.tools.enterprise._catalog import reference_world
from decisionops.tools.enterprise._engine import database_errors, make_engine, sqlite_url
from decisionops.tools.enterprise._faults import (
    Fault,
    FaultMode,
    add_fault,
    list_faults,
    pending,
    take_fault,
)
from decisionops.tools.enterprise._seed import seed_world

__all__ = ["Effect", "EffectContext", "Enterprise", "Performed", "utc_iso"]

T = TypeVar("T")

_CALL_BY_KEY = select(schema.tool_calls).where(
    schema.tool_calls.c.idempotency_key == bindparam("key"))
"""Built once: every call with side effects looks its key up first."""
_INSERT_CALL = insert(schema.tool_calls)

_BUSINESS_TABLES = (
    "accounts", "retention_offers", "tasks", "tickets", "credits", "sites", "skus", "inventory",
    "stock_transfers", "purchase_orders", "assets", "technicians", "work_orders", "downtimes",
    "outbox", "tool_calls",
)


def utc_iso(moment: datetime) -> str:
    """``2026-11-20T09:15:00.123Z``: sortable as text."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class EffectContext:
    """What an effect function receives: the open write transaction and the call's identity."""

    conn: Connection
    tool: str
    idempotency_key: str
    now: datetime

    def new_id(self, prefix: str) -> str:
        """A record id derived from the key: the same call always names the same record."""
        return f"{prefix}-{digest([self.tool, self.idempotency_key])[:10].upper()}"

    def timestamp(self, after: timedelta = timedelta()) -> str:
        return utc_iso(self.now + after)


@dataclass(frozen=True)
class Performed:
    result: dict[str, Any]
    replayed: bool
    """The key had been seen: this is the stored first result and nothing changed."""


@dataclass(frozen=True)
class Effect:
    """One recorded tool call that changed something (a ``tool_calls`` row)."""

    idempotency_key: str
    tool: str
    arguments_hash: str
    arguments: dict[str, Any]
    result: dict[str, Any]
    created_at: str


class _FaultPending(Exception):
    """Internal: a fault is armed for this tool; leave the transaction without acting."""


class Enterprise:
    """The reference enterprise in one SQLite file (a path or a ``sqlite:///`` URL).

    >>> ent = Enterprise(".decisionops/enterprise.sqlite"); ent.seed()  # doctest: +SKIP
    """

    def __init__(self, url_or_path: str | Path, *, clock: Clock | None = None,
                 busy_timeout_s: float = 30.0) -> None:
        self.url = sqlite_url(url_or_path)
        self._clock = clock or SystemClock()
        self._engine = make_engine(self.url, busy_timeout_s=busy_timeout_s)
        self._reader = make_engine(self.url, busy_timeout_s=busy_timeout_s, begin="DEFERRED")
        # SQLite has one writer at a time. Threads of this process queue here, where the
        # hand-over is immediate, instead of in SQLite's busy handler, which sleeps.
        self._write_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Enterprise({self.url!r})"

    def __enter__(self) -> Enterprise:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._engine.dispose()
        self._reader.dispose()

    # ------------------------------------------------------------------- lifecycle

    def create(self) -> None:
        """Create the tables if missing; refuse a file written by another schema version."""
        with self._write_lock, self._engine.begin() as conn:
            schema.metadata.create_all(conn)
            found = conn.execute(select(schema.meta.c.value)
                                 .where(schema.meta.c.key == "schema_version")).scalar()
            if found is None:
                conn.execute(insert(schema.meta).values(key="schema_version",
                                                        value=str(schema.SCHEMA_VERSION)))
            elif found != str(schema.SCHEMA_VERSION):
                raise ConfigError(f"{self.url}: enterprise schema version {found} is not "
                                  f"supported (expected {schema.SCHEMA_VERSION})")

    def seed(self) -> dict[str, int]:
        """Create, then insert the reference master data that is missing (idempotent).

        Returns the number of rows inserted per table (all zero on a re-seed)."""
        self.create()
        with self._write_lock, self._engine.begin() as conn:
            return seed_world(conn, reference_world())

    # ------------------------------------------------------------------- calls

    def perform(self, tool: str, arguments: Mapping[str, Any], *, idempotency_key: str,
                effect: Callable[[EffectContext], dict[str, Any]]) -> Performed:
        """Run ``effect`` once per key, in one transaction with its ``tool_calls`` row.

        The same key and arguments return the first result (``replayed``); the same key
        with another tool or other arguments raises ``ConflictError``; both change nothing.
        """
        fault: Fault | None = None
        try:
            performed = self._perform(tool, arguments, idempotency_key, effect, check_faults=True)
        except _FaultPending:
            # Rare path: consume the fault in its own transaction (it must stay consumed
            # even when it fails the call), then act.
            fault = self._play_fault(tool)
            performed = self._perform(tool, arguments, idempotency_key, effect,
                                      check_faults=False)
        self._after(tool, fault)
        return performed

    def _perform(self, tool: str, arguments: Mapping[str, Any], idempotency_key: str,
                 effect: Callable[[EffectContext], dict[str, Any]], *, check_faults: bool
                 ) -> Performed:
        arguments_json = canonical_json(arguments)
        arguments_hash = digest(arguments)
        with database_errors(tool), self._write_lock, self._engine.begin() as conn:
            if check_faults and pending(conn, tool):
                raise _FaultPending
            seen = conn.execute(_CALL_BY_KEY, {"key": idempotency_key}).mappings().first()
            if seen is not None:
                if seen["tool"] != tool or seen["arguments_hash"] != arguments_hash:
                    raise ConflictError(
                        f"idempotency key {idempotency_key!r} was already used for "
                        f"{seen['tool']} with other arguments",
                        tool=tool, idempotency_key=idempotency_key)
                return Performed(json.loads(seen["result_json"]), replayed=True)
            ctx = EffectContext(conn, tool, idempotency_key, self._clock.now())
            result_json = json.dumps(effect(ctx), sort_keys=True, allow_nan=False)
            conn.execute(_INSERT_CALL, dict(
                idempotency_key=idempotency_key, tool=tool, arguments_hash=arguments_hash,
                arguments_json=arguments_json, result_json=result_json,
                created_at=ctx.timestamp()))
            return Performed(json.loads(result_json), replayed=False)

    def read(self, tool: str, query: Callable[[Connection], T]) -> T:
        """Run a read-only tool's query (faults apply; nothing is recorded)."""
        fault: Fault | None = None
        try:
            with database_errors(tool), self._reader.begin() as conn:
                if pending(conn, tool):  # in the read's own transaction: one per call
                    raise _FaultPending
                result = query(conn)
        except _FaultPending:
            fault = self._play_fault(tool)
            with database_errors(tool), self._reader.begin() as conn:
                result = query(conn)
        self._after(tool, fault)
        return result

    def _play_fault(self, tool: str) -> Fault | None:
        with database_errors(tool):
            with self._reader.begin() as conn:
                if not pending(conn, tool):
                    return None
            with self._write_lock, self._engine.begin() as conn:
                fault = take_fault(conn, tool)
        if fault is None:
            return None
        if fault.mode is FaultMode.DELAY:
            time.sleep(fault.delay_s)
        elif fault.mode is FaultMode.FAIL_RETRYABLE:
            raise ToolCallError(f"{tool}: injected fault: the system is temporarily unavailable",
                                retryable=True, tool=tool, fault_id=fault.fault_id)
        elif fault.mode is FaultMode.FAIL_PERMANENT:
            raise ToolCallError(f"{tool}: injected fault: the system refused the request",
                                retryable=False, tool=tool, fault_id=fault.fault_id)
        return fault

    @staticmethod
    def _after(tool: str, fault: Fault | None) -> None:
        if fault is None:
            return
        if fault.mode is FaultMode.COMMIT_THEN_FAIL:
            raise ToolCallError(f"{tool}: injected fault: connection lost after commit",
                                retryable=True, tool=tool, fault_id=fault.fault_id)
        if fault.mode is FaultMode.COMMIT_THEN_TIMEOUT:
            raise ToolCallError(f"{tool}: injected fault: timed out waiting for the response",
                                retryable=False, tool=tool, fault_id=fault.fault_id)

    def recall(self, tool: str, idempotency_key: str) -> Performed | None:
        """The stored result of ``tool``'s call under this key (``replayed``), or ``None``
        when there is none: no effect happened.

        Reads the record directly: faults are armed for calls, so a recall neither plays
        nor consumes one. A key recorded for another tool raises ``ConflictError``.
        """
        with database_errors(tool), self._reader.begin() as conn:
            seen = conn.execute(_CALL_BY_KEY, {"key": idempotency_key}).mappings().first()
        if seen is None:
            return None
        if seen["tool"] != tool:
            raise ConflictError(f"idempotency key {idempotency_key!r} was used for "
                                f"{seen['tool']}, not {tool}",
                                tool=tool, idempotency_key=idempotency_key)
        return Performed(json.loads(seen["result_json"]), replayed=True)

    # ------------------------------------------------------------------- faults

    def inject_fault(self, tool: str, mode: FaultMode | str, times: int = 1,
                     delay_s: float = 0.0) -> int:
        """Make the next ``times`` calls of ``tool`` (``"*"``: any tool) misbehave.

        Modes: ``fail_retryable`` / ``fail_permanent`` raise ``ToolCallError`` before any
        effect; ``commit_then_fail`` commits the effect, then raises a retryable error;
        ``commit_then_timeout`` commits it, then raises a non-retryable one (the effect
        is only found by ``recall``); ``delay`` sleeps ``delay_s`` then proceeds.
        Persisted: other processes see it. Returns the fault id.
        """
        try:
            fault_mode = FaultMode(mode)
        except ValueError:
            allowed = ", ".join(m.value for m in FaultMode)
            raise InvalidInputError(f"unknown fault mode {mode!r} (one of: {allowed})",
                                    field="mode") from None
        if times < 1:
            raise InvalidInputError("must be at least 1", field="times")
        if delay_s < 0:
            raise InvalidInputError("must not be negative", field="delay_s")
        with self._write_lock, self._engine.begin() as conn:
            return add_fault(conn, tool=tool, mode=fault_mode, times=times, delay_s=delay_s,
                             created_at=utc_iso(self._clock.now()))

    def faults(self) -> list[Fault]:
        with self._reader.begin() as conn:
            return list_faults(conn)

    def clear_faults(self) -> int:
        with self._write_lock, self._engine.begin() as conn:
            return conn.execute(delete(schema.faults)).rowcount

    # ------------------------------------------------------------------- queries

    def effects(self, tool: str | None = None) -> list[Effect]:
        """Every recorded effect, oldest first (optionally of one tool)."""
        table = schema.tool_calls
        query = select(table).order_by(table.c.created_at, literal_column("rowid"))
        if tool is not None:
            query = query.where(table.c.tool == tool)
        with self._reader.begin() as conn:
            rows = conn.execute(query).mappings().all()
        return [Effect(r["idempotency_key"], r["tool"], r["arguments_hash"],
                       json.loads(r["arguments_json"]), json.loads(r["result_json"]),
                       r["created_at"]) for r in rows]

    def counts(self) -> dict[str, int]:
        """Rows per business table (and ``tool_calls``)."""
        with self._reader.begin() as conn:
            return {name: conn.execute(select(func.count()).select_from(
                schema.metadata.tables[name])).scalar_one() for name in _BUSINESS_TABLES}

    def rows(self, table: str, **where: Any) -> list[dict[str, Any]]:
        """Rows of one table matching ``column=value`` filters, in primary-key order."""
        if table not in _BUSINESS_TABLES:
            raise NotFoundError(f"unknown table {table!r}", table=table)
        target = schema.metadata.tables[table]
        query = select(target).order_by(*target.primary_key.columns)
        for column, value in where.items():
            if column not in target.c:
                raise InvalidInputError(f"table {table!r} has no column {column!r}",
                                        field=column)
            query = query.where(target.c[column] == value)
        with self._reader.begin() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]
