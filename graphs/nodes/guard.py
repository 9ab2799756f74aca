"""guard: check the drafted plan against tool schemas, allow-lists, limits and totals. A
refused plan is stored with its problems and ends the decision as ``needs_human``; an
accepted one goes on to check (its targets exist) and route, which stores it with its
routing in one transaction."""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime
from langgraph.types import Command

from decisionops.agent.errors import PlanRejected
from decisionops.agent.guard import check_plan
from decisionops.graphs.context import DecisionContext
from decisionops.graphs.state import DecisionState

__all__ = ["guard"]


def guard(state: DecisionState, runtime: Runtime[DecisionContext]
          ) -> Command[Literal["check", "record"]]:
    ctx = runtime.context
    if state.get("plan") is None:
        return Command(goto="record", update={"outcome": "needs_human"})
    draft = ctx.plan(state["plan"])
    try:
        checked = check_plan(draft, ctx.tools, ctx.policies)
    except PlanRejected as exc:
        with ctx.store.decision_tx(draft.decision_id, fence=ctx.fence, actor=ctx.actor) as tx:
            ctx.store.plans.save(tx, draft, verdict="refused", problems=exc.problems,
                                 record=state.get("planning"))
        return Command(goto="record", update={"outcome": "needs_human", "planning": None,
                                              "error": "; ".join(exc.problems)})
    # An accepted plan is stored by route, in the transaction that records its routing.
    return Command(goto="check", update={"plan": ctx.state_plan(checked)})
