"""The decision graph's state: small, JSON-only, versioned.

The store is the system of record for executions and the ledger; the checkpoint holds
only what the graph needs to continue (the prediction, the current plan, the answers).
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

__all__ = ["DecisionState", "merge_answers"]


def merge_answers(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer: parallel approval branches each add their function's answer.

    An empty dict from a re-plan resets the answers of the previous plan version.
    """
    if right is None:
        return dict(left or {})
    if not right:
        return {}
    return {**(left or {}), **right}


class DecisionState(TypedDict, total=False):
    schema_version: int
    decision_id: str
    prediction: dict[str, Any]
    playbook: str | None
    plan: dict[str, Any] | None
    """The current plan version, after the guard (normalized arguments)."""
    planning: dict[str, Any] | None
    """The planner's record of the current draft (``PlanningRecord``), until stored."""
    related: list[dict[str, Any]] | None
    """The other open decisions on the entity (``RelatedDecision``), from conflicts to
    route, which lists them in the approval requests."""
    waiting: dict[str, Any] | None
    """While the decision waits for older open decisions (its playbook's ``waits_for``):
    their ids and why."""
    feedback: list[str]
    """Revise feedback from approvers, oldest first."""
    answers: Annotated[dict[str, Any], merge_answers]
    """function → its ``Resolution`` (JSON): status, approver, the argument sets approved
    (none when nothing may run), a rejection's reason, a revision's feedback."""
    trace: dict[str, str] | None
    """W3C trace context of the decision's first leg: later legs continue its trace."""
    results: dict[str, Any] | None
    """The executor's last results (``FinishedCalls``), from execute to record, which
    stores them with the terminal state."""
    held: dict[str, Any] | None
    """While execution waits on an operator hold: why, and which functions it stopped."""
    outcome: str | None
    """Terminal status once recorded."""
    error: str | None
