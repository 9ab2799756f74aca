"""Whether the rows the value report and the execution record stand on say what the
ledger says: ``_ledger_rows``'s check, for outcomes, executions, triage verdicts and
expected values. What an insider who can write the database would rewrite to change
what the loop proves it did, and what it was worth.

The ledger is the record of:

===============  ==============================================================
outcome_records  ``outcome.recorded``: the outcome's subject (prediction,
                 decision, arm: treated or control), kind, entity, label, value
                 realized, when it was observed, its source, who recorded it
                 (the entry's actor) and, since 2026-12-06, the expected value
                 it is measured against. Every row has its entry; every entry
                 its row (a removed outcome changes the report as a made-up one
                 does).
executions       ``execution.started`` / ``compensation.started`` (each
                 attempt): decision, step, tool, argument hash; the stored
                 arguments (an edit's; a plan's own are read from the plan)
                 must hash to it. The last ``….finished`` entry of its key:
                 status and the receipt's digest (before it, ``started``).
                 Every row has its entries; every call its row.
predictions      the verdict of the last entry that gave it one
                 (``prediction.triaged``, a queue answer: ``prediction.picked``
                 …; one naming it in ``replans`` left it as drop/replanned):
                 action, reason, and the expected value where the entry holds
                 it. A prediction acted on or held out (treated or control)
                 must have such an entry; drops and needs_human verdicts of a
                 whole batch are one entry (``predictions.triaged``, a Merkle
                 root of their ids) and are not checked row by row.
decisions        the prediction ``decision.started`` names, and the expected
                 value its verdict held then.
===============  ==============================================================

Not checked: times of writing (an entry's is its commit's), attempts, a plan's steps
(``plan.accepted`` holds the plan's hash; ``ledger prove-row`` proves a prediction's
row), notes.

Entries in earlier shapes are read as they were written: before 2026-11-27 a tool call
had entries of its own (``execution.started`` with its key at the top, then
``execution.<status>``); an outcome recorded by decision before migration 0003 has an
``outcome.recorded`` entry without an id (the decision, label, value and time), and its
row was copied by that migration (``recorded_by`` ``migration:0003``): it is matched by
what the entry holds. Migration 0010 re-triaged two verdicts in SQL, without entries: a
``drop`` for ``no_playbook`` is ``needs_human`` since, and a ``drop`` for
``low_expected_value`` without a value at stake is ``needs_human``/``missing_value``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from decisionops.agent.hashing import digest
from decisionops.agent.models import REPLANNED, ExecutionStatus, TriageAction
from decisionops.agent.store._outcome_tables import outcome_records
from decisionops.agent.store._tables import executions, predictions

__all__ = ["MISSING", "ValueRecorded", "check_executions", "check_outcomes",
           "check_predictions", "stream"]

MISSING: Any = object()
"""A value the entry does not record: not compared."""

_STARTED = frozenset({"execution.started", "compensation.started"})
_FINISHED = frozenset({"execution.finished", "compensation.finished"})
_RECORDED_BY_ROW = frozenset({TriageAction.ACT.value, TriageAction.HOLD.value})
"""Verdicts only an entry of their own gives (a treated or a control prediction)."""
_CHUNK = 500
_MIGRATED_0010 = {("drop", "no_playbook"): ("needs_human", "no_playbook"),
                  ("drop", "low_expected_value"): ("needs_human", "missing_value")}
"""A verdict an entry gave → the one migration 0010 made of it, in SQL, without an entry
(the second only for a prediction without a value at stake)."""
_MIGRATION_0003 = "migration:0003"

Add = Callable[..., None]
"""``Found.add(table, id, field, row, ledger, seq)``."""


class _Call:
    __slots__ = ("arguments_hash", "decision_id", "receipt", "seq", "status", "status_seq",
                 "step_id", "tool")

    def __init__(self, seq: int, decision_id: str | None, step_id: Any, tool: Any,
                 arguments_hash: Any) -> None:
        self.seq, self.decision_id, self.step_id = seq, decision_id, step_id
        self.tool, self.arguments_hash = tool, arguments_hash
        self.status, self.status_seq = ExecutionStatus.STARTED.value, seq
        self.receipt: str | None = None


class ValueRecorded:
    """What the entries walked so far record of outcomes, tool calls, verdicts and the
    decisions' predictions."""

    def __init__(self, one: Callable[[Any], Any]) -> None:
        self._one = one
        """Holds a string once, however many entries repeat it."""
        self.outcomes: dict[str, tuple[int, dict[str, Any]]] = {}
        self.calls: dict[str, _Call] = {}
        self.verdicts: dict[str, tuple[int, str, str, Any]] = {}
        """prediction → (seq, action, reason, expected value or MISSING)."""
        self.started: dict[str, tuple[int, str | None, Any]] = {}
        """decision → (seq, prediction id, expected value or MISSING)."""
        self.legacy_outcomes: dict[tuple[Any, Any], tuple[int, dict[str, Any]]] = {}
        """(decision, label) → (seq, fields) of outcomes recorded before they had ids."""

    def see(self, seq: int, name: str, actor: str, decision_id: str | None,
            body: dict[str, Any]) -> None:
        if name == "outcome.recorded":
            self._outcome(seq, actor, decision_id, body)
        elif name in _STARTED or name in _FINISHED:
            for call in body.get("calls") or ():
                if isinstance(call, dict) and isinstance(call.get("idempotency_key"), str):
                    self._call(seq, name in _STARTED, decision_id, call)
            if isinstance(body.get("idempotency_key"), str) and name in _STARTED:
                self._call(seq, True, decision_id, body)  # before 2026-11-27: one a call
        elif (name.startswith(("execution.", "compensation.")) and
              isinstance(body.get("idempotency_key"), str)):
            # before 2026-11-27: a call's outcome in an entry of its own, named by status
            self._call(seq, False, decision_id, {**body, "status": name.split(".", 1)[1]})
        elif name == "decision.started" and decision_id:
            pid = body.get("prediction_id")
            verdict = self.verdicts.get(pid) if isinstance(pid, str) else None
            self.started[decision_id] = (seq, pid if isinstance(pid, str) else None,
                                         verdict[3] if verdict is not None else MISSING)
        elif name.startswith("prediction."):
            pid, action, reason = (body.get(k) for k in ("prediction_id", "action", "reason"))
            if isinstance(pid, str) and isinstance(action, str) and isinstance(reason, str):
                self.verdicts[pid] = (seq, self._one(action), self._one(reason),
                                      body.get("expected_value", MISSING))
            replans = body.get("replans")
            if isinstance(replans, str):  # it left the queue for its follow-up
                self.verdicts[replans] = (seq, TriageAction.DROP.value, REPLANNED, MISSING)

    def _outcome(self, seq: int, actor: str, decision_id: str | None,
                 body: dict[str, Any]) -> None:
        oid = body.get("outcome_id")
        if not isinstance(oid, str):
            if "label" in body and "value_realized" in body:  # before outcomes had ids
                self.legacy_outcomes[(decision_id, body["label"])] = (seq, {
                    "value_realized": body["value_realized"],
                    "observed_at": _iso(_time(body.get("observed_at")))})
            return
        fields = {k: body[k] for k in ("arm", "prediction_id", "kind", "entity_id", "label",
                                       "value_realized", "observed_at", "source",
                                       "expected_value") if k in body}
        fields["decision_id"], fields["recorded_by"] = decision_id, actor
        self.outcomes[oid] = (seq, fields)

    def _call(self, seq: int, started: bool, decision_id: str | None,
              call: dict[str, Any]) -> None:
        key = call["idempotency_key"]
        rec = self.calls.get(key)
        if started:
            if rec is None:
                self.calls[key] = _Call(seq, decision_id, self._one(call.get("step_id")),
                                        self._one(call.get("tool")), call.get("arguments_hash"))
            else:  # another attempt
                rec.status, rec.status_seq, rec.receipt = ExecutionStatus.STARTED.value, seq, None
            return
        if rec is None:
            return  # a finish without its start: the chain check is what speaks for that
        rec.status, rec.status_seq = self._one(call.get("status")), seq
        rec.receipt = call.get("receipt_digest")


# ---------------------------------------------------------------------- the checks


def stream(conn: Connection, query: Any) -> Iterator[Any]:
    """``query``'s rows, fetched 5,000 at a time (a table read whole, in bounded memory)."""
    rows = conn.execute(query.execution_options(yield_per=5000))
    try:
        yield from rows
    finally:
        rows.close()


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
            ).isoformat()


_OUTCOME_ROWS = select(outcome_records.c.id, outcome_records.c.arm,
                       outcome_records.c.prediction_id, outcome_records.c.decision_id,
                       outcome_records.c.kind, outcome_records.c.entity_id,
                       outcome_records.c.label, outcome_records.c.value_realized,
                       outcome_records.c.expected_value, outcome_records.c.observed_at,
                       outcome_records.c.source, outcome_records.c.recorded_by
                       ).order_by(outcome_records.c.id)


def check_outcomes(conn: Connection, recorded: ValueRecorded, add: Add) -> int:
    """Every outcome row against its entry; then every entry left without a row. The
    rows read. Consumes ``recorded.outcomes`` (no copy of a large history is made)."""
    left = recorded.outcomes
    count = 0
    for row in stream(conn, _OUTCOME_ROWS):
        count += 1
        found = left.pop(row.id, None)
        if found is None and row.recorded_by == _MIGRATION_0003:
            found = recorded.legacy_outcomes.pop((row.decision_id, row.label), None)
        if found is None:
            add("outcome_records", row.id, "label", row.label, None, None)
            continue
        seq, fields = found
        stored = {**row._mapping, "observed_at": _iso(row.observed_at)}
        for name, value in fields.items():
            if stored[name] != value:
                add("outcome_records", row.id, name, stored[name], value, seq)
    for oid, (seq, fields) in sorted(left.items()):
        add("outcome_records", oid, "row", None,
            f"{fields.get('label')} {fields.get('value_realized')!r}", seq)
    return count


_EXECUTION_ROWS = select(executions.c.idempotency_key, executions.c.decision_id,
                         executions.c.step_id, executions.c.tool, executions.c.arguments,
                         executions.c.arguments_hash, executions.c.status,
                         executions.c.receipt).order_by(executions.c.idempotency_key)


def check_executions(conn: Connection, recorded: ValueRecorded, add: Add) -> int:
    """Every execution row against its entries; then every call left without a row.
    Consumes ``recorded.calls``."""
    left = recorded.calls
    count = 0
    for row in stream(conn, _EXECUTION_ROWS):
        count += 1
        key = row.idempotency_key
        rec = left.pop(key, None)
        if rec is None:
            add("executions", key, "status", row.status, None, None)
            continue
        for name, value in (("decision_id", rec.decision_id), ("step_id", rec.step_id),
                            ("tool", rec.tool), ("arguments_hash", rec.arguments_hash)):
            if value is not None and getattr(row, name) != value:
                add("executions", key, name, getattr(row, name), value, rec.seq)
        if row.arguments is not None and digest(row.arguments) != rec.arguments_hash:
            add("executions", key, "arguments", digest(row.arguments), rec.arguments_hash,
                rec.seq)
        if row.status != rec.status:
            add("executions", key, "status", row.status, rec.status, rec.status_seq)
        receipt = digest(row.receipt) if row.receipt else None
        if rec.status != ExecutionStatus.STARTED.value and receipt != rec.receipt:
            add("executions", key, "receipt", receipt, rec.receipt, rec.status_seq)
    for key, rec in sorted(left.items()):
        add("executions", key, "row", None, f"{rec.tool} {rec.status}", rec.status_seq)
    return count


_VERDICT_ROWS = (select(predictions.c.id, predictions.c.triage_action,
                        predictions.c.triage_reason, predictions.c.expected_value)
                 .where(predictions.c.triage_action != TriageAction.DROP.value)
                 .order_by(predictions.c.id))


def check_predictions(conn: Connection, recorded: ValueRecorded, add: Add) -> int:
    """The verdict of every prediction not dropped, against its last entry; then the
    predictions whose last entry gave them a verdict other than drop that were not read
    (rewritten as dropped, untriaged or removed), looked up by id."""
    verdicts = recorded.verdicts
    # What the entries left in a verdict other than drop, not yet read (popped as read).
    unread = {pid for pid, (_, action, _, _) in verdicts.items()
              if action != TriageAction.DROP.value}
    count = 0
    for row in stream(conn, _VERDICT_ROWS):
        count += 1
        unread.discard(row.id)
        _check_verdict(row, verdicts.get(row.id), add)
    unseen = sorted(unread)
    for i in range(0, len(unseen), _CHUNK):
        chunk = unseen[i:i + _CHUNK]
        rows = {r.id: r for r in conn.execute(select(
            predictions.c.id, predictions.c.triage_action, predictions.c.triage_reason,
            predictions.c.expected_value).where(predictions.c.id.in_(chunk)))}
        for pid in chunk:
            row = rows.get(pid)
            seq, action, _, _ = verdicts[pid]
            if row is None:
                add("predictions", pid, "row", None, action, seq)
            else:
                _check_verdict(row, verdicts[pid], add)
    return count


def _check_verdict(row: Any, rec: tuple[int, str, str, Any] | None, add: Add) -> None:
    if rec is None:
        if row.triage_action in _RECORDED_BY_ROW:
            add("predictions", row.id, "triage_action", row.triage_action, None, None)
        return
    seq, action, reason, expected = rec
    migrated = _MIGRATED_0010.get((action, reason))
    if migrated is not None and (row.triage_action, row.triage_reason) == migrated:
        return
    if row.triage_action != action:
        add("predictions", row.id, "triage_action", row.triage_action, action, seq)
    if row.triage_reason != reason:
        add("predictions", row.id, "triage_reason", row.triage_reason, reason, seq)
    if expected is not MISSING and row.expected_value != expected:
        add("predictions", row.id, "expected_value", row.expected_value, expected, seq)


def check_decision(row: Any, recorded: ValueRecorded, add: Add) -> None:
    """A decision row's prediction and expected value against ``decision.started``."""
    started = recorded.started.get(row.id)
    if started is None:
        return
    seq, pid, expected = started
    if pid is not None and row.prediction_id != pid:
        add("decisions", row.id, "prediction_id", row.prediction_id, pid, seq)
    if expected is not MISSING and row.expected_value != expected:
        add("decisions", row.id, "expected_value", row.expected_value, expected, seq)
