"""``ledger verify`` checks the store's rows against the ledger: an approval's answer
(status, approver, answer, approved arguments) and what its request recorded (decision,
plan hash, function, reason), and each decision's status. A row changed in the database
without a ledger entry is named, with the field, the row's value and the ledger's; rows
whose entries were archived into segments are checked like any other, and rows that
agree never raise an alarm."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, select, update

from decisionops.agent.hashing import digest
from decisionops.agent.models import utcnow
from decisionops.agent.store import _tables as t
from decisionops.agent.store.ledger import verify
from tests.agent.store.conftest import World


def _set(w: World, table: Any, row_id: str, **values: Any) -> None:
    """What someone with write access to the database does: no code of ours involved."""
    with w.rt.store.transaction() as conn:
        conn.execute(update(table).where(table.c.id == row_id).values(**values))


def _found(report: Any) -> list[tuple[str, str, str, Any, Any]]:
    return [(d.table, d.id, d.field, d.row, d.ledger) for d in report.disagreements]


def test_rows_that_agree_verify_and_are_counted(world: World) -> None:
    report = verify(world.rt.store.engine)
    assert report.ok, report.problem
    assert report.disagreements == ()
    assert report.approvals == len(world.ids)
    assert report.decisions == 3


def test_a_forged_approver_is_named(world: World) -> None:
    sales = world.ids[(world.done, "sales")]
    _set(world, t.approvals, sales, approver="mia@sales")
    report = verify(world.rt.store.engine)
    assert not report.ok and report.chain_ok  # the chain itself holds
    assert _found(report) == [("approvals", sales, "approver", "mia@sales", "raj@sales")]
    assert report.disagreeing == 1
    assert "1 stored row disagrees with the ledger" in report.problem
    text = str(report.disagreements[0])
    assert all(part in text for part in (sales, "approver", "'mia@sales'", "'raj@sales'"))


def test_a_forged_rejection_names_status_and_approver(world: World) -> None:
    finance = world.ids[(world.done, "finance")]
    _set(world, t.approvals, finance, status="rejected", approver="omar@finance")
    found = {f[2]: f[3:] for f in _found(verify(world.rt.store.engine))}
    assert found == {"status": ("rejected", "edited"),
                     "approver": ("omar@finance", "dana@finance")}


@pytest.mark.parametrize("field", ["answer", "function", "reason", "plan_hash"])
def test_each_field_the_ledger_records_is_checked(world: World, field: str) -> None:
    refused = world.ids[(world.refused, "sales")]
    before = world.rt.store.approvals.get(refused)
    forged = {"answer": {"type": "approve", "comment": "fine by me"}, "function": "operations",
              "reason": "within auto-approve policy", "plan_hash": "ab" * 32}[field]
    _set(world, t.approvals, refused, **{field: forged})
    report = verify(world.rt.store.engine)
    truth = {"answer": before.answer, "function": "sales", "reason": before.reason,
             "plan_hash": before.plan_hash}[field]
    assert _found(report) == [("approvals", refused, field, forged, truth)]
    assert report.disagreements[0].seq is not None  # the entry that records it


def test_forged_approved_arguments_are_caught_by_their_hash(world: World) -> None:
    finance = world.ids[(world.done, "finance")]
    edited = world.rt.store.approvals.get(finance).approved_arguments
    assert edited is not None
    forged = {"goodwill_credit": {**edited["goodwill_credit"], "amount": 500.0}}
    _set(world, t.approvals, finance, approved_arguments=forged)
    (found,) = _found(verify(world.rt.store.engine))
    assert found == ("approvals", finance, "approved_arguments.goodwill_credit",
                     digest(forged["goodwill_credit"]), digest(edited["goodwill_credit"]))


def test_an_answer_the_ledger_never_recorded_is_caught(world: World) -> None:
    sales = world.ids[(world.waiting, "sales")]
    _set(world, t.approvals, sales, status="approved", approver="raj@sales",
         answer={"type": "approve", "comment": ""}, answered_at=utcnow())
    assert _found(verify(world.rt.store.engine)) == [
        ("approvals", sales, "status", "approved", "pending")]


def test_an_answer_set_back_to_pending_is_caught(world: World) -> None:
    finance = world.ids[(world.done, "finance")]
    _set(world, t.approvals, finance, status="pending")
    assert _found(verify(world.rt.store.engine)) == [
        ("approvals", finance, "status", "pending", "edited")]


def test_a_forged_auto_approval_is_caught(world: World) -> None:
    support = world.ids[(world.done, "support")]
    _set(world, t.approvals, support, approver="sam@support",
         answer={"type": "approve", "comment": "checked by hand"})
    found = {f[2]: f[3:] for f in _found(verify(world.rt.store.engine))}
    assert found == {"approver": ("sam@support", "policy:support"),
                     "answer": ({"type": "approve", "comment": "checked by hand"},
                                {"type": "approve", "comment": "policy"})}


def test_a_row_the_ledger_never_recorded_is_caught(world: World) -> None:
    with world.rt.store.transaction() as conn:
        row = dict(conn.execute(select(t.approvals).where(
            t.approvals.c.id == world.ids[(world.done, "sales")])).one()._mapping)
        conn.execute(insert(t.approvals).values(
            {**row, "id": "apr_forged", "function": "operations", "plan_version": 7}))
    (found,) = verify(world.rt.store.engine).disagreements
    assert (found.table, found.id, found.ledger, found.seq) == (
        "approvals", "apr_forged", None, None)
    assert "never recorded" in str(found)


def test_a_forged_decision_status_is_caught(world: World) -> None:
    assert world.rt.store.decisions.get(world.done).status == "completed"
    _set(world, t.decisions, world.done, status="rejected")
    _set(world, t.decisions, world.waiting, status="completed")
    assert sorted(_found(verify(world.rt.store.engine))) == sorted([
        ("decisions", world.done, "status", "rejected", "completed"),
        ("decisions", world.waiting, "status", "completed", "awaiting_approval")])


def test_rows_whose_entries_were_archived_are_checked_without_false_alarms(
        world: World) -> None:
    store = world.rt.store
    while store.ledger.archive(utcnow() + timedelta(seconds=1), max_entries=50)["segments"]:
        pass
    report = verify(store.engine)
    assert report.ok, report.problem
    assert report.archived > 0
    sales = world.ids[(world.done, "sales")]
    with store.reading() as conn:  # its answer is in a segment now
        assert conn.scalar(select(t.ledger.c.seq).where(
            t.ledger.c.decision_id == world.done)) is None
    _set(world, t.approvals, sales, approver="mia@sales")
    _set(world, t.decisions, world.done, status="failed")
    assert _found(verify(store.engine)) == [
        ("approvals", sales, "approver", "mia@sales", "raj@sales"),
        ("decisions", world.done, "status", "failed", "completed")]


def test_every_disagreement_is_counted(world: World) -> None:
    with world.rt.store.transaction() as conn:
        answered = conn.execute(update(t.approvals).where(t.approvals.c.approver.is_not(None))
                                .values(approver="mallory")).rowcount
    report = verify(world.rt.store.engine)
    assert answered >= 6
    assert report.disagreeing == len(report.disagreements) == answered
    assert {d.field for d in report.disagreements} == {"approver"}


def test_each_table_is_read_once(world: World) -> None:
    """Set-based: one statement per table whatever its size, no query per row."""
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = world.rt.store.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert verify(engine).ok
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    reads = [m.group(1) for s in statements for m in re.finditer(r"\bFROM\s+(\w+)", s)]
    assert reads.count("approvals") == 1
    assert reads.count("decisions") == 1


def test_entries_in_earlier_shapes_raise_no_false_alarm(tmp_path: Path) -> None:
    """Before 2026-12-04 an auto-approval had an entry of its own (its id and function in
    the body, the approver its actor) and a row holding every approved argument set;
    before approved hashes were recorded an answer's entry had none: what an entry does
    not record is not compared."""
    from decisionops.agent.store import Event, Store

    store = Store.open(f"sqlite:///{tmp_path / 'old.sqlite'}")
    now, args = utcnow(), {"account_id": "ACC-1", "amount": 50}
    with store.transaction() as conn:
        conn.execute(insert(t.predictions).values(
            id="p-1", kind="churn", entity_type="account", entity_id="ACC-1", model="m",
            model_version="1", score=0.9, observed_at=now, payload={}, source="test",
            ingested_at=now))
        conn.execute(insert(t.decisions).values(
            id="dec_1", prediction_id="p-1", kind="churn", entity_id="ACC-1",
            status="completed", plan_version=1, created_at=now, updated_at=now, fence=1))
        row = {"decision_id": "dec_1", "plan_version": 1, "plan_hash": "ab" * 32,
               "requested_at": now, "answered_at": now, "request": {}}
        conn.execute(insert(t.approvals), [
            {**row, "id": "apr_auto", "function": "finance", "status": "auto_approved",
             "reason": "within policy", "approver": "policy:finance",
             "answer": {"type": "approve", "comment": "policy"},
             "approved_arguments": {"credit": args}},
            {**row, "id": "apr_asked", "function": "sales", "status": "edited",
             "reason": "risk", "approver": "raj@sales",
             "answer": {"type": "edit", "arguments": {"offer": {"pct": 10}}},
             "approved_arguments": {"offer": {"pct": 10}}}])
        at = {"decision_id": "dec_1", "plan_hash": "ab" * 32}
        store.db.record(conn, [
            Event(actor="w", event="decision.started", decision_id="dec_1"),
            Event(actor="policy:finance", event="approval.auto_approved", **at,
                  body={"approval_id": "apr_auto", "function": "finance",
                        "reason": "within policy"}),
            Event(actor="w", event="approval.requested", **at,
                  body={"approval_id": "apr_asked", "function": "sales", "reason": "risk"}),
            Event(actor="raj@sales", event="approval.edited", **at,
                  body={"approval_id": "apr_asked",
                        "answer": {"type": "edit", "arguments": {"offer": {"pct": 10}}}}),
            Event(actor="w", event="decision.completed", decision_id="dec_1")], now)
    try:
        report = verify(store.engine)
        assert report.ok, report.problem
        assert (report.approvals, report.decisions) == (2, 1)
        with store.transaction() as conn:
            conn.execute(update(t.approvals).where(t.approvals.c.id == "apr_auto")
                         .values(approver="dana@finance"))
        assert _found(verify(store.engine)) == [
            ("approvals", "apr_auto", "approver", "dana@finance", "policy:finance")]
    finally:
        store.close()
