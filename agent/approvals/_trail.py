"""Each step's arguments as proposed, as approved and as executed, side by side.

"Approved" is read as the executor reads it (``resolve``), so what a person sees here is
what the executor was allowed to send; "executed" is the execution ledger's copy. The
CLI (``decisions show``) and the web decision page both show this one view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from decisionops.agent.approvals._resolution import resolve
from decisionops.agent.models import ExecutionStatus

if TYPE_CHECKING:
    from decisionops.agent.models import Plan
    from decisionops.agent.store import ApprovalRow, ExecutionRow

__all__ = ["argument_trail"]


def argument_trail(plan: Plan, approvals: list[ApprovalRow], executions: list[ExecutionRow]
                   ) -> list[dict[str, Any]]:
    """Per step of ``plan``: ``proposed``, ``approved`` (None until answered),
    ``edited`` (names the answer changed), ``executed`` (None until run), the answer's
    and the execution's status, and ``names``: every argument name, proposed first."""
    granted: dict[str, tuple[str, dict[str, Any] | None]] = {}
    for row in approvals:
        if row.plan_version != plan.version:
            continue
        unresolved = row.status.value in ("pending", "superseded")
        grant = None if unresolved else resolve(row).approved or {}
        status = row.shown_status  # withdrawn: another function's answer ended the version
        for step in row.request.steps:
            granted[step.id] = (status, None if grant is None else grant.get(step.id))
    ran = {e.step_id: e for e in executions
           if e.plan_version == plan.version and e.purpose == "execution"}
    out = []
    for step in plan.steps:
        status, approved = granted.get(step.id, ("not asked yet", None))
        execution = ran.get(step.id)
        # A started execution is the write-ahead of a call that may not have been made
        # (trial 29: a crash before the call showed its arguments as executed).
        executed = (execution.arguments if execution is not None
                    and execution.status is not ExecutionStatus.STARTED else None)
        names = list(step.arguments) + [k for k in (approved or {}) if k not in step.arguments]
        out.append({
            "step_id": step.id, "function": step.function, "tool": step.tool,
            "proposed": step.arguments, "approval": status, "approved": approved,
            "edited": sorted(k for k in names if approved is not None
                             and step.arguments.get(k) != approved.get(k)),
            "execution": execution.status.value if execution else None,
            "executed": executed,
            "not_as_approved": sorted(k for k in names if executed is not None
                                      and approved is not None
                                      and executed.get(k) != approved.get(k)),
            "names": names})
    return out
