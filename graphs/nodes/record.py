"""record: write the decision's terminal status and its summary to the store and ledger,
with the results of the executor's last calls (one transaction)."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.faults import crash_point
from agent.models import DecisionStatus
from agent.store import FinishedCalls
from graphs.context import DecisionContext
from graphs.state import DecisionState

__all__ = ["record"]


def record(state: DecisionState, runtime: Runtime[DecisionContext]) -> dict[str, Any]:
    ctx = runtime.context
    status = DecisionStatus(state.get("outcome") or DecisionStatus.FAILED.value)
    plan = state.get("plan") or {}
    answers = state.get("answers") or {}
    results = state.get("results")
    if results:
        # The last calls have acted; their results are written below, with the state.
        crash_point("before_record")
    # The plan version the decision ended on (its hash is cached by the nodes before).
    plan_hash = ctx.plan(plan).hash if plan else None
    ctx.store.set_status(state["decision_id"], status, fence=ctx.fence, actor=ctx.actor,
                         error=state.get("error"), plan_hash=plan_hash,
                         body={"answers": {f: a.get("status") for f, a in sorted(answers.items())},
                               "plan_version": plan.get("version")},
                         finished=FinishedCalls.from_json(results) if results else None)
    if status.terminal and ctx.settled is not None:
        ctx.settled()
    return {"outcome": status.value, "results": None}
