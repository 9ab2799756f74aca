"""approval: ask one function's approvers and wait.

The node builds the request and calls ``interrupt()`` with no side effect before it
(LangGraph re-runs the node from its first line on resume). The resume value is the
answer the approval service already validated and recorded; it is validated again
here, and an edit is re-checked against the tool schema and the function's limits.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt
from pydantic import TypeAdapter, ValidationError

from agent.guard import check_step
from agent.models import Answer, ApprovalRequest, ApprovalStatus, Edit, Reject, Revise
from graphs.context import DecisionContext

__all__ = ["approval"]

_ANSWER: TypeAdapter[Any] = TypeAdapter(Answer)


def approval(payload: dict[str, Any], runtime: Runtime[DecisionContext]) -> dict[str, Any]:
    request = ApprovalRequest.model_validate(payload["request"])
    reply = interrupt(request.model_dump(mode="json"))

    function = request.function
    try:
        answer = _ANSWER.validate_python(reply.get("answer"))
        approver = str(reply["approver"])
    except (ValidationError, KeyError, AttributeError) as exc:
        return {"answers": {function: {"status": ApprovalStatus.REJECTED.value,
                                       "approver": "system", "reason": f"malformed answer: {exc}"}}}
    proposed = {s.id: s.arguments for s in request.steps}
    if isinstance(answer, Reject):
        return {"answers": {function: {"status": ApprovalStatus.REJECTED.value,
                                       "approver": approver, "reason": answer.reason}}}
    if isinstance(answer, Revise):
        return {"answers": {function: {"status": ApprovalStatus.REVISE.value,
                                       "approver": approver, "feedback": answer.feedback}}}
    if isinstance(answer, Edit):
        approved = dict(reply.get("approved_arguments") or {})
        ctx = runtime.context
        for step in request.steps:
            if step.id not in approved:
                approved[step.id] = step.arguments
                continue
            _, problems = check_step(step.model_copy(update={"arguments": approved[step.id]}),
                                     ctx.tools, ctx.policies)
            if problems:
                return {"answers": {function: {
                    "status": ApprovalStatus.REJECTED.value, "approver": approver,
                    "reason": f"edit failed validation: {problems[0]}"}}}
        return {"answers": {function: {"status": ApprovalStatus.EDITED.value,
                                       "approver": approver, "approved": approved}}}
    return {"answers": {function: {"status": ApprovalStatus.APPROVED.value,
                                   "approver": approver, "approved": proposed}}}
