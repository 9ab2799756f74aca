"""check: before routing, confirm every target of the guarded plan exists (the read-only
lookups each tool declares, ``agent.targets``). An unknown target stores the plan as
refused, naming the entity, and ends the decision as ``needs_human``: no request is
created, no approver is asked. Otherwise the plan goes on to route unchanged.

Reads only, so a re-run repeats them harmlessly; a plan version that a replayed leg
finds stored already is not looked up again: routed, it goes on; refused (here or by
conflicts), it ends as stored."""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime
from langgraph.types import Command

from decisionops.agent.targets import check_targets
from decisionops.graphs.context import DecisionContext
from decisionops.graphs.state import DecisionState

__all__ = ["check"]


def check(state: DecisionState, runtime: Runtime[DecisionContext]
          ) -> Command[Literal["conflicts", "record"]]:
    ctx = runtime.context
    plan = ctx.plan(state["plan"])
    stored = ctx.stored_verdict(plan)  # a replayed leg: the stored verdict stands
    if stored is not None:
        if stored[0] == "accepted":
            return Command(goto="conflicts")
        return Command(goto="record", update={"outcome": "needs_human", "planning": None,
                                              "error": stored[1]})
    found = check_targets(plan, ctx.tools)
    if not found.unknown:
        return Command(goto="conflicts")
    with ctx.store.decision_tx(plan.decision_id, fence=ctx.fence, actor=ctx.actor) as tx:
        ctx.store.plans.save(tx, plan, verdict="refused", problems=found.unknown,
                             record=state.get("planning"))
    return Command(goto="record", update={"outcome": "needs_human", "planning": None,
                                          "error": found.reason})
