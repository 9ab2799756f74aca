"""Ports: the small protocols through which the runtime reaches the outside world.

Each has a real implementation (``tools.registry.ToolRegistry`` for ``ToolPort``,
``SystemClock``) and tests run the same contract against doubles. Implementations
live outside ``agent`` where they touch other packages.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from decisionops.agent.models import Risk, utcnow

__all__ = ["Clock", "CompensationSpec", "SystemClock", "TargetLookup", "ToolPort", "ToolReceipt",
           "ToolSpec"]


class CompensationSpec(BaseModel):
    """How to undo a tool's effect: call ``tool`` with arguments taken from the receipt."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    tool: str
    arguments_from_result: dict[str, str]
    """compensating argument name → field of the original call's result."""
    fixed_arguments: dict[str, Any] = Field(default_factory=dict)


class TargetLookup(BaseModel):
    """How to confirm, before anyone is asked, that what a call acts on exists: call the
    read-only ``tool`` with arguments taken from the call's own."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    tool: str
    """A tool without side effects (``crm.get_account``)."""
    arguments: dict[str, str]
    """lookup argument name → the call's argument that supplies it."""
    matches: dict[str, str] = Field(default_factory=dict)
    """field of the lookup's result → the call's argument that must equal it (a credit's
    ``currency`` must be the account's): a step that disagrees with what it acts on
    cannot run as drafted, so no one is asked to approve it."""
    at_least: dict[str, str] = Field(default_factory=dict)
    """field of the lookup's result → the call's argument that must not exceed it (a
    transfer's ``quantity`` and the source's ``available`` stock), for the same reason."""

    def arguments_for(self, call_arguments: Mapping[str, Any]) -> dict[str, Any] | None:
        """The lookup's arguments for a call, or None when the call lacks one of them."""
        if any(call_arguments.get(source) is None for source in self.arguments.values()):
            return None
        return {name: call_arguments[source] for name, source in self.arguments.items()}


class PreviewSpec(BaseModel):
    """How to show, before approval, what a call would change: call the read-only
    ``tool`` with the call's own arguments (all of them; or, with ``arguments``, preview
    argument → the call's argument). ``watch`` names fields of its result (dotted:
    ``before.credits_issued``) that must still hold when the step is about to run: a
    number may move by ``tolerance`` (relative: 0.1 is 10 %), anything else must be
    equal. Beyond that the world changed since the approver looked, and the step goes
    back to its approvers instead of running."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    tool: str
    arguments: dict[str, str] | None = None
    watch: tuple[str, ...] = ()
    tolerance: float = Field(0.0, ge=0.0, le=10.0)

    def arguments_for(self, call_arguments: Mapping[str, Any]) -> dict[str, Any] | None:
        """The preview's arguments for a call, or None when the call lacks one of them."""
        if self.arguments is None:
            return dict(call_arguments)
        if any(call_arguments.get(source) is None for source in self.arguments.values()):
            return None
        return {name: call_arguments[source] for name, source in self.arguments.items()}


class ToolSpec(BaseModel):
    """What the planner, guard and executor know about a tool."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    """``system.action``."""
    function: str
    """The business function that owns the system and, by default, may use it."""
    description: str
    risk: Risk
    side_effects: bool
    compensation: CompensationSpec | None = None
    parameters: dict[str, Any]
    """JSON schema of the arguments (the idempotency key is not part of it)."""
    targets: tuple[str, ...] = ()
    """Arguments that name what the call acts on (account, asset, order, site, currency,
    recipient…); an approval binds them: an edit may not change them."""
    qualifiers: tuple[str, ...] = ()
    """Targets that qualify a call rather than name a thing a prediction could be about
    (a message's channel and recipient, a team to page): bound by an approval like every
    target, not compared with the prediction's entity (``agent.targets.acts_elsewhere``;
    ``currency`` is one whatever the tool says)."""
    lookups: tuple[TargetLookup, ...] = ()
    """Read-only calls that confirm the targets exist before a plan is routed (an unknown
    one sends the decision to a person instead of its approvers)."""
    preview: PreviewSpec | None = None
    """What the call would change, shown to approvers and checked again before it runs."""
    in_process: bool = False
    """The call runs in this process and waits on nothing outside it (the bundled
    reference enterprise, on its SQLite file): the executor makes such calls one after
    another in the leg's own thread, where a pool thread would only add its hand-off.
    Calls to other systems (MCP servers, plug-ins' APIs) overlap within a wave."""

    @model_validator(mode="after")
    def _targets_are_parameters(self) -> ToolSpec:
        properties = self.parameters.get("properties", {})
        for target in self.targets:
            if target not in properties:
                raise ValueError(f"{self.name}: target {target!r} is not a parameter")
        for qualifier in self.qualifiers:
            if qualifier not in self.targets:
                raise ValueError(f"{self.name}: qualifier {qualifier!r} is not a target")
        for lookup in self.lookups:
            for source in lookup.arguments.values():
                if source not in properties:
                    raise ValueError(f"{self.name}: lookup {lookup.tool} reads {source!r}, "
                                     "which is not a parameter")
        return self

    def target_of(self, arguments: Mapping[str, Any]) -> str:
        """What a call with ``arguments`` acts on, as one key
        (``account_id=ACC-10023|currency=EUR``): the unit per-target totals add up in.
        A tool without targets has one target, ``*``."""
        if not self.targets:
            return "*"
        return "|".join(f"{name}={arguments.get(name)}" for name in self.targets)


class ToolReceipt(BaseModel):
    """The result of one tool call."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    tool: str
    idempotency_key: str
    result: dict[str, Any]
    """What the tool answered. Numbers JSON cannot carry (NaN, ±Infinity, which a
    foreign tool may send) are kept as their text, ``"NaN"``, ``"Infinity"``: the result
    is hashed and recorded, and a call that took effect must be recorded."""
    replayed: bool = False
    """True when the key had been seen: the stored first result was returned, nothing changed."""

    @field_validator("result", mode="after")
    @classmethod
    def _finite(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _finite_numbers(value)


def _finite_numbers(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite_numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_numbers(v) for v in value]
    return value


@runtime_checkable
class ToolPort(Protocol):
    """The catalogue of enterprise tools and the way to call them."""

    def specs(self) -> Sequence[ToolSpec]: ...

    def spec(self, name: str) -> ToolSpec:
        """Raises ``NotFoundError`` for an unknown tool."""
        ...

    def validate(self, name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Validate against the tool's schema; return the normalized arguments.

        Raises ``ToolArgumentsError`` naming the field.
        """
        ...

    def call(self, name: str, arguments: Mapping[str, Any], *, idempotency_key: str) -> ToolReceipt:
        """Carry out the call once per key.

        The same key with the same arguments returns the first result with
        ``replayed=True`` and changes nothing; the same key with different arguments
        raises ``ConflictError``. Failures raise ``ToolCallError`` with ``retryable``.
        """
        ...

    def recall(self, name: str, *, idempotency_key: str) -> ToolReceipt | None:
        """The tool's own record of the call made with this key, asked without calling.

        Returns the stored result (a receipt with ``replayed=True``), or ``None`` when the
        tool has no record of it: no effect happened. A read-only tool records nothing
        and returns ``None``. The executor uses it to reconcile a call that may have
        committed before it reported a failure (a timeout after commit). Raises
        ``NotFoundError`` for an unknown tool, ``ConflictError`` when the key was used
        for another tool, and ``ToolCallError(retryable=True)`` when the system cannot
        be asked right now.
        """
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return utcnow()
