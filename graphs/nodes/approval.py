"""approval: ask one function's approvers and wait.

The node builds the request and calls ``interrupt()`` with no side effect before it
(LangGraph re-runs the node from its first line on resume). The resume value is the
function's ``Resolution``, which the approval service recorded and a worker read back
from the store; a value that is not one, or is another function's, resolves the part as
rejected (fail safe). What may run is bound once more by the executor, which runs only
arguments the ledger recorded as approved.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt
from pydantic import ValidationError

from agent.approvals import Resolution
from agent.models import ApprovalRequest, ApprovalStatus
from graphs.context import DecisionContext

__all__ = ["approval"]


def approval(payload: dict[str, Any], runtime: Runtime[DecisionContext]) -> dict[str, Any]:
    request = ApprovalRequest.model_validate(payload["request"])
    reply = interrupt(request.model_dump(mode="json"))

    function = request.function
    try:
        resolved = Resolution.model_validate(reply)
        if resolved.function != function:
            raise ValueError(f"the answer is {resolved.function}'s, not {function}'s")
    except (ValidationError, ValueError) as exc:
        resolved = Resolution(function=function, status=ApprovalStatus.REJECTED,
                              approver="system", reason=f"malformed answer: {exc}")
    return {"answers": {function: resolved.model_dump(mode="json")}}
