"""The approval service: validates and records an approver's answer.

An answer is accepted only when: the request is pending (compare-and-set on the
request and its plan version, so two racing approvers get one decision and one
conflict); the approver is authorized for the request's function (identity comes from
the caller's credential, never from the answer); an edit names only steps of this
request and its merged arguments validate against the tool schema and the function's
limits. A refused answer changes nothing. Applying the answer to the decision graph is
the engine's job, done right after by the caller or later by the worker.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from agent.errors import ConflictError, InvalidInputError, ToolArgumentsError
from agent.faults import crash_point
from agent.guard import check_step
from agent.models import Answer, ApprovalRequest, ApprovalStatus, Edit, Reject, Revise
from agent.policy import Policies
from agent.ports import ToolPort
from agent.store import Store

__all__ = ["ApprovalService", "parse_answer"]

_ANSWER: TypeAdapter[Any] = TypeAdapter(Answer)

_STATUS = {"approve": ApprovalStatus.APPROVED, "edit": ApprovalStatus.EDITED,
           "reject": ApprovalStatus.REJECTED, "revise": ApprovalStatus.REVISE}


def parse_answer(data: Any) -> Answer:
    try:
        return _ANSWER.validate_python(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise InvalidInputError(err["msg"], field=field or "answer") from exc


class ApprovalService:
    def __init__(self, store: Store, tools: ToolPort, policies: Policies) -> None:
        self._store = store
        self._tools = tools
        self._policies = policies

    def request(self, approval_id: str) -> ApprovalRequest:
        row = self._store.approval(approval_id)
        return ApprovalRequest.model_validate(row["request"])

    def answer(self, approval_id: str, answer: Answer, *, approver: str) -> dict[str, Any]:
        """Validate and record; returns the approved arguments (step id → arguments) or {}."""
        row = self._store.approval(approval_id)
        if row["status"] != ApprovalStatus.PENDING.value:
            by = f" by {row['approver']}" if row["approver"] else ""
            raise ConflictError(f"approval {approval_id} is already {row['status']}{by}")
        request = ApprovalRequest.model_validate(row["request"])
        self._policies.authorize(request.function, approver)
        decision = self._store.decision(request.decision_id)
        if decision["plan_hash"] != request.plan_hash:
            raise ConflictError(f"approval {approval_id} is for plan version "
                                f"{request.plan_version}, which is no longer current")
        approved: dict[str, Any] | None = None
        if isinstance(answer, Edit):
            approved = self._validated_edit(request, answer)
        elif not isinstance(answer, Reject | Revise):
            approved = {s.id: s.arguments for s in request.steps}
        self._store.answer_approval(approval_id, plan_hash=request.plan_hash,
                                    status=_STATUS[answer.type], approver=approver,
                                    answer=answer.model_dump(mode="json"),
                                    approved_arguments=approved)
        crash_point("after_approval_answered")
        return approved or {}

    def _validated_edit(self, request: ApprovalRequest, edit: Edit) -> dict[str, Any]:
        steps = {s.id: s for s in request.steps}
        unknown = sorted(set(edit.arguments) - set(steps))
        if unknown:
            raise InvalidInputError(
                f"step(s) {', '.join(unknown)} are not part of this approval "
                f"(its steps: {', '.join(steps)})", field=f"arguments.{unknown[0]}")
        approved = {}
        for step_id, step in steps.items():
            merged = {**step.arguments, **edit.arguments.get(step_id, {})}
            checked, problems = check_step(step.model_copy(update={"arguments": merged}),
                                           self._tools, self._policies)
            if problems:
                # problems read "steps.<id>.arguments.<field>: message"
                field, _, message = problems[0].partition(": ")
                raise ToolArgumentsError(message + (f" (+{len(problems) - 1} more)"
                                                    if len(problems) > 1 else ""),
                                         field=field.removeprefix("steps."))
            approved[step_id] = checked.arguments
        return approved
