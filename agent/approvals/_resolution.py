"""What an answer means: the one definition of "approved".

A function's part of a plan is *resolved* once policy approved it, a person answered, or
its request expired. ``Resolution`` says what the resolution allows: the argument sets
that may run (``approved``; None when nothing may run), or why not. The graph, the
executor's ledger check and every report read this, and nothing else decides whether a
step was approved:

===================  ==================================================
status               approved (may run)
===================  ==================================================
auto_approved        the function's steps as proposed
approved             the function's steps as proposed
edited               the edited argument sets
expired              as proposed if the policy says ``on_timeout: approve``
                     (the recorded answer is then an approve), else nothing
rejected, revise     nothing
superseded           nothing: withdrawn, as another function's answer
                     ended the plan version (``withdrawn``)
===================  ==================================================

An answer *ends* its plan version when nothing of the version can run whatever the
others answer: a revise (the plan is drafted again), or a part not granted of an
all-or-nothing plan. The other functions' requests of the version still pending are then
withdrawn in the answer's transaction (``end_version``): nobody is asked to approve a
plan already over, and the graph goes on at once instead of waiting for the slowest.

The ledger entry of every answer that grants approval carries ``approved_hashes`` (the
hash of each approved argument set, see ``grant_hashes``); the executor runs a step only
with arguments hashing to what the ledger recorded for that plan version.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from decisionops.agent.hashing import digest
from decisionops.agent.models import ApprovalRequest, ApprovalStatus
from decisionops.agent.store import ApprovalRow, DecisionTx, Store

__all__ = ["Resolution", "before_answer", "end_version", "grant_hashes", "resolve"]


class Resolution(BaseModel):
    """One function's resolved part of one plan version."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    function: str
    status: ApprovalStatus
    approver: str
    approved: dict[str, dict[str, Any]] | None = None
    """Step id → the argument set that may run; None: none of the function's steps run."""
    reason: str = ""
    """Why nothing runs (a rejection's reason, an expiry)."""
    feedback: str = ""
    """A revise answer's feedback for the planner."""

    @property
    def grants(self) -> bool:
        return self.approved is not None

    @property
    def revise(self) -> bool:
        return self.status is ApprovalStatus.REVISE

    def why_not(self) -> str:
        """Why the function's steps do not run (for skipped steps)."""
        if self.revise:
            return f"{self.function} asked for a revision past the re-plan limit"
        if self.status is ApprovalStatus.SUPERSEDED:
            return f"{self.function}'s request was withdrawn: {self.reason}"
        what = "expired" if self.status is ApprovalStatus.EXPIRED else "rejected"
        return f"{self.function} {what}: {self.reason or 'no reason given'}"


def resolve(row: ApprovalRow) -> Resolution:
    """The resolution an answered (or auto-approved, expired, or withdrawn) request
    stands for."""
    reason = row.withdrawn
    if reason is not None:
        return Resolution(function=row.function, status=ApprovalStatus.SUPERSEDED,
                          approver="system", reason=reason)
    return resolution(row.request, row.status, approver=row.approver or "system",
                      answer=row.answer or {}, edited=row.approved_arguments)


def before_answer(store: Store, tx: DecisionTx, row: ApprovalRow, resolved: Resolution
                  ) -> None:
    """In the transaction that will record ``resolved`` for ``row``, before it does: an
    answer that may end the version (it grants nothing) locks the version's pending
    requests in id order, so two such answers at once queue instead of deadlocking over
    each other's request (``end_version`` withdraws them)."""
    if not resolved.grants:
        store.approvals.lock_version(tx, row.plan_version)


def end_version(store: Store, tx: DecisionTx, row: ApprovalRow, resolved: Resolution
                ) -> list[str]:
    """After ``resolved`` was recorded for ``row`` in ``tx``: when it ends the plan
    version (see the module docstring), withdraw the other requests of the version still
    pending; the ids withdrawn."""
    if resolved.grants:
        return []
    version = row.plan_version
    if resolved.revise:
        why = (f"{row.function} asked to revise plan v{version}; it is drafted again and "
               "each function answers the new version")
    elif store.plans.get(row.decision_id, version).all_or_nothing:
        what = (f"{row.function}'s request of plan v{version} expired unapproved"
                if resolved.status is ApprovalStatus.EXPIRED
                else f"{row.function} rejected plan v{version}")
        why = f"{what}, which runs all or nothing: no part of it runs"
    else:
        return []  # the other parts run on their own answers
    return store.approvals.withdraw_others(tx, plan_version=version, plan_hash=row.plan_hash,
                                           by=row.id, reason=why)


def resolution(request: ApprovalRequest, status: ApprovalStatus, *, approver: str,
               answer: dict[str, Any], edited: dict[str, Any] | None = None) -> Resolution:
    proposed = {s.id: dict(s.arguments) for s in request.steps}
    base = {"function": request.function, "status": status, "approver": approver}
    kind = answer.get("type")
    if status in (ApprovalStatus.PENDING, ApprovalStatus.SUPERSEDED):
        raise ValueError(f"approval {request.approval_id} is {status.value}, not resolved")
    if status is ApprovalStatus.REVISE or kind == "revise":
        return Resolution(**base, feedback=str(answer.get("feedback") or ""))
    if status is ApprovalStatus.REJECTED or kind == "reject":
        return Resolution(**base, reason=str(answer.get("reason") or ""))
    if status is ApprovalStatus.EDITED or kind == "edit":
        return Resolution(**base, approved={**proposed, **(edited or {})})
    # approve, auto_approved, or an expiry the policy turns into an approval
    return Resolution(**base, approved=proposed)


def grant_hashes(resolved: Resolution) -> dict[str, str]:
    """Step id → hash of the approved argument set (empty when nothing is approved)."""
    return {step_id: digest(arguments) for step_id, arguments in (resolved.approved or {}).items()}
