"""Approval requests are stored by reference to the plan they belong to.

An :class:`~agent.models.ApprovalRequest` is a function's part of one plan version. The
plan version is immutable (its hash is in the approval row and in the ledger), so the
``request`` column keeps only what the plan does not say — the ids of the function's
steps, the rest of the plan for context, the approvers, the policy's reason — and the
steps themselves are read back from ``plans.body``. Before this, every request carried
a copy of its steps' arguments and rationales: the biggest column of the biggest table
after the ledger, for data stored twice already (plan body and plan steps).

Rows written in the old, self-contained form are returned as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, select

from agent.models import ApprovalRequest
from agent.store import _tables as t

__all__ = ["compact_request", "hydrate_requests"]

_CHUNK = 500


def compact_request(request: ApprovalRequest) -> dict[str, Any]:
    """What of ``request`` the plan does not already hold."""
    return {"steps": [s.id for s in request.steps], "other_steps": list(request.other_steps),
            "approvers": list(request.approvers), "reason": request.reason}


def _compact(request: Any) -> bool:
    steps = request.get("steps") if isinstance(request, dict) else None
    return bool(steps) and all(isinstance(s, str) for s in steps)


def hydrate_requests(conn: Connection, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` (approval rows with ``id``, ``decision_id``, ``plan_version``,
    ``plan_hash``, ``function`` and ``request``) with each compact request expanded to
    the full request (as :meth:`ApprovalRequest.model_dump` gives it), in place."""
    rows = list(rows)
    wanted = {(r["decision_id"], r["plan_version"]) for r in rows if _compact(r.get("request"))}
    if not wanted:
        return rows
    steps: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    decisions = sorted({d for d, _ in wanted})
    for i in range(0, len(decisions), _CHUNK):
        query = select(t.plans.c.decision_id, t.plans.c.version, t.plans.c.body).where(
            t.plans.c.decision_id.in_(decisions[i:i + _CHUNK]))
        for decision_id, version, body in conn.execute(query):
            if (decision_id, version) in wanted:
                steps[(decision_id, version)] = {s["id"]: s for s in body["steps"]}
    for row in rows:
        request = row.get("request")
        if not _compact(request):
            continue
        plan = steps.get((row["decision_id"], row["plan_version"]), {})
        row["request"] = {
            "approval_id": row["id"], "decision_id": row["decision_id"],
            "function": row["function"], "plan_version": row["plan_version"],
            "plan_hash": row["plan_hash"],
            "steps": [plan[s] for s in request["steps"] if s in plan],
            "other_steps": request.get("other_steps", []),
            "approvers": request.get("approvers", []), "reason": request.get("reason", ""),
        }
    return rows
