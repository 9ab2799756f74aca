"""execute: hand the approved steps to the executor; steps of functions that did not
approve (and their dependents) are skipped with the reason. The results of the last
calls go to record in the state, which stores them with the terminal state."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.models import ApprovalStatus, DecisionStatus
from graphs.context import DecisionContext
from graphs.nodes.join import APPROVED
from graphs.state import DecisionState

__all__ = ["execute"]


def execute(state: DecisionState, runtime: Runtime[DecisionContext]) -> dict[str, Any]:
    ctx = runtime.context
    plan = ctx.plan(state["plan"])
    answers = state.get("answers") or {}
    approved: dict[str, dict[str, Any]] = {}
    not_approved: dict[str, str] = {}
    for function in plan.functions():
        answer = answers.get(function, {})
        if answer.get("status") in APPROVED:
            approved.update(answer["approved"])
            continue
        if answer.get("status") == ApprovalStatus.REVISE.value:
            why = f"{function} asked for a revision past the re-plan limit"
        else:
            why = f"{function} rejected: {answer.get('reason') or 'no reason given'}"
        for step in plan.steps_of(function):
            not_approved[step.id] = why
    # The last wave's results are recorded by record, with the terminal state, in one
    # transaction.
    report = ctx.executor.run(plan, approved, not_approved, fence=ctx.fence)
    if report.failed:
        status = DecisionStatus.COMPENSATED if report.compensated else DecisionStatus.FAILED
    else:
        status = DecisionStatus.COMPLETED
    return {"outcome": status.value,
            "error": "; ".join(f"{k}: {v}" for k, v in sorted(report.failed.items())) or None,
            "results": report.unrecorded.to_json() if report.unrecorded else None}
