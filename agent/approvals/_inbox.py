"""Approval requests in Agent Inbox's ``HumanInterrupt`` shape, and its ``HumanResponse``
back as an ``Answer``. An adapter: it translates and decides nothing.

A request (one function's part of a plan version) becomes one interrupt value::

    {"action_request": {"action": "Approve <function>'s part of plan v<n>",
                        "args": {<step id>: {<argument>: <value>, ...}, ...}},
     "config": {"allow_accept": true, "allow_edit": true, "allow_respond": true,
                "allow_ignore": true},
     "description": "<markdown: why, the steps, the ids>",
     "approval_id": ..., "decision_id": ..., "function": ..., "plan_version": ...,
     "plan_hash": ..., "request": <the ApprovalRequest as JSON>}

Our ids sit beside Agent Inbox's keys (it ignores them; the engine matches answers to
interrupts by ``approval_id``). ``error`` is added when the previous resume value was
refused, saying why and what to send.

A ``HumanResponse`` (``{"type": ..., "args": ...}``, alone or as Agent Inbox's one-item
list) maps onto our answers: ``accept`` → approve, ``edit`` (``args.args``: step id → the
step's new arguments) → edit, ``response`` (``args``: text) → revise with that feedback,
``ignore`` (``args``: why, as every channel's reject says) → reject. Anything else is
``InvalidInputError`` naming the field and saying what to send (``RESUME_HELP``).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from decisionops.agent.errors import InvalidInputError, pydantic_message
from decisionops.agent.models import Answer, ApprovalRequest, Approve, Edit, Reject, Revise

__all__ = ["RESUME_HELP", "answer_from_human", "human_interrupt"]

RESUME_HELP = (
    'resume with a HumanResponse: {"type": "accept", "args": null} to approve, '
    '{"type": "edit", "args": {"action": <the action>, "args": {<step id>: {<arguments>}}}} '
    'to approve changed arguments, {"type": "response", "args": "<feedback>"} to ask for a '
    'revised plan, or {"type": "ignore", "args": "<why>"} to reject')

_TYPES = ("accept", "edit", "response", "ignore")


def _description(request: ApprovalRequest) -> str:
    lines = [f"**{request.function}** is asked to approve its part of plan "
             f"v{request.plan_version} for decision `{request.decision_id}`."]
    if request.reason:
        lines.append(f"Why a person: {request.reason}")
    lines.append("")
    for step in request.steps:
        lines.append(f"- `{step.id}` ({step.tool}, risk {step.risk.value}): "
                     f"{step.rationale or 'no rationale given'}")
    if request.other_steps:
        lines.append(f"\nOther functions' steps: {', '.join(request.other_steps)}")
    lines.append(f"\napproval `{request.approval_id}` · plan `{request.plan_hash[:12]}`")
    return "\n".join(lines)


def human_interrupt(request: ApprovalRequest, *, revisable: bool = True,
                    error: str | None = None, revise_can: str | None = None) -> dict[str, Any]:
    """The interrupt value for ``request`` (see the module docstring); ``revisable``:
    whether a revision may still be asked for (``ApprovalService.revisable``), as
    ``allow_respond``; ``revise_can``: what a response (a revise) can change, said in the
    description (``ApprovalService.revise_offer``)."""
    value: dict[str, Any] = {
        "action_request": {
            "action": f"Approve {request.function}'s part of plan v{request.plan_version}",
            "args": {step.id: dict(step.arguments) for step in request.steps}},
        "config": {"allow_accept": True, "allow_edit": True, "allow_respond": revisable,
                   "allow_ignore": True},
        "description": _description(request) + (
            f"\n\nA response (revise) can: {revise_can}; for anything else, edit or ignore."
            if revisable and revise_can else ""),
        "approval_id": request.approval_id,
        "decision_id": request.decision_id,
        "function": request.function,
        "plan_version": request.plan_version,
        "plan_hash": request.plan_hash,
        "request": request.model_dump(mode="json"),
    }
    if error:
        value["error"] = error
        value["description"] = f"**Not recorded:** {error}\n\n{value['description']}"
    return value


def _bad(message: str, field: str) -> InvalidInputError:
    return InvalidInputError(f"{message}; {RESUME_HELP}", field=field)


def _answer(model: type[Reject | Revise], name: str, text: str, field: str) -> Answer:
    """The answer ``text`` makes, refused as on every other channel (too long: named, not
    cut short: a recorded answer is what its approver sent)."""
    try:
        return model.model_validate({name: text})
    except ValidationError as exc:
        raise _bad(pydantic_message(exc.errors(include_url=False)[0]), field) from None


def answer_from_human(request: ApprovalRequest, value: Any) -> Answer:
    """The answer a ``HumanResponse`` stands for (see the module docstring)."""
    field = "resume"
    if isinstance(value, list):
        if len(value) != 1:
            raise _bad(f"expected one HumanResponse, got a list of {len(value)}", field)
        value, field = value[0], "resume.0"
    if not isinstance(value, dict):
        raise _bad(f"expected a HumanResponse object, got {type(value).__name__}", field)
    kind, args = value.get("type"), value.get("args")
    if kind not in _TYPES:
        raise _bad(f"type must be one of {', '.join(_TYPES)}, got {kind!r}", f"{field}.type")
    if kind == "accept":
        return Approve(comment="via a LangGraph client")
    if kind == "ignore":
        # A reject says why, on every channel (``Reject.reason``): never a reason made up
        # for the approver (found in a black-box trial).
        if not isinstance(args, str) or not args.strip():
            raise _bad('a reject says why: send {"type": "ignore", "args": "<why>"}',
                       f"{field}.args")
        return _answer(Reject, "reason", args, f"{field}.args")
    if kind == "response":
        if not isinstance(args, str) or not args.strip():
            raise _bad("a response needs the feedback text in args", f"{field}.args")
        return _answer(Revise, "feedback", args, f"{field}.args")
    edited = args.get("args") if isinstance(args, dict) else None
    if not isinstance(edited, dict) or not edited:
        raise _bad("an edit needs args.args: step id → the step's arguments", f"{field}.args.args")
    known = {step.id for step in request.steps}
    for step_id, arguments in edited.items():
        if step_id not in known:
            raise _bad(f"unknown step {step_id!r} (steps: {', '.join(sorted(known))})",
                       f"{field}.args.args.{step_id}")
        if not isinstance(arguments, dict):
            raise _bad(f"step {step_id!r}'s arguments must be an object",
                       f"{field}.args.args.{step_id}")
    proposed = {step.id: step.arguments for step in request.steps}
    changed = {k: v for k, v in edited.items() if v != proposed[k]}
    if not changed:  # Agent Inbox sends every step back; unchanged is an approval
        return Approve(comment="via a LangGraph client (no change)")
    return Edit(arguments=changed, comment="via a LangGraph client")
