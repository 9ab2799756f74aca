"""The planner port and the offline playbook planner.

A planner drafts a ``Plan`` for one prediction. ``PlaybookPlanner`` (the default) fills
the matching playbook's templates deterministically; the LLM and hybrid planners
implement the same protocol. Every plan still goes through the guard.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from agent.errors import ConfigError
from agent.models import Plan, Prediction
from agent.playbooks import PlaybookBook

__all__ = ["PlanRequest", "Planner", "PlaybookPlanner"]


class PlanRequest(BaseModel):
    """Everything a planner gets for one draft."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    decision_id: str
    prediction: Prediction
    playbook: str | None
    version: int = 1
    feedback: Sequence[str] = ()
    """Approvers' revise feedback, oldest first."""


class Planner(Protocol):
    name: str

    def draft(self, request: PlanRequest) -> Plan: ...


class PlaybookPlanner:
    """Deterministic, offline: the same prediction always yields the same plan.

    It cannot act on free-text feedback; a revise re-drafts the same plan as a new
    version so approvers see it again (the LLM planner uses the feedback).
    """

    name = "playbook"

    def __init__(self, playbooks: PlaybookBook) -> None:
        self._playbooks = playbooks

    def draft(self, request: PlanRequest) -> Plan:
        if request.playbook is None:
            playbook = self._playbooks.for_prediction(request.prediction)
            if playbook is None:
                raise ConfigError(f"no playbook for kind {request.prediction.kind!r}")
        else:
            playbook = self._playbooks.get(request.playbook)
        plan = playbook.draft(request.prediction, decision_id=request.decision_id,
                              version=request.version)
        if request.feedback:
            plan = plan.model_copy(update={"rationale": plan.rationale + " (re-drafted after "
                                           f"feedback: {request.feedback[-1]})"})
        return plan
