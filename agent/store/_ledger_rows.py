"""Whether the store's rows say what the ledger says: ``ledger.verify``'s check of the
approvals and decisions tables (and, through ``_ledger_value``, of outcomes, executions,
triage verdicts and expected values) against the chain it has just verified.

An approval's answer and a decision's status are written twice in one transaction: to
their rows (what ``decisions show``, ``approvals list`` and the reports read) and to the
ledger. Someone who can write the database can change a row and leave the chain whole.
``verify`` hands each entry it walks, archived segments included, to ``Recorded.see``;
once the chain verifies, ``disagreements`` reads each table once, in the same snapshot,
and names every row that says something the ledger does not. Nothing else reads this
module.

The ledger is the record of:

=========  ==================================================================
approvals  what the request recorded (``approval.requested``, or
           ``approval.auto_approved``): decision, plan hash, function, reason;
           its answer (``approval.<status>``, ``approval.auto_approved``):
           status, approver, answer, and the hash of each approved argument
           set (a row's ``approved_arguments`` must hash to it). A row pending
           or superseded has no answer entry; a row answered must have one. A
           row withdrawn from its version (``approval.withdrawn``) says so, for
           the entry's reason; no other row does.
decisions  status: that of the decision's last ``decision.<status>`` entry
           (``decision.started``: planning); its prediction and expected value
           (``_ledger_value``).
plans      each version's hash, as its last ``plan.<verdict>`` entry recorded it;
           the body must hash to it (all but the rationale, as ``Plan.hash``).
=========  ==================================================================

Not checked, as the ledger does not record them the way the row holds them: times (an
entry's is its commit's), deadlines (a hold's release moves them), ``applied_at`` (the
engine's progress), which pending request a new plan version superseded (the plan's
entry says so, not one per request), and a request's steps (the plan holds them). A row
the store no longer has is not reported either: what it said stands in the ledger, and a
row removed says nothing false.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from decisionops.agent.hashing import digest
from decisionops.agent.models import ApprovalStatus, DecisionStatus, plan_body_hash
from decisionops.agent.store._ledger_admin import AdminRecorded, check_holds, check_users
from decisionops.agent.store._ledger_batches import Progress, check_batches
from decisionops.agent.store._ledger_value import (
    ValueRecorded,
    check_decision,
    check_executions,
    check_outcomes,
    check_predictions,
    stream,
)
from decisionops.agent.store._tables import approvals, decisions, plans

__all__ = ["KEEP", "Disagreement", "Found", "Recorded", "disagreements", "summary"]

_UNANSWERED = frozenset({ApprovalStatus.PENDING.value, ApprovalStatus.SUPERSEDED.value})
_ANSWERS = {f"approval.{s.value}": s.value for s in ApprovalStatus
            if s.value not in _UNANSWERED and s is not ApprovalStatus.AUTO_APPROVED}
"""A person's answer or an expiry, recorded by ``ApprovalRepo.answer``."""
_AUTO = "approval.auto_approved"
_REQUESTED = "approval.requested"
_BATCH = "predictions.ingested"
_WITHDRAWN = "approval.withdrawn"
_STATUSES = {f"decision.{s.value}": s.value for s in DecisionStatus} | {
    "decision.started": DecisionStatus.PLANNING.value}
KEEP = 100
"""How many disagreements a report lists; it counts them all."""


def summary(count: int) -> str:
    """``count`` disagreements in words: "1 stored row disagrees with the ledger"."""
    rows = "1 stored row disagrees" if count == 1 else f"{count} stored rows disagree"
    return f"{rows} with the ledger"


@dataclass(frozen=True)
class Disagreement:
    """A stored row that says something the ledger does not."""

    table: str
    """``approvals``, ``decisions``, ``outcome_records``, ``executions``, ``predictions``."""
    id: str
    field: str
    """The column; ``approved_arguments.<step>`` compares the hash of that step's set,
    ``arguments`` and ``receipt`` an execution's; ``row``: the row is not in the store."""
    row: Any
    ledger: Any
    """What the ledger records; None: it never recorded the row at all."""
    seq: int | None
    """The entry that records it (None: there is none)."""

    def __str__(self) -> str:
        what = _NOUN.get(self.table, self.table)
        if self.seq is None:
            return (f"{what} {self.id} is in the store ({self.field} {self.row!r}) but the "
                    "ledger never recorded it")
        if self.field == "row":
            return (f"{what} {self.id} is in the ledger (entry {self.seq}: {self.ledger}) but "
                    "not in the store: its row was removed")
        return (f"{what} {self.id}: {self.field} is {self.row!r} in the store, "
                f"{self.ledger!r} in the ledger (entry {self.seq})")


_NOUN = {"approvals": "approval", "decisions": "decision", "plans": "plan", "holds": "hold",
         "users": "user",
         "outcome_records": "outcome",
         "executions": "execution", "predictions": "prediction"}


class _Approval:
    """What the ledger recorded of one approval; ``status`` None: no answer."""

    __slots__ = ("answer", "answer_seq", "approver", "decision_id", "function", "hashes",
                 "plan_hash", "reason", "seq", "status", "withdrawn", "withdrawn_seq")

    def __init__(self, seq: int, decision_id: str | None, plan_hash: str | None) -> None:
        self.seq, self.decision_id, self.plan_hash = seq, decision_id, plan_hash
        self.function: str | None = None
        self.reason: str | None = None
        self.status: str | None = None
        self.approver: str | None = None
        self.answer: dict[str, Any] | None = None
        self.hashes: dict[str, str] | None = None
        """The approved hashes the answer recorded; None: not recorded (not compared)."""
        self.answer_seq = 0
        self.withdrawn: str | None = None
        """Why ``approval.withdrawn`` withdrew it (another function's answer ended its
        plan version); None: it was not."""
        self.withdrawn_seq = 0


@dataclass
class Recorded:
    """What the entries walked so far record of approvals and decision statuses: a few
    hundred bytes an approval, the values many of them share (plan hashes, functions,
    approvers, reasons, plain answers) held once."""

    approvals: dict[str, _Approval] = field(default_factory=dict)
    decisions: dict[str, tuple[str, int]] = field(default_factory=dict)
    plans: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    """Each plan version (decision, version) → the hash its last ``plan.<verdict>``
    entry recorded, and that entry's seq."""
    batches: dict[int, tuple[str, int]] = field(default_factory=dict)
    """Each batch of predictions accepted: its entry's seq → root and row count."""
    _shared: dict[Any, Any] = field(default_factory=dict)
    value: ValueRecorded = field(init=False)
    """Outcomes, tool calls, verdicts and the decisions' predictions."""
    admin: AdminRecorded = field(default_factory=AdminRecorded)
    """Holds and users."""

    def __post_init__(self) -> None:
        self.value = ValueRecorded(self._one)

    def _one(self, value: Any) -> Any:
        """``value``, or an equal one met before (held once)."""
        return self._shared.setdefault(value, value) if isinstance(value, str) else value

    def _answer(self, answer: Any) -> Any:
        """A plain answer (no edited arguments: an approve, a reject, a revise) held once."""
        if not isinstance(answer, dict) or "arguments" in answer:
            return answer
        try:
            return self._shared.setdefault(("answer", *sorted(answer.items())), answer)
        except TypeError:  # a value that is not hashable: keep it as it is
            return answer

    def see(self, seq: int, name: str, actor: str, decision_id: str | None,
            plan_hash: str | None, body: dict[str, Any]) -> None:
        self.value.see(seq, name, actor, decision_id, body)
        if name.startswith(("hold.", "user.")):
            self.admin.see(seq, name, body)
        elif name == _BATCH:
            if isinstance(body.get("root"), str) and body.get("rows"):
                self.batches[seq] = (body["root"], int(body["rows"]))
        elif name.startswith("plan.") and plan_hash and decision_id:
            version = body.get("version")
            if isinstance(version, int):
                self.plans[decision_id, version] = (self._one(plan_hash), seq)
        elif name.startswith("decision."):
            status = _STATUSES.get(name)
            if status is not None and decision_id:
                self.decisions[decision_id] = (status, seq)
        elif name == _REQUESTED:
            rec = self._approval(body.get("approval_id"), seq, decision_id, plan_hash)
            if rec is not None:
                rec.function = self._one(body.get("function"))
                rec.reason = self._one(body["reason"] or "") if "reason" in body else None
        elif name == _AUTO:
            # One entry for every function policy approved (before 2026-12-04: one each,
            # its approval's id and function in the body, the approver its actor).
            for item in body.get("approvals") or [body]:
                if not isinstance(item, dict):
                    continue
                rec = self._approval(item.get("approval_id"), seq, decision_id, plan_hash)
                if rec is None or rec.status is not None:
                    continue
                function = item.get("function")
                rec.function = self._one(function)
                if "approvals" in body:
                    earned = item.get("earned")
                    rec.approver = self._one(
                        f"{'autonomy' if earned is not None else 'policy'}:{function}")
                    rec.answer = self._answer({"type": "approve", "comment": earned or "policy"})
                else:
                    rec.approver = self._one(actor)
                rec.status, rec.answer_seq = ApprovalStatus.AUTO_APPROVED.value, seq
                rec.hashes = body.get("approved_hashes")
        elif name == _WITHDRAWN:
            for approval_id in body.get("approval_ids") or ():
                rec = self._approval(approval_id, seq, decision_id, plan_hash)
                if rec is not None and rec.status is None:
                    rec.withdrawn = self._one(str(body.get("reason") or ""))
                    rec.withdrawn_seq = seq
        elif name in _ANSWERS and "answer" in body:
            rec = self._approval(body.get("approval_id"), seq, decision_id, plan_hash)
            # A request is answered once (compare-and-set): the first answer stands.
            if rec is not None and rec.status is None:
                rec.status, rec.answer_seq = _ANSWERS[name], seq
                rec.approver, rec.answer = self._one(actor), self._answer(body["answer"])
                rec.hashes = body.get("approved_hashes")

    def _approval(self, approval_id: Any, seq: int, decision_id: str | None,
                  plan_hash: str | None) -> _Approval | None:
        if not isinstance(approval_id, str):
            return None
        rec = self.approvals.get(approval_id)
        if rec is None:
            rec = self.approvals[approval_id] = _Approval(seq, self._one(decision_id),
                                                          self._one(plan_hash))
        return rec


@dataclass
class Found:
    """The disagreements found (the first ``KEEP``) and how many rows were read."""

    kept: list[Disagreement] = field(default_factory=list)
    count: int = 0
    approvals: int = 0
    decisions: int = 0
    plans: int = 0
    holds: int = 0
    users: int = 0
    outcomes: int = 0
    executions: int = 0
    predictions: int = 0
    """Predictions whose verdict was checked (those not dropped)."""
    rows: int = 0
    """Predictions checked against their batch's entry (row hash, copied columns)."""

    def add(self, *args: Any) -> None:
        self.count += 1
        if len(self.kept) < KEEP:
            self.kept.append(Disagreement(*args))


_APPROVAL_ROWS = (select(approvals.c.id, approvals.c.decision_id, approvals.c.plan_hash,
                         approvals.c.function, approvals.c.reason, approvals.c.status,
                         approvals.c.approver, approvals.c.answer, approvals.c.approved_arguments)
                  .order_by(approvals.c.id))
_PLAN_ROWS = (select(plans.c.decision_id, plans.c.version, plans.c.hash, plans.c.body)
              .order_by(plans.c.decision_id, plans.c.version))
_DECISION_ROWS = select(decisions.c.id, decisions.c.status, decisions.c.prediction_id,
                        decisions.c.expected_value).order_by(decisions.c.id)


def disagreements(conn: Connection, recorded: Recorded,
                  progress: Progress | None = None) -> Found:
    """Read the approvals, the decisions, the outcomes, the executions and the
    predictions not dropped, once each (streamed), against ``recorded``: every row that
    disagrees, field by field."""
    found = Found()
    for row in stream(conn, _APPROVAL_ROWS):
        found.approvals += 1
        _check_approval(found, row, recorded.approvals.get(row.id))
    for row in stream(conn, _DECISION_ROWS):
        found.decisions += 1
        status, seq = recorded.decisions.get(row.id, (None, None))
        if seq is None:
            found.add("decisions", row.id, "status", row.status, None, None)
            continue
        if row.status != status:
            found.add("decisions", row.id, "status", row.status, status, seq)
        check_decision(row, recorded.value, found.add)
    for row in stream(conn, _PLAN_ROWS):
        found.plans += 1
        _check_plan(found, row, recorded.plans.get((row.decision_id, row.version)))
    found.holds = check_holds(conn, recorded.admin, found.add)
    found.users = check_users(conn, recorded.admin, found.add)
    found.outcomes = check_outcomes(conn, recorded.value, found.add)
    found.executions = check_executions(conn, recorded.value, found.add)
    found.predictions = check_predictions(conn, recorded.value, found.add)
    found.rows = check_batches(conn, recorded.batches, found.add, progress)
    return found


def _check_plan(found: Found, row: Any, rec: tuple[str, int] | None) -> None:
    """A plan version's body must hash to its row's hash (what approvals bind to and
    the executor checks: everything but the rationale), and that to the hash its entry
    recorded (trial 31: an amount edited in a stored plan verified clean, and the views
    showed it as approved)."""
    key = f"{row.decision_id} v{row.version}"
    body = row.body if isinstance(row.body, dict) else {}
    computed = plan_body_hash(body)
    recorded, seq = rec if rec is not None else (None, None)
    if computed != (recorded or row.hash):
        found.add("plans", key, "body", computed, recorded or row.hash, seq)
    if recorded is not None and row.hash != recorded:
        found.add("plans", key, "hash", row.hash, recorded, seq)


def _check_approval(found: Found, row: Any, rec: _Approval | None) -> None:
    if rec is None:
        found.add("approvals", row.id, "status", row.status, None, None)
        return
    for name, recorded in (("decision_id", rec.decision_id), ("plan_hash", rec.plan_hash),
                           ("function", rec.function)):
        if recorded is not None and getattr(row, name) != recorded:
            found.add("approvals", row.id, name, getattr(row, name), recorded, rec.seq)
    if rec.reason is not None and (row.reason or "") != rec.reason:
        found.add("approvals", row.id, "reason", row.reason, rec.reason, rec.seq)
    if rec.status is None:
        if row.status not in _UNANSWERED:
            found.add("approvals", row.id, "status", row.status,
                      ApprovalStatus.PENDING.value, rec.seq)
        else:
            _check_withdrawn(found, row, rec)
        return
    seq = rec.answer_seq
    if row.status != rec.status:
        found.add("approvals", row.id, "status", row.status, rec.status, seq)
    if row.approver != rec.approver:
        found.add("approvals", row.id, "approver", row.approver, rec.approver, seq)
    if rec.answer is not None and row.answer != rec.answer:
        found.add("approvals", row.id, "answer", row.answer, rec.answer, seq)
    _check_edited(found, row, rec)


def _check_withdrawn(found: Found, row: Any, rec: _Approval) -> None:
    """A request withdrawn from its version (the engine skips its function's steps on
    it) must be one an ``approval.withdrawn`` entry names, for the reason it gives; one
    the entries withdrew must still say so."""
    answer = row.answer if isinstance(row.answer, dict) else {}
    said = answer.get("reason") if answer.get("type") == "withdrawn" else None
    if rec.withdrawn is None:
        if said is not None:
            found.add("approvals", row.id, "status", f"{row.status} (withdrawn)",
                      ApprovalStatus.PENDING.value, rec.seq)
        return
    if row.status != ApprovalStatus.SUPERSEDED.value or said is None:
        found.add("approvals", row.id, "status", row.status, "superseded (withdrawn)",
                  rec.withdrawn_seq)
    elif said != rec.withdrawn:
        found.add("approvals", row.id, "answer", said, rec.withdrawn, rec.withdrawn_seq)


def _check_edited(found: Found, row: Any, rec: _Approval) -> None:
    """Each argument set a row holds (an edit's; before 2026-12-04 every approval's) must
    hash to what the answer's entry approved, and an edit must hold its sets."""
    approved, seq = row.approved_arguments, rec.answer_seq
    if rec.hashes is None:
        return  # an entry written before answers recorded approved hashes
    if (not isinstance(approved, dict | None)
            or (rec.status == ApprovalStatus.EDITED.value and not approved)):
        found.add("approvals", row.id, "approved_arguments", approved, rec.hashes, seq)
        return
    for step, arguments in (approved or {}).items():
        if digest(arguments) != rec.hashes.get(step):
            found.add("approvals", row.id, f"approved_arguments.{step}", digest(arguments),
                      rec.hashes.get(step), seq)
