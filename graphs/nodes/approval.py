"""approval: ask one function's approvers and wait.

The node builds the request and calls ``interrupt()`` with no side effect before it
(LangGraph re-runs the node from its first line on resume). The interrupt value is Agent
Inbox's ``HumanInterrupt`` with our ids beside it (``agent.approvals.human_interrupt``).

Two kinds of resume:

* the engine's: the function's ``Resolution``, which the approval service recorded and a
  worker read back from the store; a value that is not one, or is another function's,
  resolves the part as rejected (fail safe);
* a LangGraph client's (Studio, ``langgraph dev``), when the context has ``resume``: a
  ``HumanResponse`` answered through the approval service as the client's user. A
  refused value (malformed, wrong user, stale…) is not the end of the decision: the node
  asks again, the interrupt's ``error`` saying why and what to send; after
  ``MAX_REFUSED`` refusals the part resolves as rejected. LangGraph replays a node's
  earlier resume values each time it re-runs it, and the user of a replay is the latest
  run's: so each refusal is remembered in the graph's store (``runtime.store``, by
  approval id and attempt) and a replayed value is never judged again.

What may run is bound once more by the executor, which runs only arguments the ledger
recorded as approved.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from langgraph.types import interrupt
from pydantic import ValidationError

from decisionops.agent.approvals import Resolution, human_interrupt
from decisionops.agent.errors import UsageError
from decisionops.agent.models import ApprovalRequest, ApprovalStatus
from decisionops.graphs.context import DecisionContext

__all__ = ["MAX_REFUSED", "approval"]

MAX_REFUSED = 10
"""Refused client resumes before the part resolves as rejected (each re-run of the node
replays every earlier resume value)."""


_NAMESPACE = ("decisionops", "refused_resumes")


def _refused(memo: BaseStore | None, approval_id: str, attempt: int) -> str | None:
    if memo is None:
        return None
    item = memo.get((*_NAMESPACE, approval_id), str(attempt))
    return str(item.value["error"]) if item is not None else None


def _recorded(function: str, reply: Any) -> Resolution:
    try:
        resolved = Resolution.model_validate(reply)
        if resolved.function != function:
            raise ValueError(f"the answer is {resolved.function}'s, not {function}'s")
    except (ValidationError, ValueError) as exc:
        resolved = Resolution(function=function, status=ApprovalStatus.REJECTED,
                              approver="system", reason=f"malformed answer: {exc}")
    return resolved


def approval(payload: dict[str, Any], runtime: Runtime[DecisionContext]) -> dict[str, Any]:
    request = ApprovalRequest.model_validate(payload["request"])
    function = request.function
    resume = runtime.context.resume
    error: str | None = None
    memo = runtime.store
    offer = payload.get("revise_can")  # (absent from a branch sent before it was said)
    revisable = runtime.context.approvals.revisable(request.plan_version, offer)
    for attempt in range(MAX_REFUSED):
        reply = interrupt(human_interrupt(request, revisable=revisable, error=error,
                                          revise_can=offer))
        if resume is None:
            resolved = _recorded(function, reply)
            break
        refused = _refused(memo, request.approval_id, attempt)
        if refused is not None:  # a replay of a value refused before
            error = refused
            continue
        try:
            resolved = resume(request, reply)
            break
        except UsageError as exc:
            error = str(exc)
            if memo is not None:
                memo.put((*_NAMESPACE, request.approval_id), str(attempt), {"error": error})
    else:
        resolved = Resolution(function=function, status=ApprovalStatus.REJECTED,
                              approver="system",
                              reason=f"{MAX_REFUSED} refused answers, the last: {error}")
    return {"answers": {function: resolved.model_dump(mode="json")}}
