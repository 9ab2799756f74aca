"""Approval requests in LangChain's human-in-the-loop shape, and its decisions back.

A request becomes ``{"action_requests": [{"name", "args", "description"}],
"review_configs": [{"action_name", "allowed_decisions", "args_schema"}]}`` (one action
per step of the function's part), so LangChain ecosystem UIs (Agent Inbox, Agent Chat
UI) can render it. Decisions come back one per action, in order: ``approve``, ``edit``
(``edited_action.args``: the step's new arguments) or ``reject`` (``message``). Our
answer is per function, so any reject rejects the function's part, any edit edits it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from decisionops.agent.errors import InvalidInputError, pydantic_message
from decisionops.agent.models import Answer, ApprovalRequest, Approve, Edit, Reject
from decisionops.agent.ports import ToolPort

__all__ = ["answer_from_hitl", "hitl_request"]


def hitl_request(request: ApprovalRequest, tools: ToolPort,
                 proposal: Mapping[str, Any] | None, *, status: str,
                 withdrawn: str | None, may: Mapping[str, Any]) -> dict[str, Any]:
    """The request as LangChain's HITL ``action_requests``; under four-eyes with an edit
    proposal standing, the actions carry the proposal's arguments (an approve approves
    them) and ``decisionops.proposal_hash`` names it. ``allowed_decisions`` are what the
    caller may still give (``may``: the approval view's ``can_answer``/``can_approve``):
    none once the request is answered or withdrawn (``decisionops.status``, ``withdrawn``
    says why), only reject when four eyes bar them from approving."""
    allowed = (["approve", "edit", "reject"] if may["can_approve"]
               else ["reject"] if may["can_answer"] else [])
    actions, configs = [], []
    proposed = (proposal or {}).get("arguments", {})
    for step in request.steps:
        why = f"{request.function}:{step.id}: {step.rationale}".strip()
        if proposal and step.id in proposed:
            why += f" [edit proposed by {proposal['proposer']}; approving approves it]"
        actions.append({"name": step.tool, "args": proposed.get(step.id, step.arguments),
                        "description": why})
        configs.append({"action_name": step.tool,
                        "allowed_decisions": list(allowed),
                        "args_schema": tools.spec(step.tool).parameters})
    return {"action_requests": actions, "review_configs": configs,
            "decisionops": {"approval_id": request.approval_id,
                            "decision_id": request.decision_id,
                            "function": request.function,
                            "plan_version": request.plan_version,
                            "plan_hash": request.plan_hash,
                            "proposal_hash": proposal["hash"] if proposal else None,
                            "status": status, "withdrawn": withdrawn,
                            "step_ids": [s.id for s in request.steps]}}


def answer_from_hitl(request: ApprovalRequest, decisions: Sequence[Any]) -> Answer:
    """Map validated HITL decisions (``agent.api._schemas.HitlDecision``) onto an answer."""
    steps = list(request.steps)
    if len(decisions) != len(steps):
        raise InvalidInputError(f"expected {len(steps)} decisions (one per action request), "
                                f"got {len(decisions)}", field="decisions")
    rejections: list[tuple[int, str]] = []
    edits = {}
    for index, (step, decision) in enumerate(zip(steps, decisions, strict=True)):
        if decision.type == "reject":
            rejections.append((index, (decision.message or "").strip()))
        elif decision.type == "edit":
            if decision.edited_action.name != step.tool:
                raise InvalidInputError(f"must be {step.tool!r} (the action requested)",
                                        field=f"decisions.{index}.edited_action.name")
            edits[step.id] = decision.edited_action.args
    if rejections:
        # A reject says why, on every channel (``Reject.reason``): the approver's words,
        # never one made up for them.
        try:
            return Reject(reason="; ".join(m for _, m in rejections if m))
        except ValidationError as exc:
            raise InvalidInputError(f"{pydantic_message(exc.errors()[0])}: a reject says why",
                                    field=f"decisions.{rejections[0][0]}.message") from None
    if edits:
        return Edit(arguments=edits, comment="via human-in-the-loop response")
    return Approve(comment="via human-in-the-loop response")
