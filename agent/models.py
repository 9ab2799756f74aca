"""Domain models: the vocabulary of DESIGN.md as pydantic v2 types.

Every data boundary (sources, planners, approvals, tools, store rows, ledger entries)
speaks these types. Persistence lives in ``agent.store``; behaviour lives next to the
code that owns it (triage, policy, guard). This module only defines data.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    field_validator,
    model_validator,
)

from decisionops.agent.hashing import digest, short_id

__all__ = [
    "DEFAULT_CURRENCY",
    "PREDICTION_ROUTE_SUFFIXES",
    "PREDICTION_ROUTE_WORDS",
    "REPLANNED",
    "SUCCESS_LABELS",
    "USER_NAME_RULE",
    "Answer",
    "ApprovalRequest",
    "ApprovalStatus",
    "Approve",
    "DecisionStatus",
    "Edit",
    "ExecutionStatus",
    "Identifier",
    "Plan",
    "Prediction",
    "Reject",
    "RelatedDecision",
    "Revise",
    "Risk",
    "Step",
    "TriageAction",
    "TriageVerdict",
    "TriagedRow",
    "decision_id_for",
    "dependency_waves",
    "is_user_name",
    "plan_body_hash",
    "utcnow",
]

SCHEMA_VERSION = 1
"""Version of persisted decision state; bumped on any incompatible change."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_SAFE_ID = re.compile(r"^[^\W_][\w.:@/+-]*$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def utcnow() -> datetime:
    return datetime.now(UTC)


_PLAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@/+-]*")
"""Ids that pass ``_clean_id`` unchanged (ASCII: nothing to strip or normalize); a bulk
file is millions of them."""


def _clean_id(value: str) -> str:
    if _PLAIN_ID.fullmatch(value):
        return value
    value = unicodedata.normalize("NFC", value.strip())
    if not value:
        raise ValueError("must not be empty")
    if _CONTROL.search(value):
        raise ValueError("must not contain control, zero-width or bidi characters")
    if not _SAFE_ID.match(value):
        bad = next((c for c in value[1:] if not re.match(r"[\w.:@/+-]", c)), value[0])
        raise ValueError(f"may contain only letters, digits and . _ : @ / + -, starting with "
                         f"a letter or digit (not {bad!r})")
    return value


def _clean_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError("must be lowercase letters, digits and underscores, starting with a letter")
    return value


_USER_NAME = re.compile(r"[a-z][a-z0-9._@-]{0,99}")

USER_NAME_RULE = "1-100 lowercase letters, digits or . _ @ -, starting with a letter"
"""What a user's name may be (``dana@finance``): the name a person signs in and answers
as, so also every approver a function policy names."""


def is_user_name(value: str) -> bool:
    return _USER_NAME.fullmatch(value) is not None


Identifier = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_clean_id)]
"""An external id: NFC-normalized, no control/bidi/zero-width characters."""

Name = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_clean_name)]
"""An internal name: prediction kind, function, step id."""

ToolName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$", max_length=80)]
"""``system.action``, e.g. ``finance.issue_credit``."""


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


FiniteFloat = Annotated[float, AfterValidator(_finite)]

Scalar = str | int | float | bool | None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=10_000)


# --------------------------------------------------------------------------- predictions


REPLANNED = "replanned"
"""The triage reason of a prediction a person planned again: its follow-up (``<id>+r<n>``)
stands for it."""
DEFAULT_CURRENCY = "EUR"
"""The currency of a prediction's money when it names none."""
CLOCK_SKEW = timedelta(hours=1)
"""How far in the future a time given by a source (a prediction's or an outcome's
``observed_at``) may be and still be taken: clocks differ; beyond it, a time that has not
come yet is a mistake (and a prediction "observed" in 2099 would supersede every real one
for its entity until then)."""

ValueAtStake = Annotated[float, Field(ge=0.0, le=1e15, allow_inf_nan=False)]
"""Money at risk, whoever gives it (a source, a person answering the queue): at most a
quadrillion; a larger one is a unit or parsing mistake (and would swamp every sum of
value the reports make)."""


PREDICTION_ROUTE_WORDS = ("queue",)
"""Paths the API serves in a prediction's place (``GET /v1/predictions/queue``)."""
PREDICTION_ROUTE_SUFFIXES = ("/preview", "/pick", "/plan", "/value", "/dismiss")
"""What the API's routes put after a prediction's id (``/v1/predictions/<id>/pick``)."""


def _addressable(value: str) -> str:
    """An id the API can address: ``queue`` or ``z/preview`` would reach the queue or
    z's preview, never the prediction, so it could not be shown or answered over HTTP."""
    if value in PREDICTION_ROUTE_WORDS or value.endswith(PREDICTION_ROUTE_SUFFIXES):
        raise ValueError(
            f"{value!r} is an API route (/v1/predictions/{value}), not an id the API can "
            f"address: an id may not be {', '.join(PREDICTION_ROUTE_WORDS)} nor end in "
            + ", ".join(PREDICTION_ROUTE_SUFFIXES))
    return value


class Prediction(_Model):
    """One model output about one entity, as any source delivers it."""

    id: Annotated[Identifier, AfterValidator(_addressable)]
    """Stable id; re-delivering the same id is a no-op."""
    model: Identifier
    model_version: Identifier = "unversioned"
    kind: Name
    """What is predicted: ``churn``, ``failure``, ``stockout``…; selects the playbooks."""
    entity_type: Name
    entity_id: Identifier
    score: Annotated[float, Field(ge=0.0, le=1.0), AfterValidator(_finite)]
    """Probability (or calibrated confidence) that the predicted event happens."""
    value: FiniteFloat | None = None
    """A regression output where the model has one (forecast units, remaining life…)."""
    value_at_stake: ValueAtStake | None = None
    """Money at risk if the event happens; expected value = score * value_at_stake."""
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = DEFAULT_CURRENCY
    explanation: dict[Annotated[str, Field(max_length=100)], FiniteFloat] = Field(
        default_factory=dict, max_length=50)
    """Feature attributions (feature → contribution), most important first."""
    features: dict[Annotated[str, Field(max_length=100)], Scalar] = Field(
        default_factory=dict, max_length=100)
    """Context the model saw or the source adds (region, segment, site…). Data, never instructions."""
    observed_at: datetime
    kind_as_received: Annotated[Name | None, Field(exclude_if=lambda v: v is None)] = None
    """The kind as the source sent it, when ``kind_aliases`` mapped it onto ``kind``; left
    out of the JSON when unset, so a row stored before aliases hashes as it always has."""

    @field_validator("observed_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a time zone (e.g. 2026-11-01T09:00:00Z)")
        return value.astimezone(UTC)

    @field_validator("features")
    @classmethod
    def _finite_features(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, item in value.items():
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"feature {key!r} must be a finite number")
        return value

    @property
    def expected_value(self) -> float | None:
        if self.value_at_stake is None:
            return None
        return round(self.score * self.value_at_stake, 2)


def decision_id_for(prediction_id: str) -> str:
    """The decision (and LangGraph thread) id of a prediction: deterministic, so
    re-delivery maps onto the same decision."""
    return short_id("dec", prediction_id)


# --------------------------------------------------------------------------- triage


class TriageAction(StrEnum):
    ACT = "act"
    DROP = "drop"
    HOLD = "hold"
    """Actionable, but deliberately not acted on (holdout/control or an operator hold)."""
    NEEDS_HUMAN = "needs_human"
    """The loop cannot plan it (no playbook, no value at stake): a person decides."""


class TriageVerdict(_Model):
    prediction_id: Identifier
    action: TriageAction
    reason: str
    """Machine-readable reason code: ``act``, ``below_threshold``, ``superseded``, ``cooldown``,
    ``no_playbook``, ``missing_value``, ``low_expected_value``, ``holdout``, ``hold``,
    ``picked``, ``planned_by_hand``, ``dismissed``."""
    detail: str = ""
    playbook: str | None = None
    expected_value: float | None = None
    value_at_stake: float | None = None
    """Set when triage used a value at stake the prediction lacks (the kind's configured
    default); stored beside the prediction, which stays as received."""


class TriagedRow(NamedTuple):
    """A verdict a store reached for many rows at once in SQL: the fields of a
    ``TriageVerdict``, read back from the rows it wrote (so not validated again; a
    backlog drop is tens of thousands of them)."""

    prediction_id: str
    action: TriageAction
    reason: str
    detail: str
    playbook: str | None
    expected_value: float | None


# --------------------------------------------------------------------------- plans


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return {"low": 0, "medium": 1, "high": 2}[self.value]


class Step(_Model):
    """One action of a plan, owned by one function."""

    id: Name
    function: Name
    tool: ToolName
    arguments: dict[str, Any]
    depends_on: tuple[Name, ...] = ()
    risk: Risk = Risk.MEDIUM
    rationale: str = ""
    expected_cost: Annotated[float, Field(ge=0)] = 0.0
    expected_value: Annotated[float, Field(ge=0)] = 0.0

    @property
    def arguments_hash(self) -> str:
        return digest(self.arguments)


def dependency_waves(depends_on: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Step ids (id → the ids it depends on) in waves: every step's dependencies are in
    earlier waves. The one cycle rule, for plans and for playbooks at load; a cycle is a
    ``ValueError`` naming the steps that cannot be ordered."""
    remaining = {sid: set(deps) for sid, deps in depends_on.items()}
    waves: list[list[str]] = []
    done: set[str] = set()
    while remaining:
        ready = sorted(sid for sid, deps in remaining.items() if deps <= done)
        if not ready:
            raise ValueError(f"dependency cycle among steps: {', '.join(sorted(remaining))}")
        waves.append(ready)
        done.update(ready)
        for sid in ready:
            del remaining[sid]
    return waves


def plan_body_hash(body: Mapping[str, Any]) -> str:
    """The hash of a plan version from its JSON body (``Plan.hash``): everything but the
    rationale. ``ledger verify`` checks a stored body with it."""
    return digest({k: v for k, v in body.items() if k != "rationale"})


class Plan(_Model):
    """A DAG of steps drafted for one decision."""

    decision_id: Identifier
    version: Annotated[int, Field(ge=1)] = 1
    planner: str
    playbook: str | None = None
    steps: tuple[Step, ...]
    all_or_nothing: bool = False
    """If a step fails for good, compensate the completed ones."""
    rationale: str = ""

    @model_validator(mode="after")
    def _dag(self) -> Plan:
        ids = [s.id for s in self.steps]
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"duplicate step ids: {', '.join(dupes)}")
        known = set(ids)
        for step in self.steps:
            for dep in step.depends_on:
                if dep not in known:
                    raise ValueError(f"step {step.id!r} depends on unknown step {dep!r}")
                if dep == step.id:
                    raise ValueError(f"step {step.id!r} depends on itself")
        self.topological_order()  # raises on a cycle
        return self

    _hash: str | None = PrivateAttr(default=None)

    @property
    def hash(self) -> str:
        """The plan version hash approvals bind to (everything but the rationale).
        Computed once per instance: the model is frozen, and :meth:`model_copy` gives
        the copy no cached value."""
        if self._hash is None:
            self._hash = plan_body_hash(self.model_dump(mode="json"))
        return self._hash

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False
                   ) -> Plan:
        copy = super().model_copy(update=update, deep=deep)
        copy._hash = None
        return copy

    def __eq__(self, other: object) -> bool:
        # Equal plans are equal whether or not either has computed its hash yet.
        if not isinstance(other, Plan):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    __hash__ = _Model.__hash__

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def functions(self) -> list[str]:
        return sorted({s.function for s in self.steps})

    def steps_of(self, function: str) -> list[Step]:
        return [s for s in self.steps if s.function == function]

    def topological_order(self) -> list[list[str]]:
        """Steps in waves: every step's dependencies are in earlier waves."""
        return dependency_waves({s.id: s.depends_on for s in self.steps})

    def dependents_of(self, step_ids: set[str]) -> set[str]:
        """Every step that depends, directly or transitively, on one of ``step_ids``."""
        out: set[str] = set()
        frontier = set(step_ids)
        while frontier:
            nxt = {s.id for s in self.steps if set(s.depends_on) & frontier} - out
            out |= nxt
            frontier = nxt
        return out


# --------------------------------------------------------------------------- approvals


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    AUTO_APPROVED = "auto_approved"
    APPROVED = "approved"
    EDITED = "edited"
    REJECTED = "rejected"
    REVISE = "revise"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"
    """The plan was re-drafted; this request no longer applies."""


class RelatedDecision(_Model):
    """Another open decision on the same entity, shown beside a request."""

    decision_id: str
    kind: str
    status: str
    playbook: str | None = None
    steps: tuple[str, ...] = ()
    """``function:step tool`` of its current plan (none before it is planned)."""


class ApprovalRequest(_Model):
    """What an approver sees: their function's part of one plan version."""

    approval_id: str
    decision_id: str
    function: Name
    plan_version: int
    plan_hash: str
    steps: tuple[Step, ...]
    """The function's steps, as proposed."""
    other_steps: tuple[str, ...] = ()
    """``function:step`` of the rest of the plan, for context."""
    approvers: tuple[str, ...] = ()
    reason: str = ""
    """Why the policy asks a human (risk, limit…)."""
    related: tuple[RelatedDecision, ...] = ()
    """The other decisions open on the same entity when the plan was routed."""
    previews: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """step id → what the step would change, read when the plan was routed
    (``agent.preview``): ``{"tool", "result"}`` or ``{"tool", "error"}``."""

    @property
    def preview_hash(self) -> str:
        """What an answer binds to: the hash of the previews ("" when there are none)."""
        from decisionops.agent.hashing import digest
        return digest(self.previews) if self.previews else ""


Comment = Annotated[str, StringConstraints(max_length=2000)]
"""An approver's optional note on an approve or an edit: as long as a reject's reason, on
every channel."""


class Approve(_Model):
    type: Literal["approve"] = "approve"
    comment: Comment = ""


class Edit(_Model):
    type: Literal["edit"] = "edit"
    arguments: dict[Name, dict[str, Any]]
    """step id → the complete new argument set (merged over the proposal before validation)."""
    comment: Comment = ""


RejectReason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                max_length=2000)]
"""Why a part is rejected; blank is refused on every channel (the ledger and the people
after say why)."""
ReviseFeedback = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                  max_length=4000)]
"""What the planner should change; blank is refused on every channel."""


class Reject(_Model):
    type: Literal["reject"] = "reject"
    reason: RejectReason


class Revise(_Model):
    type: Literal["revise"] = "revise"
    feedback: ReviseFeedback


Answer = Annotated[Approve | Edit | Reject | Revise, Field(discriminator="type")]


# --------------------------------------------------------------------------- decisions & executions


class DecisionStatus(StrEnum):
    PLANNING = "planning"
    AWAITING_APPROVAL = "awaiting_approval"
    EXECUTING = "executing"
    HELD = "held"
    """Execution paused before steps an operator hold covers; it resumes on release."""
    COMPLETED = "completed"
    """Every approved step succeeded (steps of rejected functions were skipped)."""
    REJECTED = "rejected"
    """Nothing was approved."""
    FAILED = "failed"
    COMPENSATED = "compensated"
    NEEDS_HUMAN = "needs_human"
    """No valid plan could be drafted (or its target is unknown, or it was superseded)."""
    WAITING = "waiting"
    """Planned, but not routed: it waits until older open decisions on its entity that
    its playbook ``waits_for`` are finished; the loop resumes it then."""

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = {DecisionStatus.COMPLETED, DecisionStatus.REJECTED, DecisionStatus.FAILED,
             DecisionStatus.COMPENSATED, DecisionStatus.NEEDS_HUMAN}


class ExecutionStatus(StrEnum):
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    COMPENSATED = "compensated"


SUCCESS_LABELS = ("retained", "failure_avoided", "stockout_avoided", "success")
"""Outcome labels that count as a success: in the value report, its export, and earned
autonomy's outcome test."""


RealizedValue = Annotated[float, Field(ge=-1e15, le=1e15, allow_inf_nan=False)]
"""Money an outcome realized (negative: lost), within the bound of ``ValueAtStake``: a
larger one is a unit or parsing mistake, and would swamp the report's sums."""
