"""Answers from LangGraph clients (Studio, ``langgraph dev``, ``langgraph_sdk``): a resume
value is an answer like any other channel's, recorded by the approval service.

``client_answers(service, store)`` returns the ``DecisionContext.resume`` callable the
Studio graph uses: it reads who is resuming from LangGraph's authenticated user
(``config["configurable"]["langgraph_auth_user"]``, set by the server's auth, see
``graphs.studio_auth``), looks that user up among ours, turns the ``HumanResponse`` into
an ``Answer`` (``agent.approvals.answer_from_human``) and calls
``ApprovalService.answer``. The resolution returned is the one the service recorded,
read back from the store, never the client's value. A request already answered (in
another channel, or by an earlier run of the node) resolves to the recorded answer.

Every refusal is a ``UsageError`` whose message says what to send; the approval node
asks again with it. Not here: the graph's own resume by the engine (it feeds recorded
resolutions).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langgraph.config import get_config

from decisionops.agent.approvals import (
    ApprovalService,
    Approver,
    Resolution,
    answer_from_human,
    resolve,
)
from decisionops.agent.errors import ConflictError, PermissionDenied
from decisionops.agent.models import ApprovalRequest, ApprovalStatus
from decisionops.agent.store import Store

__all__ = ["client_answers"]

_SIGN_IN = ("send your DecisionOps token as the x-api-key header (or Authorization: Bearer) "
            "to a server run with the auth langgraph.json names (graphs/studio_auth.py)")


def _identity() -> str | None:
    user = (get_config().get("configurable") or {}).get("langgraph_auth_user")
    if user is None:
        return None
    identity = getattr(user, "identity", None)
    if identity is None and isinstance(user, dict):
        identity = user.get("identity")
    return str(identity) if identity else None


def _approver(store: Store) -> Approver:
    identity = _identity()
    if identity is None:
        raise PermissionDenied(f"no authenticated user resumed this run: {_SIGN_IN}")
    user = store.users.get(identity)
    if user is None or user.get("disabled_at") is not None:
        raise PermissionDenied(f"{identity!r} is not an active DecisionOps user: {_SIGN_IN}")
    return Approver(name=user["name"], role=user["role"], functions=tuple(user["functions"]),
                    channel="langgraph")


def client_answers(service: ApprovalService, store: Store
                   ) -> Callable[[ApprovalRequest, Any], Resolution]:
    def answer(request: ApprovalRequest, value: Any) -> Resolution:
        row = store.approvals.get(request.approval_id)
        if row.status is ApprovalStatus.SUPERSEDED and row.withdrawn is None:
            raise ConflictError(f"approval {request.approval_id} was superseded by a newer plan")
        if row.status is not ApprovalStatus.PENDING:
            return resolve(row)
        parsed = answer_from_human(request, value)
        result = service.answer(request.approval_id, parsed, by=_approver(store),
                                plan_hash=request.plan_hash)
        if result.status == "proposed":
            raise ConflictError(f"edit proposed (four-eyes): another {request.function} "
                                "approver must accept it")
        return resolve(store.approvals.get(request.approval_id))

    return answer
