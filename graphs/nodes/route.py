"""route: store the accepted plan; per function, policy approves its part or asks its
approvers.

Functions whose part policy approves are recorded as auto-approved here; every other
function gets its own ``approval`` branch (a ``Send``), so each can be answered and
resumed on its own.
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Command, Send

from agent.hashing import short_id
from agent.models import ApprovalRequest, ApprovalStatus, Plan
from graphs.context import DecisionContext
from graphs.state import DecisionState

__all__ = ["approval_request", "route"]


def approval_request(plan: Plan, function: str, reason: str, approvers: tuple[str, ...]
                     ) -> ApprovalRequest:
    return ApprovalRequest(
        approval_id=short_id("apr", plan.decision_id, plan.version, function),
        decision_id=plan.decision_id, function=function, plan_version=plan.version,
        plan_hash=plan.hash, steps=tuple(plan.steps_of(function)),
        other_steps=tuple(f"{s.function}:{s.id}" for s in plan.steps if s.function != function),
        approvers=approvers, reason=reason)


def route(state: DecisionState, runtime: Runtime[DecisionContext]
          ) -> Command[Literal["approval", "execute"]]:
    ctx = runtime.context
    plan = ctx.plan(state["plan"])
    answers: dict[str, Any] = {}
    auto: list[ApprovalRequest] = []
    sends: list[Send] = []
    for function in plan.functions():
        policy = ctx.policies.get(function)
        steps = plan.steps_of(function)
        reason = policy.needs_human(steps)
        if reason is None:
            auto.append(approval_request(plan, function, "within auto-approve policy",
                                         policy.approvers))
            answers[function] = {"status": ApprovalStatus.AUTO_APPROVED.value,
                                 "approver": f"policy:{function}",
                                 "approved": {s.id: s.arguments for s in steps}}
        else:
            request = approval_request(plan, function, reason, policy.approvers)
            sends.append(Send("approval", {"request": request.model_dump(mode="json")}))
    ctx.store.route(plan, auto=auto, waiting_on=sorted(s.arg["request"]["function"] for s in sends),
                    actor=ctx.actor, fence=ctx.fence, record=state.get("planning"))
    # Policy approved every function: nothing to wait for, nothing for join to decide.
    return Command(goto=sends or "execute", update={"answers": answers, "planning": None})
