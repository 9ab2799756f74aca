"""Helpers tests share for driving decisions the way the product does: answers go to the
approval service as registered approvers, and a worker applies them."""

from __future__ import annotations

from typing import Any

from decisionops.agent.approvals import AnswerResult, Approver
from decisionops.agent.models import Answer
from decisionops.agent.runtime import Runtime
from decisionops.agent.worker import Worker
from decisionops.graphs import StepResult


def approver(rt: Runtime, name: str, channel: str = "cli") -> Approver:
    """``name`` (a policy's approver entry, e.g. ``raj@sales``) as a registered approver
    of every function whose policy lists it (registered on first use)."""
    user = rt.store.users.get(name)
    if user is None:
        functions = sorted(f for f, p in rt.policies.functions.items() if name in p.approvers)
        rt.store.users.create(name, role="approver", functions=functions, actor="test")
        user = rt.store.users.get(name)
        assert user is not None
    return Approver(name=user["name"], role=user["role"], functions=tuple(user["functions"]),
                    channel=channel)  # type: ignore[arg-type]


def answer(rt: Runtime, approval_id: str, reply: Answer, *, approver_name: str,
           apply: bool = True) -> StepResult | AnswerResult | None:
    """Record ``reply`` as ``approver_name``; with ``apply`` a worker applies it at once
    and the decision's new state is returned (None when another worker holds it)."""
    result = rt.approvals.answer(approval_id, reply, by=approver(rt, approver_name))
    if not apply or result.status == "proposed":
        return result
    return Worker(rt).apply(result.decision_id)


def start_decisions(rt: Runtime, limit: int = 1000) -> list[StepResult]:
    """Claim and start every actionable prediction (as a worker's tick does)."""
    claims = rt.store.decisions.claim_new(owner=rt.engine.owner,
                                          lease_seconds=rt.settings.lease_seconds, limit=limit)
    return [rt.engine.start(claim) for claim in claims]


def pending(rt: Runtime, decision_id: str) -> dict[str, dict[str, Any]]:
    """function → its pending request (as JSON) of a decision."""
    return {a.function: a.to_dict() for a in rt.store.approvals.list(decision_id=decision_id,
                                                                     status="pending")}
