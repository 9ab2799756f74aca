"""record: write the decision's terminal status and its summary, with the results of the
executor's last calls, in one durable transaction that also releases the lease and marks
every answer of the decision applied (nothing is left for a worker to feed it)."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from decisionops.agent.faults import crash_point
from decisionops.agent.models import DecisionStatus
from decisionops.agent.store import FinishedCalls
from decisionops.graphs.context import DecisionContext
from decisionops.graphs.state import DecisionState

__all__ = ["record"]


def record(state: DecisionState, runtime: Runtime[DecisionContext]) -> dict[str, Any]:
    ctx = runtime.context
    status = DecisionStatus(state.get("outcome") or DecisionStatus.FAILED.value)
    plan = state.get("plan") or {}
    answers = state.get("answers") or {}
    results = FinishedCalls.from_json(state["results"]) if state.get("results") else None
    if results:
        # The last calls have acted; their results are written below, with the state.
        crash_point("before_record")
    # The plan version the decision ended on (its hash is cached by the nodes before).
    plan_hash = ctx.plan(plan).hash if plan else None
    store = ctx.store
    with store.decision_tx(state["decision_id"], fence=ctx.fence, actor=ctx.actor,
                           durable=status.terminal) as tx:
        if results:
            store.executions.finish(tx, plan_version=results.plan_version,
                                    plan_hash=results.plan_hash, calls=results.calls)
        store.decisions.set_status(
            tx, status, error=state.get("error"), plan_hash=plan_hash,
            body={"answers": {f: a.get("status") for f, a in sorted(answers.items())},
                  "plan_version": plan.get("version")})
        store.approvals.mark_all_applied(tx, finished=status.terminal)
    if status.terminal and ctx.settled is not None:
        ctx.settled()
    return {"outcome": status.value, "results": None}
