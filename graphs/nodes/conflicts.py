"""conflicts: before routing, look at the other open decisions on the plan's entity
(``agent.conflicts``). A playbook that supersedes this decision's kind drops it
(``needs_human``, the superseding decision named, ``decision.superseded`` in the ledger);
a ``waits_for`` the playbook declares makes it ``waiting`` (the wait node); otherwise the
plan goes on to route with the related decisions, which its requests show.

A plan version a replayed leg finds routed already goes straight on (its routing, and
the related decisions its requests list, stand); one it finds refused (superseded) ends
as stored."""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime
from langgraph.types import Command

from decisionops.agent.conflicts import judge
from decisionops.agent.models import DecisionStatus
from decisionops.graphs.context import DecisionContext
from decisionops.graphs.state import DecisionState

__all__ = ["conflicts"]


def conflicts(state: DecisionState, runtime: Runtime[DecisionContext]
              ) -> Command[Literal["route", "wait", "record"]]:
    ctx = runtime.context
    plan = ctx.plan(state["plan"])
    # A replayed leg (superseded before a crash, re-run from here as check's step is
    # checkpointed): the stored verdict stands, whatever the entity's other decisions are
    # now, and is not recorded twice.
    stored = ctx.stored_verdict(plan)
    if stored is not None:
        if stored[0] == "accepted":
            return Command(goto="route")
        return Command(goto="record", update={"outcome": "needs_human", "planning": None,
                                              "error": stored[1]})
    prediction = state["prediction"]
    own = ctx.store.decisions.get(plan.decision_id)
    others = ctx.store.decisions.open_on_entity(prediction["entity_type"],
                                                prediction["entity_id"], exclude=own.id)
    verdict = judge(kind=prediction["kind"], playbook=plan.playbook or own.playbook,
                    created=(own.created_at, own.id),
                    others=[(o.related, o.created_at) for o in others], book=ctx.playbooks)
    related = [r.model_dump(mode="json") for r in verdict.related]
    if verdict.superseded_by is not None:
        with ctx.store.decision_tx(plan.decision_id, fence=ctx.fence, actor=ctx.actor) as tx:
            ctx.store.plans.save(tx, plan, verdict="refused", problems=[verdict.reason],
                                 record=state.get("planning"))
            tx.record("decision.superseded", {
                "by": verdict.superseded_by.decision_id, "kind": verdict.superseded_by.kind,
                "reason": verdict.reason}, plan_hash=plan.hash)
        return Command(goto="record", update={"outcome": "needs_human", "planning": None,
                                              "error": verdict.reason})
    if verdict.waits_for:
        ids = [o.decision_id for o in verdict.waits_for]
        with ctx.store.decision_tx(plan.decision_id, fence=ctx.fence, actor=ctx.actor) as tx:
            ctx.store.decisions.set_status(tx, DecisionStatus.WAITING, error=verdict.reason,
                                           plan_hash=plan.hash, body={"waits_for": ids})
        return Command(goto="wait", update={"waiting": {"decisions": ids,
                                                        "reason": verdict.reason}})
    return Command(goto="route", update={"related": related})
