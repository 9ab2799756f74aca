"""The SLA of a pending request: a reminder to its approvers (at ``sla_reminder_at`` of
the SLA), an escalation to the function's ``escalate_to`` (at ``sla_escalate_at``), and
expiry at the deadline, which resolves the request as the policy's ``on_timeout`` says:
``reject`` (the default) or ``approve``. An expiry is recorded like any answer (status
``expired``, by ``system:sla``); one that approves carries the approved argument hashes
in its ledger entry, so its steps run like any approved step. Workers apply it.

An answer after the deadline is not taken: the approval service expires the request
then (``expire_if_due``), so whether a late answer counted never depends on when the
loop last swept.

A request whose function left the policies is neither reminded nor escalated (it has no
approvers) and expires as rejected. Safe on every worker at once: each alert is claimed
once per request, and expiry is a compare-and-set on the pending request.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from decisionops.agent.approvals._autonomy import EarnedAutonomy
from decisionops.agent.approvals._resolution import (
    before_answer,
    end_version,
    grant_hashes,
    resolution,
)
from decisionops.agent.errors import ConflictError, DecisionOpsError, ToolCallError
from decisionops.agent.hashing import short_id
from decisionops.agent.models import ApprovalStatus, Reject
from decisionops.agent.policy import Policies
from decisionops.agent.ports import ToolPort
from decisionops.agent.store import ApprovalRow, Store

__all__ = ["expire_if_due", "sweep"]

SLA_ACTOR = "system:sla"


def sweep(store: Store, tools: ToolPort, policies: Policies, *, settings: Any, now: datetime,
          on_expire: Callable[[str], None] | None = None,
          autonomy: EarnedAutonomy | None = None,
          only_a_person: Callable[[ApprovalRow], str | None] | None = None) -> dict[str, int]:
    """One pass over the pending requests; ``on_expire`` is told each decision whose
    request expired (a worker applies the expiry like an answer). ``only_a_person``: why
    a request only a person may approve (a step acting on something the prediction is
    not about), which expires rejected whatever ``on_timeout`` says."""
    counts = {"reminded": 0, "escalated": 0, "expired": 0}
    store.holds.settle_lapsed(now)  # the time a hold that ran out stopped, given back
    # Most pending requests are due for nothing yet: find the ones past their first
    # alert point (or their deadline) from four columns, and build only those.
    first = min(settings.sla_reminder_at, settings.sla_escalate_at)
    due = [approval_id for approval_id, function, requested, deadline
           in store.approvals.pending_deadlines()
           if now >= deadline or (function in policies.functions
                                  and now >= requested + (deadline - requested) * first)]
    if not due:
        return counts
    holds = store.holds.active(now)
    for row, sent in store.approvals.pending_with_alerts(ids=due):
        if row.deadline is None or _held(store, holds, row):
            continue  # a hold stops its clock; its release moves the deadline on
        policy = policies.functions.get(row.function)
        span = row.deadline - row.requested_at
        steps = ", ".join(s.id for s in row.request.steps)
        if now >= row.deadline:
            if _expire(store, row, policies, autonomy, only_a_person):
                counts["expired"] += 1
                if on_expire is not None:
                    on_expire(row.decision_id)
            continue
        if policy is None:
            continue  # nobody to remind or escalate to
        escalate = now >= row.requested_at + span * settings.sla_escalate_at
        remind = now >= row.requested_at + span * settings.sla_reminder_at
        if escalate and "escalation" not in sent:
            verdict = "approved" if policy.on_timeout == "approve" else "rejected"
            message = (f"Approval {row.id} ({row.function}: {steps}) expires in "
                       f"{_human(row.deadline - now)} and is still unanswered; on expiry "
                       f"it is {verdict}.")
            counts["escalated"] += _alert(store, tools, row, "escalation", policy.escalate_to,
                                          message)
        elif remind and not sent:
            channel = f"#approvals-{row.function.replace('_', '-')}"
            message = (f"Reminder: approval {row.id} ({steps}) waits for "
                       f"{', '.join(policy.approvers)}; due {row.deadline:%Y-%m-%d %H:%M}Z.")
            counts["reminded"] += _alert(store, tools, row, "reminder", channel, message)
    return counts


def expire_if_due(store: Store, policies: Policies, row: ApprovalRow, *, now: datetime,
                  autonomy: EarnedAutonomy | None = None,
                  only_a_person: Callable[[ApprovalRow], str | None] | None = None) -> bool:
    """Whether ``row`` is past its deadline with no hold stopping its clock: then it
    expires now, as the sweep would expire it (an answer after the deadline is not taken:
    whether a late answer counted must not depend on when the loop swept last). False for
    a request not due, or held."""
    if row.deadline is None or now < row.deadline:
        return False
    if store.holds.settle_lapsed(now):  # a hold that ran out gave its time back
        row = store.approvals.get(row.id)
        assert row.deadline is not None
        if now < row.deadline:
            return False
    if _held(store, store.holds.active(now), row):
        return False
    _expire(store, row, policies, autonomy, only_a_person)  # or another worker did
    return True


def _held(store: Store, holds: Any, row: ApprovalRow) -> bool:
    """Whether a hold covering ``row`` stops its clock (``HoldRow.stops_clock``)."""
    if not holds.rows or row.deadline is None:
        return False
    decision = store.decisions.get(row.decision_id)
    return any(hold.stops_clock(row.deadline) for hold in holds.covering(
        entity_id=decision.entity_id, playbook=decision.playbook, functions=[row.function],
        decision_id=decision.id))


def _human(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _alert(store: Store, tools: ToolPort, row: ApprovalRow, kind: str, to: str,
           message: str) -> bool:
    if not store.approvals.claim_alert(row, kind, detail=f"to {to}", actor=SLA_ACTOR):
        return False
    channel = "slack" if to.startswith("#") else "email"
    try:
        tools.call("notify.send", {"channel": channel, "to": to,
                                   "subject": f"Approval {kind}: {row.function}",
                                   "body": message},
                   idempotency_key=short_id("sla", row.id, kind, length=32))
    except (ToolCallError, DecisionOpsError):
        # The alert is recorded in the ledger; a lost notification is not retried here
        # (the outbox's own delivery is the notification system's concern).
        return True
    return True


def _expire(store: Store, row: ApprovalRow, policies: Policies,
            autonomy: EarnedAutonomy | None,
            only_a_person: Callable[[ApprovalRow], str | None] | None) -> bool:
    """Resolve ``row`` as its policy's ``on_timeout`` says; False if it was answered (or
    expired by another worker) in the meantime. A function no longer in the policies has
    no approvers and no on_timeout: its request expires as rejected (fail safe)."""
    assert row.deadline is not None
    policy = policies.functions.get(row.function)
    on_timeout = policy.on_timeout if policy else "reject"
    why = only_a_person(row) if on_timeout == "approve" and only_a_person else None
    if why:
        on_timeout = "reject"
    hours = round((row.deadline - row.requested_at).total_seconds() / 3600, 4)
    if on_timeout == "approve":
        answer: dict[str, Any] = {"type": "approve", "comment": "approved on SLA expiry"}
    else:
        answer = Reject(reason=f"expired: no answer within the {hours:g} h SLA" + (
            f"; not approved on expiry: {why}" if why else "")).model_dump()
    resolved = resolution(row.request, ApprovalStatus.EXPIRED, approver=SLA_ACTOR, answer=answer)
    try:
        with store.decision_tx(row.decision_id, fence=None, actor=SLA_ACTOR, durable=True) as tx:
            before_answer(store, tx, row, resolved)
            store.approvals.answer(tx, row.id, plan_hash=row.plan_hash,
                                   status=ApprovalStatus.EXPIRED, approver=SLA_ACTOR,
                                   answer=answer, approved_arguments=None,
                                   approved_hashes=grant_hashes(resolved),
                                   body={"on_timeout": on_timeout})
            if autonomy is not None:  # no answer is no approval: the run of approvals ends
                autonomy.after_answer(tx, row.request,
                                      store.decisions.get(row.decision_id).playbook,
                                      {s.id: "expired" for s in row.request.steps}, SLA_ACTOR)
            end_version(store, tx, row, resolved)
    except ConflictError:
        return False  # answered (or expired by another worker) in the meantime
    return True
