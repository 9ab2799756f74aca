"""What would we do? A prediction run through triage, the planner, the guard, routing and
the tools' previews, without a decision: no decision, request, plan or ledger entry is
stored and no step runs (an LLM planner's call is metered and may fill the plan cache,
as any call does) (``decisionops plan preview``, ``GET /v1/predictions/{id}/preview``). With a
changed score or value at stake it answers "what if the model said 0.9?".

The same rules as the loop, read-only: triage as the loop runs it (``Runtime.verdicts``:
operator holds drop it; the cooldown leaves out the prediction's own action, and none is
held out), the configured planner (an LLM planner is called and metered, as any call
is), the guard, the approval service's routing (who would be asked and why, what policy
or earned autonomy would approve), each step's preview, the plan's cost and value and
the entity's open decisions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from decisionops.agent.errors import InvalidInputError, PlanRejected
from decisionops.agent.guard import check_plan
from decisionops.agent.hashing import short_id
from decisionops.agent.models import Prediction, TriageAction, utcnow
from decisionops.agent.planner import PlanRequest
from decisionops.agent.targets import Subject

if TYPE_CHECKING:
    from decisionops.agent.runtime import Runtime

__all__ = ["what_if"]


def what_if(rt: Runtime, prediction_id: str, *, score: float | None = None,
            value_at_stake: float | None = None) -> dict[str, Any]:
    """The plan the loop would make of a stored prediction, with ``score`` or
    ``value_at_stake`` changed when given."""
    prediction = rt.store.predictions.get(prediction_id)
    changes: dict[str, Any] = {}
    if score is not None:
        if not 0.0 <= score <= 1.0:
            raise InvalidInputError("must be between 0 and 1", field="score")
        changes["score"] = score
    if value_at_stake is not None:
        if value_at_stake < 0:
            raise InvalidInputError("must not be negative", field="value_at_stake")
        changes["value_at_stake"] = value_at_stake
    if changes:
        prediction = Prediction.model_validate({**prediction.model_dump(), **changes})
    (verdict,) = rt.verdicts([prediction], what_if=True)
    out: dict[str, Any] = {
        "prediction": prediction.model_dump(mode="json"), "changed": changes,
        "triage": {"action": verdict.action.value, "reason": verdict.reason,
                   "detail": verdict.detail},
        "open_decisions": [o.related.model_dump(mode="json") for o in
                           rt.store.decisions.open_on_entity(prediction.entity_type,
                                                             prediction.entity_id)],
        "plan": None, "routing": [], "problems": []}
    if verdict.action is not TriageAction.ACT:
        return out
    draft = rt.planner.draft(PlanRequest(
        decision_id=short_id("whatif", prediction.id, utcnow().isoformat()),
        prediction=prediction, playbook=verdict.playbook))
    if draft.plan is None:
        out["problems"] = [draft.record.fallback or "; ".join(draft.record.notes)
                           or "no valid plan"]
        return out
    try:
        plan = check_plan(draft.plan, rt.tools, rt.policies)
    except PlanRejected as exc:
        out["problems"] = list(exc.problems)
        return out
    routing = rt.approvals.route(plan, stored=False, dry=True, entity=Subject.of(prediction))
    asked = {request.function: (request, deadline) for request, deadline in routing.ask}
    requests = [*routing.auto_requests, *(r for r, _ in routing.ask)]
    out["plan"] = {"planner": draft.record.planner, "playbook": plan.playbook,
                   "rationale": plan.rationale,
                   "steps": [s.model_dump(mode="json") for s in plan.steps],
                   "expected_cost": round(sum(s.expected_cost for s in plan.steps), 2),
                   "expected_value": round(sum(s.expected_value for s in plan.steps), 2)}
    out["routing"] = [{
        "function": request.function,
        "approval": ("people" if request.function in asked
                     else "earned autonomy" if request.approval_id in routing.earned
                     else "policy"),
        "why": request.reason, "approvers": list(request.approvers),
        "sla_deadline": (asked[request.function][1].isoformat()
                         if request.function in asked else None),
        "steps": [s.id for s in request.steps], "previews": request.previews,
    } for request in sorted(requests, key=lambda r: r.function)]
    return out
