"""The planner port and the offline playbook planner.

A planner drafts a ``Plan`` for one prediction. ``PlaybookPlanner`` (the default) fills
the matching playbook's templates deterministically; the LLM and hybrid planners
implement the same protocol. Every plan still goes through the guard.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from decisionops.agent._revision import Revisable, nothing_applied, revise
from decisionops.agent.errors import ConfigError, InvalidInputError
from decisionops.agent.models import Plan, Prediction
from decisionops.agent.playbooks import Playbook, PlaybookBook

__all__ = ["Draft", "PlanRequest", "Planner", "PlanningRecord", "PlaybookPlanner", "Revisions"]


class PlanRequest(BaseModel):
    """Everything a planner gets for one draft."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    decision_id: str
    prediction: Prediction
    playbook: str | None
    version: int = 1
    feedback: Sequence[str] = ()
    """Approvers' revise feedback, oldest first."""
    first: bool = False
    """The decision's first draft, in the leg that created it: nothing was drafted or
    spent for it before (a planner may skip looking)."""


class PlanningRecord(BaseModel):
    """How a plan was drafted: stored with the plan, shown by ``plan explain``."""

    model_config = ConfigDict(extra="forbid")
    planner: str
    prompt_version: str | None = None
    model: str | None = None
    llm_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    raw_outputs: list[str] = []
    """The model's raw replies, in order (repairs included)."""
    guard_verdicts: list[list[str]] = []
    """Problems the guard found in each rejected attempt."""
    cache_hit: bool = False
    fallback: str | None = None
    """Why a fallback planner drafted the plan (budget, errors, guard), if one did."""
    notes: list[str] = []


class Draft(BaseModel):
    """A planner's answer: a plan, or None when no valid plan could be drafted (the
    decision then needs a human plan), and the record of how."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    plan: Plan | None
    record: PlanningRecord


class Planner(Protocol):
    name: str
    deterministic: bool
    """True when the same request always yields the same plan (no need to persist the
    draft before the guard runs: a re-run drafts it again identically)."""

    @property
    def ready(self) -> bool:
        """Whether a draft would start without loading anything first."""
        ...

    def warm(self) -> None:
        """Load what the first draft would otherwise load (a model's client); drafts
        may call out again after ``stop``."""
        ...

    def stop(self) -> None:
        """The worker is stopping: no new call out (to a model) starts; a draft that would
        make one raises ``ShuttingDown`` instead of falling back."""
        ...

    def draft(self, request: PlanRequest) -> Draft: ...


class Revisions(Protocol):
    """What a planner can do with revise feedback on a plan it drafted, asked before a
    revise is recorded (``ApprovalService``): the playbook planner applies only what a
    playbook declares revisable; a model reads any text (no such rules)."""

    def can(self, plan: Plan) -> str | None:
        """What a revise of ``plan`` can change, in words; "" when nothing (no revise is
        offered); None: any feedback is read."""
        ...

    def cannot_apply(self, plan: Plan, feedback: str) -> str | None:
        """Why a revise of ``plan`` with ``feedback`` would draft it again unchanged."""
        ...


class PlaybookPlanner:
    """Deterministic, offline: the same prediction (and feedback) always yields the same
    plan.

    On revise it applies only what the playbook declares revisable (``revise``: steps
    it may remove, arguments it may set within bounds) when the feedback names it, and
    the re-plan's rationale says plainly what was applied, what was refused and what it
    can change; other free text is not applied (the LLM planner reads it all).
    """

    name = "playbook"
    deterministic = True

    ready = True

    def __init__(self, playbooks: PlaybookBook) -> None:
        self._playbooks = playbooks

    def warm(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def draft(self, request: PlanRequest) -> Draft:
        try:
            plan = self.plan(request)
        except InvalidInputError as exc:
            # The playbook cannot be drafted for this prediction (a template needs what
            # it does not carry): no valid plan, which sends it to a person with why.
            return Draft(plan=None, record=PlanningRecord(
                planner=self.name, notes=[f"the playbook cannot be drafted for this "
                                          f"prediction: {exc.message}"]))
        notes = [plan.rationale] if request.feedback else []
        return Draft(plan=plan, record=PlanningRecord(planner=self.name, notes=notes))

    def can(self, plan: Plan) -> str | None:
        """(``Revisions``) What a revise of ``plan`` can change; None for a plan this
        planner did not draft (a person's plan goes back to a person)."""
        playbook = self._drafted(plan)
        if playbook is None:
            return None
        rules, steps = playbook.revise or Revisable(), [s.id for s in plan.steps]
        return rules.offer(steps) if rules.offers(steps) else ""

    def cannot_apply(self, plan: Plan, feedback: str) -> str | None:
        """(``Revisions``) Why a revise of ``plan`` with ``feedback`` would draft the
        same plan again, or None (``_revision.nothing_applied``)."""
        playbook = self._drafted(plan)
        return None if playbook is None else nothing_applied(plan, playbook.revise, feedback)

    def _drafted(self, plan: Plan) -> Playbook | None:
        """The playbook of a plan this planner drafted, or None."""
        if plan.planner != self.name or plan.playbook is None:
            return None
        try:
            return self._playbooks.get(plan.playbook)
        except ConfigError:
            return None  # the re-draft says why it cannot be drafted

    def plan(self, request: PlanRequest) -> Plan:
        if request.playbook is None:
            playbook = self._playbooks.for_prediction(request.prediction)
            if playbook is None:
                raise ConfigError(f"no playbook for kind {request.prediction.kind!r}")
        else:
            playbook = self._playbooks.get(request.playbook)
        plan = playbook.draft(request.prediction, decision_id=request.decision_id,
                              version=request.version)
        if request.feedback:
            plan, revision = revise(plan, playbook.revise, request.feedback)
            said = revision.rationale(playbook.revise, (s.id for s in plan.steps))
            plan = plan.model_copy(update={
                "rationale": f"{said} ({plan.rationale})" if plan.rationale else said})
        return plan
