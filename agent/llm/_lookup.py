"""``ToolLookup``: the read-only enterprise lookups an LLM planner may use, over any
``ToolPort``.

Only tools without side effects are served (a tool with effects is refused even if
named), arguments are validated against the tool's schema before the call (a call with
missing or defaulted arguments never runs), and results are trimmed (long strings and
lists cut) so a record cannot blow the prompt budget. ``context`` runs the primary
lookup of a prediction's entity type, so the model starts with the entity's record and
usually needs no lookup round.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from decisionops.agent.errors import InvalidInputError, NotFoundError, PermissionDenied, ToolCallError
from decisionops.agent.models import Prediction
from decisionops.agent.ports import ToolPort, ToolSpec

__all__ = ["DEFAULT_LOOKUPS", "PRIMARY_LOOKUPS", "PrimaryLookup", "ToolLookup"]

DEFAULT_LOOKUPS = ("crm.get_account", "erp.get_inventory", "maintenance.get_asset")


@dataclass(frozen=True)
class PrimaryLookup:
    """How to fetch an entity type's record: ``tool`` with ``argument`` taken from the
    prediction's ``entity_id`` or from one of its ``features``."""

    tool: str
    argument: str
    source: str = "entity_id"
    """``entity_id`` or ``features.<name>``."""


PRIMARY_LOOKUPS: Mapping[str, PrimaryLookup] = {
    "account": PrimaryLookup("crm.get_account", "account_id"),
    "asset": PrimaryLookup("maintenance.get_asset", "asset_id"),
    "sku_site": PrimaryLookup("erp.get_inventory", "sku", "features.sku"),
}

_MAX_STRING = 600
_MAX_ITEMS = 40


def _trim(value: Any, depth: int = 0) -> Any:
    if depth > 6:
        return "…"
    if isinstance(value, str):
        return value if len(value) <= _MAX_STRING else value[:_MAX_STRING] + "…"
    if isinstance(value, Mapping):
        return {str(k): _trim(v, depth + 1) for k, v in list(value.items())[:_MAX_ITEMS]}
    if isinstance(value, list | tuple):
        return [_trim(v, depth + 1) for v in value[:_MAX_ITEMS]]
    return value


class ToolLookup:
    """Read-only lookups over ``tools``; implements ``agent.llm.Lookup``."""

    def __init__(self, tools: ToolPort, names: Sequence[str] = DEFAULT_LOOKUPS,
                 primary: Mapping[str, PrimaryLookup] = PRIMARY_LOOKUPS) -> None:
        self._tools = tools
        self._specs: dict[str, ToolSpec] = {}
        for name in names:
            try:
                spec = tools.spec(name)
            except NotFoundError:
                continue  # a catalogue without this system: the lookup is not offered
            if spec.side_effects:
                raise PermissionDenied(f"{name} has side effects and cannot be a lookup",
                                       field="lookups")
            self._specs[name] = spec
        self._primary = {k: v for k, v in primary.items() if v.tool in self._specs}

    def specs(self) -> Sequence[ToolSpec]:
        return [self._specs[name] for name in sorted(self._specs)]

    def __call__(self, tool: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        if tool not in self._specs:
            raise PermissionDenied(f"{tool!r} is not a lookup (lookups: "
                                   f"{', '.join(sorted(self._specs))})", field="tool")
        if not isinstance(arguments, Mapping):
            raise InvalidInputError("must be an object", field="arguments", location=tool)
        normalized = self._tools.validate(tool, arguments)
        try:
            receipt = self._tools.call(tool, normalized, idempotency_key=f"lookup:{tool}")
        except ToolCallError as exc:
            return {"error": exc.message}
        return _trim(receipt.result)

    def context(self, prediction: Prediction) -> dict[str, Any]:
        primary = self._primary.get(prediction.entity_type)
        if primary is None:
            return {}
        if primary.source == "entity_id":
            value: Any = prediction.entity_id
        else:
            value = prediction.features.get(primary.source.removeprefix("features."))
        if not isinstance(value, str) or not value:
            return {}
        try:
            result = self(primary.tool, {primary.argument: value})
        except InvalidInputError as exc:
            result = {"error": exc.message}
        return {primary.tool: result}
