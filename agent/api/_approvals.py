"""Answering an approval over HTTP: translate the caller's credential into an
``Approver`` and hand the answer to the approval service, which owns every rule
(authorization, four-eyes, stale plans, edit rules, compare-and-set, the ledger record
of each refusal; see ``agent.approvals``). Nothing is checked here twice.
"""

from __future__ import annotations

from typing import Any

from decisionops.agent.api._auth import Principal
from decisionops.agent.approvals import Approver, Channel
from decisionops.agent.models import Answer
from decisionops.agent.runtime import Runtime

__all__ = ["approver", "submit_answer"]


def approver(who: Principal, channel: Channel = "api") -> Approver:
    return Approver(name=who.name, role=who.role, functions=tuple(who.functions),
                    channel=channel)


def submit_answer(rt: Runtime, who: Principal, approval_id: str, answer: Answer,
                  plan_hash: str, *, channel: Channel = "api",
                  preview_hash: str | None = None,
                  proposal_hash: str | None = None) -> dict[str, Any]:
    """Record an answer; returns the ``AnswerOut`` fields. A worker applies it (this
    process's worker is woken at once); the answer never waits for a lease."""
    result = rt.approvals.answer(approval_id, answer, by=approver(who, channel),
                                 plan_hash=plan_hash, preview_hash=preview_hash,
                                 proposal_hash=proposal_hash)
    return {"approval_id": result.approval_id, "status": result.status,
            "decision_id": result.decision_id, "decision_status": result.decision_status,
            "pending_approvals": result.pending_approvals, "held": result.held,
            "applied": False}
