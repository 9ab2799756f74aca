"""Routes over predictions: each with its outcome and reason, the needs-a-human queue,
and a person's answers to it (pick a playbook, plan by hand, supply a value, dismiss).

Answers go to ``agent.prediction_queue`` as the caller the credential names; the
service decides who may answer and what each answer means. Reading needs ``read``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from decisionops.agent.api._auth import Principal
from decisionops.agent.api._limits import StrictJSONRoute
from decisionops.agent.api._state import ServiceState, get_state, requires
from decisionops.agent.approvals import visible_functions
from decisionops.agent.prediction_queue import QueueUser
from decisionops.agent.store import OUTCOMES

__all__ = ["predictions_router"]

_OUTCOME = "^(" + "|".join(OUTCOMES) + ")$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=2_000)


class PickIn(_In):
    playbook: Annotated[str, Field(min_length=1, max_length=100)]
    """The playbook to plan the prediction with."""
    note: Annotated[str, Field(max_length=500)] = ""


class PlanIn(_In):
    steps: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=50)]
    """The plan's steps as the planners write them: id, function, tool, arguments,
    depends_on, risk, rationale (validated, then guarded, by the queue)."""
    rationale: Annotated[str, Field(max_length=2_000)] = ""
    all_or_nothing: bool = False
    note: Annotated[str, Field(max_length=500)] = ""


class ValueIn(_In):
    value_at_stake: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    """Money at risk if the event happens; the prediction is triaged again with it."""


class DismissIn(_In):
    reason: Annotated[str, Field(min_length=1, max_length=500)]


def _user(who: Principal) -> QueueUser:
    return QueueUser(who.name, who.role, "api")


def predictions_router(principal: Any) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["predictions"], route_class=StrictJSONRoute)
    reader = requires(principal, "read")

    @router.get("/predictions", summary="Predictions with their outcome and reason, newest first")
    def list_predictions(outcome: str | None = Query(None, pattern=_OUTCOME),
                         kind: str | None = Query(None, max_length=64),
                         entity: str | None = Query(None, max_length=200),
                         limit: int = Query(50, ge=1, le=1000),
                         who: Principal = Depends(reader),
                         state: ServiceState = Depends(get_state)) -> list[dict[str, Any]]:
        """The outcome is the full fate: ``pending``, ``act``, ``drop``, ``hold`` or
        ``needs_human`` (a decision that ended needs_human shows so, with its reason). An
        approver sees the queue and the predictions whose decision has a step of theirs."""
        views = state.runtime.store.prediction_views.list(
            outcome=outcome, kind=kind, entity_id=entity, limit=limit,
            functions=visible_functions(who))
        return [v.to_dict() for v in views]

    @router.get("/predictions/queue", summary="Predictions waiting for a person, oldest first")
    def queue(limit: int = Query(50, ge=1, le=1000), _who: Principal = Depends(reader),
              state: ServiceState = Depends(get_state)) -> list[dict[str, Any]]:
        return [v.to_dict() for v in state.runtime.queue.list(limit=limit)]

    @router.get("/predictions/{prediction_id:path}/preview",
                summary="What the loop would do with a prediction (nothing is stored)")
    def preview(prediction_id: str,
                score: float | None = Query(None, ge=0, le=1, description="What if the model "
                                            "said this"),
                value_at_stake: float | None = Query(None, ge=0),
                who: Principal = Depends(reader),
                state: ServiceState = Depends(get_state)) -> dict[str, Any]:
        """Triage, plan, routing (who would be asked, what policy or earned autonomy would
        approve), each step's preview, cost and value, the entity's open decisions; no
        decision, request or ledger entry is made (``agent.scenario``). Of a prediction
        the caller sees (404 as for an unknown id otherwise)."""
        from decisionops.agent.scenario import what_if
        state.runtime.store.prediction_views.get(prediction_id, functions=visible_functions(who))
        return what_if(state.runtime, prediction_id, score=score, value_at_stake=value_at_stake)

    @router.get("/predictions/{prediction_id:path}", summary="One prediction and its outcome")
    def get_prediction(prediction_id: str, who: Principal = Depends(reader),
                       state: ServiceState = Depends(get_state)) -> dict[str, Any]:
        return state.runtime.store.prediction_views.get(
            prediction_id, functions=visible_functions(who)).to_dict()

    @router.post("/predictions/{prediction_id:path}/pick",
                 summary="Plan a prediction from the queue with a playbook")
    def pick(prediction_id: str, body: PickIn, who: Principal = Depends(reader),
             state: ServiceState = Depends(get_state)) -> dict[str, Any]:
        """The workers start its decision as they start any other."""
        return state.runtime.queue.pick(prediction_id, body.playbook, by=_user(who),
                                        note=body.note).to_dict()

    @router.post("/predictions/{prediction_id:path}/plan",
                 summary="Plan a prediction from the queue by hand")
    def plan_by_hand(prediction_id: str, body: PlanIn, who: Principal = Depends(reader),
                     state: ServiceState = Depends(get_state)) -> dict[str, Any]:
        """The steps must pass the guard every plan passes (else 422 naming ``steps``
        and the guard's problems, nothing changed); the workers start its decision, and
        each function approves its part as for any plan."""
        spec = {"steps": body.steps, "rationale": body.rationale,
                "all_or_nothing": body.all_or_nothing}
        return state.runtime.queue.plan_by_hand(prediction_id, spec, by=_user(who),
                                                note=body.note).to_dict()

    @router.post("/predictions/{prediction_id:path}/value",
                 summary="Supply the value at stake a queued prediction lacks")
    def supply_value(prediction_id: str, body: ValueIn, who: Principal = Depends(reader),
                     state: ServiceState = Depends(get_state)) -> dict[str, Any]:
        return state.runtime.queue.supply_value(prediction_id, body.value_at_stake,
                                                by=_user(who)).to_dict()

    @router.post("/predictions/{prediction_id:path}/dismiss",
                 summary="Dismiss a queued prediction: no action, with a reason")
    def dismiss(prediction_id: str, body: DismissIn, who: Principal = Depends(reader),
                state: ServiceState = Depends(get_state)) -> dict[str, Any]:
        return state.runtime.queue.dismiss(prediction_id, body.reason, by=_user(who)).to_dict()

    return router
