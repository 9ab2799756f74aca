"""Routes over decisions and approvals: list and inspect decisions; the caller's pending
approvals (most urgent first) with their evidence; approve, edit, reject, revise;
bulk approve of low-risk requests;
validate an edit before submitting it; and the LangChain human-in-the-loop view.

Answers go through ``_approvals.submit_answer``, which hands them to the approval
service (authorization, four-eyes, stale plan, edit rules, compare-and-set, ledger
record of every refusal).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse

from decisionops.agent.api._approvals import approver, submit_answer
from decisionops.agent.api._auth import Principal
from decisionops.agent.api._evidence import approval_view, decision_view, inbox, public
from decisionops.agent.api._hitl import answer_from_hitl, hitl_request
from decisionops.agent.api._limits import StrictJSONRoute
from decisionops.agent.api._schemas import (
    AnswerOut,
    ApproveIn,
    BulkApproveIn,
    BulkApproveOut,
    BulkResultOut,
    EditIn,
    HitlIn,
    RejectIn,
    ReviseIn,
    ValidateIn,
    ValidateOut,
)
from decisionops.agent.api._state import ServiceState, get_state, requires
from decisionops.agent.approvals import BulkItem, visible_functions
from decisionops.agent.errors import InvalidInputError, NotFoundError
from decisionops.agent.models import (
    ApprovalStatus,
    Approve,
    DecisionStatus,
    Edit,
    Reject,
    Revise,
)

__all__ = ["approvals_router"]

_STATUSES = "|".join(s.value for s in DecisionStatus)
_APPROVAL_STATUSES = "|".join([*(s.value for s in ApprovalStatus), "withdrawn", "all"])


def approvals_router(principal: Any) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["decisions & approvals"], route_class=StrictJSONRoute)
    reader = requires(principal, "read")
    answerer = requires(principal, "answer")
    # Answers take any reader: who may answer is the approval service's to decide (and a
    # refusal its to record), as on every other channel. Bulk approve and validate
    # still need the answer permission up front.

    @router.get("/decisions", summary="List decisions, most recently updated first")
    def list_decisions(status: str | None = Query(None, pattern=f"^({_STATUSES})$"),
                       kind: str | None = Query(None, max_length=64),
                       limit: int = Query(50, ge=1, le=1000),
                       who: Principal = Depends(reader),
                       state: ServiceState = Depends(get_state)) -> list[dict[str, Any]]:
        rt = state.runtime
        rows = rt.store.decisions.list(status=status, kind=kind, limit=limit,
                                       functions=visible_functions(who))
        return [public(r) for r in rows]

    @router.get("/decisions/{decision_id}",
                summary="One decision: prediction, plan, approvals, executions, ledger")
    def get_decision(decision_id: str, who: Principal = Depends(reader),
                     state: ServiceState = Depends(get_state)) -> dict[str, Any]:
        return decision_view(state.runtime, who, decision_id)

    @router.get("/approvals", summary="Approvals the caller can answer, most urgent first")
    def list_approvals(function: str | None = Query(None, max_length=64),
                       status: str = Query("pending", pattern=f"^({_APPROVAL_STATUSES})$"),
                       limit: int = Query(200, ge=1, le=10_000),
                       who: Principal = Depends(reader),
                       state: ServiceState = Depends(get_state)) -> list[dict[str, Any]]:
        """Pending requests ranked by SLA deadline, then value at stake; another status (or
        ``all``, as the CLI's ``approvals list --status all``) most recent first. Approvers
        see their functions' requests; operators see all."""
        rt = state.runtime
        if function is not None:
            try:
                rt.policies.get(function)
            except NotFoundError as exc:  # a filter's bad value: 422, as status's is
                raise InvalidInputError(exc.message.removeprefix("function: "),
                                        field="function") from None
        if status == "pending":
            return inbox(rt, who, function=function, limit=limit)
        rows = rt.store.approvals.list(function=function,
                                       status=None if status == "all" else status,
                                       functions=visible_functions(who), limit=limit)
        return [r.to_dict() for r in rows]

    @router.get("/approvals/{approval_id}", summary="One approval with its evidence")
    def get_approval(approval_id: str, who: Principal = Depends(reader),
                     state: ServiceState = Depends(get_state)) -> dict[str, Any]:
        return approval_view(state.runtime, who, approval_id)

    def _answer(approval_id: str, answer: Any, plan_hash: str, who: Principal,
                state: ServiceState, preview_hash: str | None = None,
                proposal_hash: str | None = None) -> AnswerOut:
        return AnswerOut(**submit_answer(state.runtime, who, approval_id, answer, plan_hash,
                                         preview_hash=preview_hash,
                                         proposal_hash=proposal_hash))

    @router.post("/approvals/{approval_id}/approve", response_model=AnswerOut,
                 responses={403: {"description": "not allowed (reason in the body)"},
                            409: {"description": "already answered or stale plan"}})
    def approve(approval_id: str, body: ApproveIn, who: Principal = Depends(reader),
                state: ServiceState = Depends(get_state)) -> AnswerOut:
        """Approve the function's part as proposed (or, under four-eyes, the proposed edit
        the body names by its ``proposal_hash``)."""
        return _answer(approval_id, Approve(comment=body.comment), body.plan_hash, who, state,
                       body.preview_hash, body.proposal_hash)

    @router.post("/approvals/bulk-approve", response_model=BulkApproveOut,
                 responses={403: {"description": "the caller does not answer approvals"}})
    def bulk_approve(body: BulkApproveIn, who: Principal = Depends(reader),
                     state: ServiceState = Depends(get_state)) -> BulkApproveOut:
        """Approve several low-risk requests: the approval service answers each on its own
        (every check; refusals recorded) and says, per request, approved or refused and why."""
        items = [BulkItem(i.approval_id, i.plan_hash) for i in body.approvals]
        outcomes = state.runtime.approvals.approve_many(items, by=approver(who),
                                                        comment=body.comment)
        return BulkApproveOut(results=[BulkResultOut(**asdict(o)) for o in outcomes])

    @router.post("/approvals/{approval_id}/edit", response_model=AnswerOut)
    def edit(approval_id: str, body: EditIn, who: Principal = Depends(reader),
             state: ServiceState = Depends(get_state)) -> AnswerOut:
        """Approve with changed arguments, validated against the tool schema and limits."""
        answer = Edit(arguments=body.arguments, comment=body.comment)
        return _answer(approval_id, answer, body.plan_hash, who, state, body.preview_hash)

    @router.post("/approvals/{approval_id}/reject", response_model=AnswerOut)
    def reject(approval_id: str, body: RejectIn, who: Principal = Depends(reader),
               state: ServiceState = Depends(get_state)) -> AnswerOut:
        return _answer(approval_id, Reject(reason=body.reason), body.plan_hash, who, state)

    @router.post("/approvals/{approval_id}/revise", response_model=AnswerOut)
    def revise(approval_id: str, body: ReviseIn, who: Principal = Depends(reader),
               state: ServiceState = Depends(get_state)) -> AnswerOut:
        """Ask the planner for a new plan version (every function is asked again)."""
        return _answer(approval_id, Revise(feedback=body.feedback), body.plan_hash, who, state)

    @router.post("/approvals/{approval_id}/validate", response_model=ValidateOut)
    def validate(approval_id: str, body: ValidateIn, who: Principal = Depends(answerer),
                 state: ServiceState = Depends(get_state)) -> ValidateOut:
        """Check an edit without recording anything: the arguments that would be approved
        and the changes against the proposal, or 422 naming the field."""
        approval_view(state.runtime, who, approval_id)  # 404 unless visible
        preview = state.runtime.approvals.preview_edit(approval_id, dict(body.arguments),
                                                       by=approver(who))
        return ValidateOut(arguments=preview.arguments, changes=preview.changes,
                           locked=preview.locked)

    @router.get("/approvals/{approval_id}/hitl",
                summary="The request in LangChain's human-in-the-loop shape")
    def get_hitl(approval_id: str, who: Principal = Depends(reader),
                 state: ServiceState = Depends(get_state)) -> JSONResponse:
        """``action_requests`` + ``review_configs``; the ETag is the plan hash to send back
        in ``If-Match`` (under four-eyes with an edit proposed, ``<plan_hash>.<proposal_hash>``:
        the answer binds to that proposal too)."""
        view = approval_view(state.runtime, who, approval_id)  # 404 unless visible
        row = state.runtime.store.approvals.get(approval_id)
        proposal = state.runtime.approvals.proposal(approval_id)
        tag = row.request.plan_hash + (f".{proposal['hash']}" if proposal else "")
        return JSONResponse(hitl_request(row.request, state.runtime.tools, proposal,
                                         status=row.status.value, withdrawn=row.withdrawn,
                                         may=view),
                            headers={"ETag": f'"{tag}"'})

    @router.post("/approvals/{approval_id}/hitl", response_model=AnswerOut,
                 summary="Answer with LangChain human-in-the-loop decisions")
    def post_hitl(approval_id: str, body: HitlIn,
                  if_match: str = Header(..., alias="If-Match", max_length=140,
                                         description="The ETag of the GET: the plan hash "
                                         "(and the proposal's, under four-eyes)"),
                  who: Principal = Depends(reader),
                  state: ServiceState = Depends(get_state)) -> AnswerOut:
        request = state.runtime.store.approvals.get(approval_id).request
        tag = if_match.strip()
        if tag.startswith("W/") or tag == "*" or "," in tag:
            # If-Match compares strongly (RFC 9110): a weak tag, "*" or a list names no
            # one plan; the answer binds to the one the GET returned.
            raise InvalidInputError(f"must be the ETag the GET returned, as it was (not a "
                                    f"weak tag, '*' or a list): got {tag[:80]!r}",
                                    field="If-Match", location="header")
        plan_hash, dot, proposal_hash = tag.strip('"').partition(".")
        if not plan_hash:
            raise InvalidInputError("must carry the plan hash", field="If-Match",
                                    location="header")
        if dot and not proposal_hash:  # "<plan>." names a proposal, but none (trial 21)
            raise InvalidInputError("must be the ETag the GET returned, as it was: after "
                                    "the '.' it names no proposal hash", field="If-Match",
                                    location="header")
        answer = answer_from_hitl(request, body.decisions)
        try:
            return AnswerOut(**submit_answer(state.runtime, who, approval_id, answer, plan_hash,
                                             channel="hitl", proposal_hash=proposal_hash or None))
        except InvalidInputError as exc:
            if exc.details.get("field") not in ("plan_hash", "proposal_hash"):
                raise
            # The hashes came in the header: name it, as a stale one's refusal does.
            raise InvalidInputError(f"must be the ETag the GET returned, as it was: "
                                    f"{exc.message}", field="If-Match",
                                    location="header") from None

    return router
