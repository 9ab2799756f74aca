"""Typed rows: what the store returns for the aggregates the protocols work on
(decisions, approval requests, executions, holds), instead of dicts.

Rows are immutable snapshots of one read. ``to_dict()`` gives the JSON-ready shape the
CLI and the API print (an approval's request as ``ApprovalRequest.model_dump``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

from decisionops.agent.models import ApprovalRequest, ApprovalStatus, DecisionStatus, ExecutionStatus

__all__ = ["ApprovalRow", "DecisionRow", "ExecutionRow", "HoldRow", "from_mapping"]

R = TypeVar("R")


@cache
def _names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls))


def from_mapping(cls: type[R], row: Mapping[str, Any], **extra: Any) -> R:
    """``cls`` from a database row's mapping (columns the row type does not name are
    ignored; ``extra`` overrides)."""
    names = _names(cls)
    values = {k: v for k, v in row.items() if k in names}
    values.update(extra)
    return cls(**values)


@dataclass(frozen=True, slots=True)
class DecisionRow:
    id: str
    prediction_id: str
    kind: str
    entity_id: str
    playbook: str | None
    status: DecisionStatus
    plan_version: int
    plan_hash: str | None
    expected_value: float | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    error: str | None
    lease_owner: str | None
    lease_until: datetime | None
    fence: int
    checkpoint_pruned_at: datetime | None = None
    leg_failures: int = 0
    """Legs that failed in a row (``DecisionRepo.note_failure``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", DecisionStatus(self.status))

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status.value
        return out


@dataclass(frozen=True, slots=True)
class ApprovalRow:
    """One function's approval request for one plan version, and its answer."""

    id: str
    decision_id: str
    plan_version: int
    plan_hash: str
    function: str
    status: ApprovalStatus
    reason: str
    request: ApprovalRequest
    """The request as the approver sees it: the function's steps, read from the plan."""
    requested_at: datetime
    deadline: datetime | None
    answered_at: datetime | None = None
    approver: str | None = None
    answer: dict[str, Any] | None = None
    """The answer as recorded (``Approve``/``Edit``/``Reject``/``Revise`` JSON)."""
    approved_arguments: dict[str, Any] | None = None
    """Step id → arguments, where they differ from the plan's (an edit)."""
    applied_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", ApprovalStatus(self.status))
        object.__setattr__(self, "reason", self.reason or "")

    @property
    def pending(self) -> bool:
        return self.status is ApprovalStatus.PENDING

    @property
    def withdrawn(self) -> str | None:
        """Why the request was withdrawn from its plan version (another function's
        answer ended the version: ``approvals.end_version``); None: it was not (pending,
        answered, or superseded by a newer version). A listing filters by the same rule
        in SQL (``_approvals._WITHDRAWN_ANSWER``)."""
        answer = self.answer or {}
        if self.status is ApprovalStatus.SUPERSEDED and answer.get("type") == "withdrawn":
            return str(answer.get("reason") or "another function's answer ended the plan")
        return None

    @property
    def shown_status(self) -> str:
        """The status as views show it: ``withdrawn`` for a withdrawn request (stored as
        superseded), else the stored one."""
        return "withdrawn" if self.withdrawn is not None else self.status.value

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["status"] = self.status.value
        out["request"] = self.request.model_dump(mode="json")
        out["withdrawn"] = self.withdrawn
        return out


@dataclass(frozen=True, slots=True)
class ExecutionRow:
    """One tool call (or compensation) of one step, with its idempotency key."""

    idempotency_key: str
    decision_id: str
    plan_version: int
    step_id: str
    purpose: str
    tool: str
    arguments: dict[str, Any]
    arguments_hash: str
    status: ExecutionStatus
    attempts: int
    receipt: dict[str, Any] | None
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", ExecutionStatus(self.status))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status.value
        return out


@dataclass(frozen=True, slots=True)
class HoldRow:
    """An operator's hold on an entity, a playbook or a business function."""

    id: int
    target_type: str
    """``entity``, ``playbook`` or ``function``."""
    target: str
    until: datetime
    reason: str
    created_by: str
    created_at: datetime
    released_at: datetime | None = None
    released_by: str | None = None

    def stops_clock(self, deadline: datetime) -> bool:
        """Whether this hold (covering a request) stops the request's SLA clock: only one
        that began while the clock still ran (trial 24: a hold placed after the deadline
        revived the expired request). The sweep, an answer and a release all ask this."""
        return self.created_at < deadline

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
