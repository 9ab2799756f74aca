"""What an approver sees: the request with its evidence (prediction, score and
explanation, the entity's record in the enterprise systems), the whole plan as a DAG
with the approver's part highlighted, expected cost and value; and who may see which
decision (approvers: decisions that involve one of their functions).

Read-only. Rendering lives in the templates (web) and the routes (JSON).
"""

from __future__ import annotations

from typing import Any

from decisionops.agent.api._auth import Principal
from decisionops.agent.approvals import argument_trail, not_for_bulk, visible_functions
from decisionops.agent.errors import DecisionOpsError, NotFoundError
from decisionops.agent.models import ApprovalStatus, Plan, Step
from decisionops.agent.runtime import Runtime
from decisionops.agent.store import ApprovalRow, DecisionRow

__all__ = ["approval_view", "decision_view", "entity_context", "inbox", "plan_graph",
           "public", "visible"]

_NODE_W, _NODE_H, _COL, _ROW, _PAD = 250, 54, 290, 74, 16


def entity_context(rt: Runtime, entity_type: str, entity_id: str) -> dict[str, Any]:
    """The entity's master record in the reference enterprise (empty when unknown)."""
    try:
        if entity_type == "account":
            rows = rt.enterprise.rows("accounts", account_id=entity_id)
        elif entity_type == "asset":
            rows = rt.enterprise.rows("assets", asset_id=entity_id)
        elif entity_type == "sku_site" and "@" in entity_id:
            sku, _, site = entity_id.partition("@")
            stock = rt.enterprise.rows("inventory", sku=sku, site=site)
            item = rt.enterprise.rows("skus", sku=sku)
            rows = [{**(item[0] if item else {}), **(stock[0] if stock else {})}] if (
                item or stock) else []
        else:
            rows = []
    except DecisionOpsError:
        return {}
    return {k: v for k, v in (rows[0] if rows else {}).items() if not k.endswith("_json")}


def plan_graph(plan: Plan, statuses: dict[str, str], highlight: tuple[str, ...] = ()
               ) -> dict[str, Any]:
    """Layout of the plan DAG: one column per wave of the topological order."""
    nodes: dict[str, dict[str, Any]] = {}
    waves = plan.topological_order()
    for col, wave in enumerate(waves):
        for row, step_id in enumerate(wave):
            step = plan.step(step_id)
            nodes[step_id] = {"id": step_id, "function": step.function, "tool": step.tool,
                              "x": _PAD + col * _COL, "y": _PAD + row * _ROW,
                              "w": _NODE_W, "h": _NODE_H, "mine": step.function in highlight,
                              "status": statuses.get(step_id, "proposed")}
    edges = []
    for step in plan.steps:
        for dep in step.depends_on:
            a, b = nodes[dep], nodes[step.id]
            edges.append({"from": dep, "to": step.id, "x1": a["x"] + _NODE_W,
                          "y1": a["y"] + _NODE_H // 2, "x2": b["x"], "y2": b["y"] + _NODE_H // 2})
    height = _PAD * 2 + max((len(w) for w in waves), default=1) * _ROW - (_ROW - _NODE_H)
    return {"nodes": list(nodes.values()), "edges": edges,
            "width": _PAD * 2 + len(waves) * _COL - (_COL - _NODE_W), "height": height}


def public(decision: DecisionRow) -> dict[str, Any]:
    """A decision as the API shows it (no lease internals)."""
    return {k: v for k, v in decision.to_dict().items() if k not in ("fence",)}


def visible(rt: Runtime, who: Principal, decision: DecisionRow) -> bool:
    """The store's one rule (``agent.store.seen_by``): an approver sees a decision whose
    current plan has a step of their function."""
    return rt.store.decisions.seen(decision.id, visible_functions(who))


def _visible_decision(rt: Runtime, who: Principal, decision_id: str) -> DecisionRow:
    decision = rt.store.decisions.get(decision_id)
    if not visible(rt, who, decision):
        # The same answer as for an unknown id: no hint that it exists.
        raise NotFoundError(f"no decision {decision_id!r}", field="decision_id")
    return decision


def decision_view(rt: Runtime, who: Principal, decision_id: str) -> dict[str, Any]:
    decision = _visible_decision(rt, who, decision_id)
    prediction = rt.store.predictions.row(decision.prediction_id) or {}
    plan = rt.store.plans.get(decision_id) if decision.plan_version else None
    steps = rt.store.plans.steps(decision_id, decision.plan_version) if plan else []
    statuses = {s["step_id"]: s["status"] for s in steps}
    approvals = rt.store.approvals.list(decision_id=decision_id)
    executions = rt.store.executions.list(decision_id)
    return {
        "decision": public(decision),
        "held": rt.approvals.held(decision, plan.functions() if plan else ()),
        "moving": not decision.terminal and rt.store.approvals.ready(decision_id),
        "prediction": prediction.get("payload"),
        "triage": {k: prediction.get(k) for k in ("triage_action", "triage_reason",
                                                  "triage_detail", "playbook", "expected_value")},
        "plan": plan.model_dump(mode="json") if plan else None,
        "locked": ({s.id: list(rt.tools.spec(s.tool).targets) for s in plan.steps}
                   if plan else {}),
        "graph": plan_graph(plan, statuses, who.functions) if plan else None,
        "steps": steps,
        "arguments": argument_trail(plan, approvals, executions) if plan else [],
        "approvals": [a.to_dict() for a in approvals],
        "executions": [e.to_dict() for e in executions],
        "ledger": [e.model_dump(mode="json") for e in rt.store.ledger.entries(decision_id)],
    }


def approval_view(rt: Runtime, who: Principal, approval_id: str) -> dict[str, Any]:
    row = rt.store.approvals.get(approval_id)
    try:
        decision = _visible_decision(rt, who, row.decision_id)
    except NotFoundError:  # as an unknown id: no hint that it exists, or of its decision
        raise NotFoundError(f"no approval {approval_id!r}", field="approval_id") from None
    prediction = rt.store.predictions.get(decision.prediction_id)
    plan = rt.store.plans.get(row.decision_id, row.plan_version)
    steps = rt.store.plans.steps(row.decision_id, row.plan_version)
    statuses = {s["step_id"]: s["status"] for s in steps}
    mine = plan.steps_of(row.function)
    return {
        "approval": row.to_dict(),
        "decision": {k: v for k, v in public(decision).items()
                     if k in ("id", "status", "kind", "entity_id", "plan_version", "plan_hash",
                              "expected_value")},
        "prediction": prediction.model_dump(mode="json"),
        "expected_value": prediction.expected_value,
        "entity": entity_context(rt, prediction.entity_type, prediction.entity_id),
        "plan": plan.model_dump(mode="json"),
        "locked": rt.approvals.locked(row.request),
        "graph": plan_graph(plan, statuses, (row.function,)),
        "cost": {"yours": round(sum(s.expected_cost for s in mine), 2),
                 "plan": round(sum(s.expected_cost for s in plan.steps), 2)},
        "value": {"yours": round(sum(s.expected_value for s in mine), 2),
                  "plan": round(sum(s.expected_value for s in plan.steps), 2)},
        "proposal": rt.approvals.proposal(approval_id),
        "four_eyes": rt.policies.get(row.function).four_eyes,
        "held": rt.approvals.held(decision, [row.function]),
        "related": [o.related.model_dump(mode="json") for o in rt.store.decisions.open_on_entity(
            prediction.entity_type, prediction.entity_id, exclude=row.decision_id)],
        "autonomy": rt.approvals.autonomy.for_request(row.request, decision.playbook),
        "preview_hash": row.request.preview_hash,
        "yours": who.role == "approver" and row.function in who.functions,
        **_what_may_be_answered(rt, who, row),
    }


def _what_may_be_answered(rt: Runtime, who: Principal, row: ApprovalRow) -> dict[str, Any]:
    """What the caller may answer on ``row``, by the approval service's rules (every
    channel offers what these say): any answer (a pending request of their function);
    an approve or an edit (not under four eyes when they asked for the plan or proposed
    the standing edit: ``four_eyes_bar`` says why); a revise (not past the last version
    the loop drafts)."""
    from decisionops.agent.api._approvals import approver

    by = approver(who)
    answering = (row.status is ApprovalStatus.PENDING
                 and rt.approvals.can_answer(by, row.function))
    barred = rt.approvals.may_approve(row, by) if answering else None
    return {"can_answer": answering, "can_approve": answering and barred is None,
            "four_eyes_bar": barred,
            **dict(zip(("can_revise", "revise_can"), rt.approvals.revise_offered(row),
                       strict=True))}


def _inbox_functions(who: Principal, function: str | None) -> list[str] | None:
    """The functions whose pending requests ``who`` sees (None: all of them)."""
    if who.sees_all:
        return [function] if function else None
    mine = [f for f in who.functions if who.role == "approver"]
    return [f for f in mine if function in (None, f)]


def waiting(rt: Runtime, who: Principal, *, function: str | None = None) -> int:
    """How many pending approvals ``inbox`` draws from (its page may show fewer)."""
    functions = _inbox_functions(who, function)
    return sum(n for f, n in rt.store.approvals.pending_count().items()
               if functions is None or f in functions)


def inbox(rt: Runtime, who: Principal, *, function: str | None = None, limit: int = 200
          ) -> list[dict[str, Any]]:
    """Pending approvals the caller may answer (or, for operators, all), most urgent first."""
    functions = _inbox_functions(who, function)
    if functions == []:
        return []
    rows = rt.store.approvals.inbox(functions, limit=limit)
    for row in rows:
        request = row.pop("request") or {}
        steps = [Step.model_validate(s) for s in request.get("steps", [])]
        row["steps"] = [{"id": s.id, "tool": s.tool, "arguments": s.arguments,
                         "risk": s.risk.value} for s in steps]
        row["not_for_bulk"] = not_for_bulk(  # None: it may be approved in bulk
            steps, rt.approvals.bulk_max_risk(row["function"]))
    return rows
