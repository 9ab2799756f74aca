"""Earned autonomy over HTTP: the step classes and their record, a dry run, and a
person's revoke / reinstate. ``agent.approvals``'s ``EarnedAutonomy`` owns every rule
(who may change a class, what the record earns it); this only translates."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from decisionops.agent.api._approvals import approver
from decisionops.agent.api._auth import Principal
from decisionops.agent.api._limits import StrictJSONRoute
from decisionops.agent.api._schemas import AutonomyChangeIn
from decisionops.agent.api._state import ServiceState, get_state, requires

__all__ = ["autonomy_router"]


def autonomy_router(principal: Any) -> APIRouter:
    router = APIRouter(prefix="/v1/autonomy", tags=["earned autonomy"],
                       route_class=StrictJSONRoute)
    reader = requires(principal, "read")
    # Who may revoke or reinstate (an approver of the class's function, an admin) is the
    # service's rule: any reader reaches it, and it refuses the others.

    @router.get("", summary="Step classes: state, run of approvals, outcomes, what they earn")
    def classes(function: str | None = Query(None, max_length=64),
                dry_run: bool = Query(False, description="Only what would be promoted today, "
                                      "with the record replayed under the rule"),
                after: int | None = Query(None, ge=2, le=10_000),
                approvers: int | None = Query(None, ge=2, le=100),
                who: Principal = Depends(reader),
                state: ServiceState = Depends(get_state)) -> dict[str, Any]:
        # Which classes the caller may see is the service's rule (``viewer``).
        autonomy = state.runtime.approvals.autonomy
        if dry_run:
            return autonomy.dry_run(function, after=after, approvers=approvers,
                                    viewer=approver(who))
        return {"classes": autonomy.report(function, viewer=approver(who))}

    @router.post("/revoke", summary="Take a class's promotion back (a person decides)")
    def revoke(body: AutonomyChangeIn, who: Principal = Depends(reader),
               state: ServiceState = Depends(get_state)) -> dict[str, Any]:
        return state.runtime.approvals.autonomy.revoke(
            body.class_key, by=approver(who), reason=body.reason).to_dict()

    @router.post("/reinstate", summary="Promote a demoted or revoked class again")
    def reinstate(body: AutonomyChangeIn, who: Principal = Depends(reader),
                  state: ServiceState = Depends(get_state)) -> dict[str, Any]:
        return state.runtime.approvals.autonomy.reinstate(
            body.class_key, by=approver(who), reason=body.reason).to_dict()

    return router
