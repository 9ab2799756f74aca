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

from agent.targets import check_targets
from graphs.context import DecisionContext
from graphs.state import DecisionState

__all__ = ["check"]


def check(state: DecisionState, runtime: Runtime[DecisionContext]
          ) -> Command[Literal["conflicts", "record"]]:
    ctx = runtime.context
    plan = ctx.plan(state["plan"])
    if not ctx.fresh:
        stored = ctx.store.plans.row(plan.decision_id, plan.version)
        if stored is not None and stored["verdict"] == "accepted":
            return Command(goto="conflicts")
        if stored is not None and stored["verdict"] == "refused":
            # Refused here or by conflicts before a crash: the same end, whatever a
            # lookup would say now (the stored verdict stands).
            return Command(goto="record", update={
                "outcome": "needs_human", "planning": None,
                "error": "; ".join(stored["problems"] or ()) or "plan refused"})
    found = check_targets(plan, ctx.tools)
    if not found.unknown:
        return Command(goto="conflicts")
    with ctx.store.decision_tx(plan.decision_id, fence=ctx.fence, actor=ctx.actor) as tx:
        ctx.store.plans.save(tx, plan, verdict="refused", problems=found.unknown,
                             record=state.get("planning"))
    return Command(goto="record", update={"outcome": "needs_human", "planning": None,
                                          "error": found.reason})
