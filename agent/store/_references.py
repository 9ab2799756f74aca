"""Rows stored by reference to the plan version they belong to.

A plan version is immutable (its hash is in the decision, its approvals and the
ledger), and ``plans.body`` holds its steps. Other tables keep no copy of them; the
store reads them back from it:

- ``plan_steps.arguments``, and ``executions.arguments`` of a step approved as proposed,
  are NULL (an edited step's arguments and a compensation's are stored);
- an approval request (a function's part of the plan) keeps only what the plan does not
  say: the ids of its steps, the rest of the plan for context, the approvers and the
  policy's reason.

Copies used to be stored in all three places, which made them the biggest columns of
the store after the ledger. Rows written with their copies are returned as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, select

from decisionops.agent.models import ApprovalRequest
from decisionops.agent.store import _tables as t

__all__ = ["compact_request", "hydrate_arguments", "hydrate_requests", "is_compact"]

_CHUNK = 500


def compact_request(request: ApprovalRequest) -> dict[str, Any]:
    """What of ``request`` neither the plan nor the approval row (its ``reason``
    column) holds: the ids of its steps, the approvers asked and, when there are any,
    the other open decisions on the entity at routing time."""
    compact: dict[str, Any] = {"steps": [s.id for s in request.steps],
                               "approvers": list(request.approvers)}
    if request.related:
        compact["related"] = [r.model_dump(mode="json") for r in request.related]
    if request.previews:
        compact["previews"] = request.previews
    return compact


def is_compact(request: Any) -> bool:
    """Whether a stored request is the compact form (step ids, not copies of steps)."""
    steps = request.get("steps") if isinstance(request, dict) else None
    return bool(steps) and all(isinstance(s, str) for s in steps)


def _plan_steps(conn: Connection, wanted: set[tuple[str, int]]
                ) -> dict[tuple[str, int], dict[str, dict[str, Any]]]:
    """(decision id, plan version) → step id → the step as ``plans.body`` has it."""
    steps: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}  # in plan order
    decisions = sorted({d for d, _ in wanted})
    for i in range(0, len(decisions), _CHUNK):
        query = select(t.plans.c.decision_id, t.plans.c.version, t.plans.c.body).where(
            t.plans.c.decision_id.in_(decisions[i:i + _CHUNK]))
        for decision_id, version, body in conn.execute(query):
            if (decision_id, version) in wanted:
                steps[(decision_id, version)] = {s["id"]: s for s in body["steps"]}
    return steps


def hydrate_arguments(conn: Connection, rows: Iterable[dict[str, Any]]
                      ) -> list[dict[str, Any]]:
    """``rows`` (plan steps or executions: ``decision_id``, ``plan_version``, ``step_id``,
    ``arguments``) with NULL arguments replaced by the plan version's, in place."""
    rows = list(rows)
    wanted = {(r["decision_id"], r["plan_version"]) for r in rows if r["arguments"] is None}
    if wanted:
        steps = _plan_steps(conn, wanted)
        for row in rows:
            if row["arguments"] is None:
                step = steps.get((row["decision_id"], row["plan_version"]), {}).get(
                    row["step_id"])
                row["arguments"] = dict(step["arguments"]) if step else {}
    return rows


def hydrate_requests(conn: Connection, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` (approval rows with ``id``, ``decision_id``, ``plan_version``,
    ``plan_hash``, ``function``, ``reason`` and ``request``) with each compact request
    expanded to the full request (as :meth:`ApprovalRequest.model_dump` gives it), in
    place. The rest of the plan (``other_steps``) is every step of another function."""
    rows = list(rows)
    wanted = {(r["decision_id"], r["plan_version"]) for r in rows if is_compact(r.get("request"))}
    if not wanted:
        return rows
    steps = _plan_steps(conn, wanted)
    for row in rows:
        request = row.get("request")
        if not is_compact(request):
            continue
        plan = steps.get((row["decision_id"], row["plan_version"]), {})
        row["request"] = {
            "approval_id": row["id"], "decision_id": row["decision_id"],
            "function": row["function"], "plan_version": row["plan_version"],
            "plan_hash": row["plan_hash"],
            "steps": [plan[s] for s in request["steps"] if s in plan],
            "other_steps": [f"{s['function']}:{s['id']}" for s in plan.values()
                            if s["function"] != row["function"]],
            "approvers": request.get("approvers", []), "reason": row.get("reason") or "",
            "related": request.get("related", []), "previews": request.get("previews", {}),
        }
    return rows
