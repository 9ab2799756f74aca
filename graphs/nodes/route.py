"""route: store the accepted plan with its routing, in one transaction: per function,
the approval service says whether policy approves its part or its approvers must answer
(by when); the auto-approvals, the pending requests and the decision's new status commit
together, so a decision never waits on requests that were not stored.

Every function people must answer gets its own ``approval`` branch (a ``Send``), so each
can be answered and resumed on its own.
"""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime
from langgraph.types import Command, Send

from decisionops.agent.faults import crash_point
from decisionops.agent.models import DecisionStatus, RelatedDecision
from decisionops.agent.targets import Subject
from decisionops.graphs.context import DecisionContext
from decisionops.graphs.state import DecisionState

__all__ = ["route"]


def route(state: DecisionState, runtime: Runtime[DecisionContext]
          ) -> Command[Literal["approval", "execute"]]:
    ctx = runtime.context
    plan = ctx.plan(state["plan"])
    # A leg that created its decision has routed nothing before; any other may be a
    # replay, which keeps the routing it stored.
    related = [RelatedDecision.model_validate(r) for r in state.get("related") or ()]
    prediction = state["prediction"]
    routing = ctx.approvals.route(plan, stored=not ctx.fresh, related=related,
                                  entity=Subject.of(prediction))
    status = DecisionStatus.AWAITING_APPROVAL if routing.ask else DecisionStatus.EXECUTING
    # That leg has stored nothing of the decision: no routing, and no plan unless the
    # planner persisted its draft (the plan node does for a non-deterministic one).
    new = ctx.fresh
    with ctx.store.decision_tx(plan.decision_id, fence=ctx.fence, actor=ctx.actor) as tx:
        ctx.store.plans.save(tx, plan, verdict="accepted", record=state.get("planning"),
                             new=new and ctx.planner.deterministic)
        ctx.store.approvals.auto_approve(tx, routing.auto_requests, plan.hash, new=new,
                                         earned=routing.earned)
        ctx.store.autonomy.record_answers(tx.conn, routing.class_rows)
        ctx.store.approvals.request(tx, routing.ask, new=new)
        ctx.store.decisions.set_status(tx, status, plan_hash=plan.hash,
                                       body={"waiting_on": routing.waiting_on})
    crash_point("after_route")
    offer = ctx.approvals.revise_offer(plan)  # what a revise can change, said beside it
    sends = [Send("approval", {"request": request.model_dump(mode="json"), "revise_can": offer})
             for request, _deadline in routing.ask]
    # Policy approved every function: nothing to wait for, nothing for join to decide.
    return Command(goto=sends or "execute", update={
        "answers": {r.function: r.model_dump(mode="json") for r in routing.auto},
        "planning": None, "related": None})
