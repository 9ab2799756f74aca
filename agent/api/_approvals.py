"""Answering an approval over HTTP: who may, on which plan version, and under four-eyes.

Checks, in order; each refusal is recorded in the ledger (``approval.refused`` with a
reason code) before it is answered, and changes nothing else:

* ``not_an_approver`` 403: the caller's role does not answer approvals.
* ``wrong_function`` 403: the approval is another function's part of the plan.
* ``not_in_policy`` 403: the function's policy does not list the caller as an approver.
* ``replay`` 409: the approval was already answered (a captured request sent again).
* ``stale_plan`` 409: the plan hash sent is not the approval's, or the plan moved on.
* ``four_eyes`` 403: the function has ``four_eyes: true`` and the caller requested this
  plan version (submitted the prediction or asked for the revision that produced it)
  or proposed an edit to it. Under four-eyes an edit is recorded as a proposal; a
  second approver of the function approves it (plain approve = approve the proposal).
* ``conflict`` 409: another approver answered first (compare-and-set in the store).

The approver identity passed on is the policy's name for the caller (``dana`` maps to
``dana@finance``), taken from the credential, never from the body.
"""

from __future__ import annotations

from typing import Any, NoReturn

from agent.api._auth import Principal
from agent.api._users import policy_identity
from agent.errors import ConflictError, InvalidInputError, PermissionDenied, ToolArgumentsError
from agent.guard import check_step
from agent.models import Answer, ApprovalRequest, Approve, Edit, Reject, Revise
from agent.runtime import Runtime
from agent.store import Event

__all__ = ["approver_identity", "can_answer", "submit_answer", "validate_edit"]

_ANSWERED = {"approved", "edited", "rejected", "revise", "auto_approved"}


def approver_identity(rt: Runtime, who: Principal, function: str) -> str | None:
    """The policy's approver name for ``who`` in ``function``, or None."""
    if who.role != "approver" or function not in who.functions:
        return None
    return policy_identity(rt.policies.get(function).approvers, who.name)


def can_answer(rt: Runtime, who: Principal, function: str) -> bool:
    return approver_identity(rt, who, function) is not None


def _refuse(rt: Runtime, who: Principal, row: dict[str, Any], code: str, message: str,
            *, conflict: bool = False) -> NoReturn:
    rt.store.record_events([Event(
        actor=who.name, event="approval.refused", decision_id=row["decision_id"],
        plan_hash=row["plan_hash"],
        body={"approval_id": row["id"], "function": row["function"], "reason": code,
              "message": message, "role": who.role})])
    if conflict:
        raise ConflictError(message, reason=code)
    raise PermissionDenied(message, reason=code)


def validate_edit(rt: Runtime, request: ApprovalRequest, arguments: dict[str, dict[str, Any]]
                  ) -> dict[str, dict[str, Any]]:
    """The complete, normalized argument sets an edit would approve; raises
    ``InvalidInputError`` naming ``arguments.<step>.<field>``."""
    steps = {s.id: s for s in request.steps}
    unknown = sorted(set(arguments) - set(steps))
    if unknown:
        raise InvalidInputError(f"step {unknown[0]!r} is not part of this approval (its steps: "
                                f"{', '.join(steps)})", field=f"arguments.{unknown[0]}")
    approved: dict[str, dict[str, Any]] = {}
    for step_id, step in steps.items():
        merged = {**step.arguments, **arguments.get(step_id, {})}
        checked, problems = check_step(step.model_copy(update={"arguments": merged}),
                                       rt.tools, rt.policies)
        if problems:
            where, _, message = problems[0].partition(": ")
            prefix = f"steps.{step_id}.arguments."
            argument = where.removeprefix(prefix) if where.startswith(prefix) else ""
            raise ToolArgumentsError(message, field=f"arguments.{step_id}"
                                     + (f".{argument}" if argument else ""))
        approved[step_id] = checked.arguments
    return approved


def _edit_proposers(rt: Runtime, row: dict[str, Any]) -> set[str]:
    return {e.actor for e in rt.store.ledger_entries(row["decision_id"])
            if e.event == "approval.edit_proposed" and e.body.get("approval_id") == row["id"]}


def submit_answer(rt: Runtime, who: Principal, approval_id: str, answer: Answer,
                  plan_hash: str) -> dict[str, Any]:
    """Check, record and apply an answer; returns the ``AnswerOut`` fields."""
    row = rt.store.approval(approval_id)
    function = row["function"]
    if who.role != "approver":
        _refuse(rt, who, row, "not_an_approver", f"{who.name} ({who.role}) does not answer "
                "approvals; only approvers do")
    if function not in who.functions:
        _refuse(rt, who, row, "wrong_function", f"{who.name} approves "
                f"{', '.join(who.functions) or 'no function'}, not {function}")
    identity = approver_identity(rt, who, function)
    if identity is None:
        _refuse(rt, who, row, "not_in_policy", f"{who.name} is not among the approvers of "
                f"{function} in the function policies")
    if row["status"] in _ANSWERED:
        _refuse(rt, who, row, "replay", f"approval {approval_id} was already answered "
                f"({row['status']}); an answer is used once", conflict=True)
    if row["status"] != "pending" or plan_hash != row["plan_hash"]:
        _refuse(rt, who, row, "stale_plan", f"approval {approval_id} is for plan version "
                f"{row['plan_version']} ({row['plan_hash'][:12]}); the plan you answered "
                f"({plan_hash[:12]}) is not current", conflict=True)
    decision = rt.store.decision(row["decision_id"])
    if decision["plan_hash"] != row["plan_hash"]:
        _refuse(rt, who, row, "stale_plan", f"decision {row['decision_id']} moved on to plan "
                f"version {decision['plan_version']}", conflict=True)
    request = ApprovalRequest.model_validate(row["request"])
    if isinstance(answer, Edit):
        # Validate first: a bad edit is the caller's input error, not a refusal.
        approved = validate_edit(rt, request, dict(answer.arguments))
    policy = rt.policies.get(function)
    if policy.four_eyes and isinstance(answer, Approve | Edit):
        requesters = rt.store.plan_requesters(row["decision_id"], row["plan_version"])
        if identity in requesters or who.name in requesters:
            _refuse(rt, who, row, "four_eyes", f"{function} requires four eyes: you requested "
                    "this plan version, so another approver must decide it")
        if identity in _edit_proposers(rt, row):
            _refuse(rt, who, row, "four_eyes", f"{function} requires four eyes: you edited "
                    "this request, so another approver must approve it")
        if isinstance(answer, Edit):
            rt.store.propose_edit(approval_id=approval_id, decision_id=row["decision_id"],
                                  plan_hash=row["plan_hash"], proposer=identity,
                                  arguments=approved, comment=answer.comment)
            return {"approval_id": approval_id, "status": "proposed",
                    "decision_id": row["decision_id"], "decision_status": decision["status"],
                    "pending_approvals": [approval_id], "applied": False}
        proposal = rt.store.edit_proposal(approval_id)
        if proposal is not None and proposal["plan_hash"] == row["plan_hash"]:
            answer = Edit(arguments=proposal["arguments"],
                          comment=(answer.comment or f"approved the edit by {proposal['proposer']}"))
    try:
        result = rt.answer(approval_id, answer, approver=identity)
    except ConflictError as exc:
        _refuse(rt, who, row, "conflict", exc.message, conflict=True)
    except PermissionDenied as exc:
        _refuse(rt, who, row, "not_in_policy", exc.message)
    status = {Approve: "approved", Edit: "edited", Reject: "rejected", Revise: "revise"}[type(answer)]
    if result is None:
        current = rt.store.decision(row["decision_id"])
        return {"approval_id": approval_id, "status": status, "decision_id": row["decision_id"],
                "decision_status": current["status"], "pending_approvals": [], "applied": False}
    return {"approval_id": approval_id, "status": status, "decision_id": result.decision_id,
            "decision_status": result.status, "pending_approvals": result.pending_approvals,
            "applied": True}
