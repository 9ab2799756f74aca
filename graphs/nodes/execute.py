"""execute: hand the approved steps to the executor; steps of functions whose part was
not approved (and their dependents) are skipped with the reason. When an operator hold
covers steps still to run, the run pauses (``hold``) and carries on after the release.
The results of the last calls go to record in the state, which stores them with the
terminal state.

Before the first step of a plan version runs, the approval service checks the world
(``ApprovalService.world_check``: the approved parts' previews read again): where it
changed beyond a tool's tolerance since the approvers looked, nothing runs and the plan
goes back to be drafted and routed again (a new version: every function answers again;
what policy approves it approves again), within ``max_replans``; past it, the changed
functions' steps are skipped with the reason and the rest runs. What the service
recorded for a version stands when the leg runs again.

An all-or-nothing plan (``Plan.all_or_nothing``) runs no step when one function's part
does not run (not approved, or skipped for a changed world): every step is skipped,
naming that function, and the decision ends rejected (a downtime window without its work
order helps no one)."""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Command

from decisionops.agent.approvals import Resolution
from decisionops.agent.executor import Scope
from decisionops.agent.faults import crash_point
from decisionops.agent.models import ApprovalStatus, DecisionStatus
from decisionops.graphs.context import DecisionContext
from decisionops.graphs.state import DecisionState

__all__ = ["execute"]


def execute(state: DecisionState, runtime: Runtime[DecisionContext]
            ) -> Command[Literal["record", "hold", "plan"]]:
    ctx = runtime.context
    plan = ctx.plan(state["plan"])
    answers = {f: Resolution.model_validate(a) for f, a in (state.get("answers") or {}).items()}
    approved: dict[str, dict[str, Any]] = {}
    not_approved: dict[str, str] = {}
    for function in plan.functions():
        answer = answers.get(function)
        if answer is not None and answer.approved is not None:
            approved.update(answer.approved)
            continue
        why = answer.why_not() if answer is not None else f"{function} did not answer"
        for step in plan.steps_of(function):
            not_approved[step.id] = why
    granted = [f for f, a in answers.items() if a.approved is not None]
    # An all-or-nothing plan refused in part runs nothing: no world to check for it.
    if granted and not (plan.all_or_nothing and not_approved) and not any(
            r.plan_version == plan.version for r in ctx.store.executions.list(plan.decision_id)):
        world = ctx.approvals.world_check(plan, granted, fence=ctx.fence, actor=ctx.actor,
                                          max_replans=ctx.max_replans)
        if world is not None:
            crash_point("after_preview_changed")
            if world.again:
                return Command(goto="plan", update={"answers": {}})
            for function, why in world.changed.items():
                for step in plan.steps_of(function):
                    approved.pop(step.id, None)
                    not_approved[step.id] = f"the world changed since approval: {why}"
    refused_whole = plan.all_or_nothing and bool(not_approved)
    if refused_whole:
        # All or nothing: one function's part does not run (not approved, or the world
        # changed under it past max_replans), so no part runs.
        first = next(s for s in plan.steps if s.id in not_approved)
        why = f"all or nothing: {first.function}'s part does not run ({not_approved[first.id]})"
        not_approved = {step.id: why for step in plan.steps}
        approved = {}
    scope = Scope(entity_id=state["prediction"].get("entity_id"), playbook=state.get("playbook"),
                  # Policy's auto-approve totals bind what policy approved; a part
                  # approved by earned autonomy is bound by the function's own totals.
                  auto=frozenset(f for f, a in answers.items()
                                 if a.status is ApprovalStatus.AUTO_APPROVED
                                 and not a.approver.startswith("autonomy:")))
    report = ctx.executor.run(plan, approved, not_approved, fence=ctx.fence, scope=scope)
    if report.held:
        return Command(goto="hold", update={"held": {
            "reason": report.held, "functions": sorted(report.held_functions)}})
    if report.failed:
        status = DecisionStatus.COMPENSATED if report.compensated else DecisionStatus.FAILED
    elif refused_whole or (not_approved and not report.succeeded):
        # Nothing ran for want of approval (a part not approved, and every approved
        # step waiting on it): rejected, not completed as a decision that did its work.
        status = DecisionStatus.REJECTED
    else:
        status = DecisionStatus.COMPLETED
    # The last wave's results are recorded by record, with the terminal state.
    return Command(goto="record", update={
        "outcome": status.value, "held": None,
        "error": "; ".join(f"{k}: {v}" for k, v in sorted(report.failed.items())) or None,
        "results": report.unrecorded.to_json() if report.unrecorded else None})
