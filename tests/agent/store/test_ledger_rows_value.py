"""``ledger verify`` checks the rows the value report and the execution record stand on
against the ledger, as it checks approvals and decision statuses: outcomes (each field
``outcome.recorded`` holds, who recorded it, and that none was made up or removed),
executions (tool, step, argument hash, the stored arguments' hash, status, the receipt's
digest; none made up or removed), each prediction's triage verdict (act, hold: treated
or control), and the expected values a decision and an outcome carry. An insider who
rewrites a value in the database, leaving the chain whole, is named with the field, the
row's value and the ledger's."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update

from decisionops.agent.models import utcnow
from decisionops.agent.report import record_outcomes
from decisionops.agent.store import _tables as t
from decisionops.agent.store._outcome_tables import outcome_records
from decisionops.agent.store.ledger import verify
from tests.agent.store.conftest import World
from tests.agent.store.test_ledger_rows_agree import _found


def _outcome(w: World, decision_id: str, label: str = "retained", value: float = 1200.0
             ) -> str:
    (recorded,) = record_outcomes(w.rt.store, [{
        "decision_id": decision_id, "label": label, "value_realized": value,
        "observed_at": (utcnow() - timedelta(minutes=5)).isoformat()}],
        source="cli", actor="ops@acme").recorded
    return recorded


def _write(w: World, statement: Any) -> None:
    """What someone with write access to the database does: no code of ours involved."""
    with w.rt.store.transaction() as conn:
        conn.execute(statement)


def _execution(w: World, tool: str) -> Any:
    with w.rt.store.reading() as conn:
        return conn.execute(select(t.executions).where(
            t.executions.c.decision_id == w.done, t.executions.c.tool == tool)).one()


def test_outcomes_executions_and_verdicts_that_agree_raise_no_alarm(world: World) -> None:
    _outcome(world, world.done)
    _outcome(world, world.refused, label="churned", value=0)
    report = verify(world.rt.store.engine)
    assert report.ok, report.problem
    assert report.disagreements == ()


def test_a_rewritten_outcome_value_and_label_are_named(world: World) -> None:
    out = _outcome(world, world.done, label="churned", value=0)
    _write(world, update(outcome_records).where(outcome_records.c.id == out)
           .values(value_realized=99_000_000.0, label="retained"))
    assert sorted(_found(verify(world.rt.store.engine))) == [
        ("outcome_records", out, "label", "retained", "churned"),
        ("outcome_records", out, "value_realized", 99_000_000.0, 0.0)]


def test_an_outcome_moved_to_the_control_group_is_named(world: World) -> None:
    out = _outcome(world, world.done, label="churned", value=0)
    _write(world, update(outcome_records).where(outcome_records.c.id == out)
           .values(arm="control", decision_id=None))
    assert sorted(_found(verify(world.rt.store.engine))) == [
        ("outcome_records", out, "arm", "control", "treated"),
        ("outcome_records", out, "decision_id", None, world.done)]


def test_who_recorded_an_outcome_and_its_expected_value_are_checked(world: World) -> None:
    out = _outcome(world, world.done)
    with world.rt.store.reading() as conn:
        expected = conn.scalar(select(outcome_records.c.expected_value)
                               .where(outcome_records.c.id == out))
    assert expected is not None
    _write(world, update(outcome_records).where(outcome_records.c.id == out)
           .values(recorded_by="mallory", expected_value=expected / 100))
    assert sorted(_found(verify(world.rt.store.engine))) == [
        ("outcome_records", out, "expected_value", expected / 100, expected),
        ("outcome_records", out, "recorded_by", "mallory", "ops@acme")]


def test_a_made_up_outcome_and_a_removed_one_are_named(world: World) -> None:
    kept = _outcome(world, world.done)
    removed = _outcome(world, world.refused, label="churned", value=0)
    with world.rt.store.transaction() as conn:
        row = dict(conn.execute(select(outcome_records)
                                .where(outcome_records.c.id == kept)).one()._mapping)
        conn.execute(insert(outcome_records).values(
            {**row, "id": "out_made_up", "value_realized": 5_000_000.0}))
        conn.execute(delete(outcome_records).where(outcome_records.c.id == removed))
    report = verify(world.rt.store.engine)
    found = {d.id: d for d in report.disagreements}
    assert set(found) == {"out_made_up", removed}
    assert found["out_made_up"].seq is None and "never recorded" in str(found["out_made_up"])
    gone = found[removed]
    assert gone.row is None and gone.seq is not None
    assert "not in the store" in str(gone) and removed in str(gone)


def test_a_rewritten_execution_status_is_named(world: World) -> None:
    credit = _execution(world, "finance.issue_credit")
    assert credit.status == "succeeded"
    _write(world, update(t.executions).where(
        t.executions.c.idempotency_key == credit.idempotency_key)
        .values(status="failed", error="boom"))
    assert _found(verify(world.rt.store.engine)) == [
        ("executions", credit.idempotency_key, "status", "failed", "succeeded")]


def test_rewritten_execution_arguments_and_receipt_are_caught_by_their_hashes(
        world: World) -> None:
    credit = _execution(world, "finance.issue_credit")
    forged_args = {"account_id": "ACC-10004", "amount": 999_999.0, "currency": "EUR",
                   "reason": "x"}
    forged_receipt = {**credit.receipt, "amount": 999_999.0}
    _write(world, update(t.executions).where(
        t.executions.c.idempotency_key == credit.idempotency_key)
        .values(arguments=forged_args, receipt=forged_receipt))
    found = {d.field: d for d in verify(world.rt.store.engine).disagreements}
    assert set(found) == {"arguments", "receipt"}
    assert all(d.id == credit.idempotency_key and d.seq is not None for d in found.values())


def test_a_made_up_execution_and_a_removed_one_are_named(world: World) -> None:
    credit = _execution(world, "finance.issue_credit")
    offer = _execution(world, "crm.create_retention_offer")
    with world.rt.store.transaction() as conn:
        conn.execute(insert(t.executions).values(
            {**credit._mapping, "idempotency_key": "idem_made_up", "step_id": "bonus"}))
        conn.execute(delete(t.executions).where(
            t.executions.c.idempotency_key == offer.idempotency_key))
    found = {d.id: d for d in verify(world.rt.store.engine).disagreements}
    assert set(found) == {"idem_made_up", offer.idempotency_key}
    assert found["idem_made_up"].seq is None
    assert found[offer.idempotency_key].row is None


def test_a_treated_prediction_rewritten_as_held_out_is_named(world: World) -> None:
    with world.rt.store.reading() as conn:
        pid = conn.scalar(select(t.decisions.c.prediction_id)
                          .where(t.decisions.c.id == world.done))
    _write(world, update(t.predictions).where(t.predictions.c.id == pid)
           .values(triage_action="hold", triage_reason="holdout"))
    assert sorted(_found(verify(world.rt.store.engine))) == [
        ("predictions", pid, "triage_action", "hold", "act"),
        ("predictions", pid, "triage_reason", "holdout", "act")]


def test_a_dropped_prediction_rewritten_into_the_control_group_is_named(
        world: World) -> None:
    rt = world.rt
    low = world.rt.store.predictions
    from tests.graphs.conftest import churn

    rt.ingest([churn("churn-low", account="ACC-10007", score=0.05)], source="test")
    rt.triage_pending()
    assert low.get("churn-low") is not None
    with rt.store.reading() as conn:
        assert conn.scalar(select(t.predictions.c.triage_action)
                           .where(t.predictions.c.id == "churn-low")) == "drop"
    _write(world, update(t.predictions).where(t.predictions.c.id == "churn-low")
           .values(triage_action="hold", triage_reason="holdout"))
    (found,) = verify(rt.store.engine).disagreements
    assert (found.table, found.id, found.seq) == ("predictions", "churn-low", None)
    assert "never recorded" in str(found)


def test_a_rewritten_expected_value_is_named(world: World) -> None:
    with world.rt.store.reading() as conn:
        expected = conn.scalar(select(t.decisions.c.expected_value)
                               .where(t.decisions.c.id == world.done))
    assert expected
    _write(world, update(t.decisions).where(t.decisions.c.id == world.done)
           .values(expected_value=expected / 100))
    assert _found(verify(world.rt.store.engine)) == [
        ("decisions", world.done, "expected_value", expected / 100, expected)]


def test_rows_written_in_earlier_shapes_raise_no_false_alarm(tmp_path: Path) -> None:
    """(review: stores from before 2026-11-27 and through migrations 0003 and 0010) A tool
    call's entries of its own, an outcome entry without an id whose row migration 0003
    copied, and a drop verdict migration 0010 turned into needs_human agree; a row
    changed since is still named."""
    from decisionops.agent.hashing import digest
    from decisionops.agent.store import Event, Store

    store = Store.open(f"sqlite:///{tmp_path / 'old.sqlite'}")
    now, receipt = utcnow(), {"ticket_id": "T-1"}
    with store.transaction() as conn:
        conn.execute(insert(t.predictions), [
            {"id": pid, "kind": "churn", "entity_type": "account", "entity_id": "ACC-1",
             "model": "m", "model_version": "1", "score": 0.9, "observed_at": now,
             "payload": {}, "source": "test", "ingested_at": now, "triage_action": action,
             "triage_reason": reason, "triaged_at": now}
            for pid, action, reason in (("p-1", "act", "act"),
                                        ("p-2", "needs_human", "no_playbook"),
                                        ("p-3", "needs_human", "missing_value"))])
        conn.execute(insert(t.decisions).values(
            id="dec_1", prediction_id="p-1", kind="churn", entity_id="ACC-1",
            status="completed", plan_version=1, created_at=now, updated_at=now, fence=1))
        conn.execute(insert(t.executions).values(
            idempotency_key="idem_1", decision_id="dec_1", plan_version=1, step_id="case",
            purpose="execution", tool="support.open_ticket", arguments=None,
            arguments_hash="ab" * 32, status="succeeded", attempts=1, receipt=receipt,
            started_at=now, finished_at=now))
        conn.execute(insert(outcome_records).values(
            id="out_1", prediction_id="p-1", decision_id="dec_1", arm="treated", kind="churn",
            entity_id="ACC-1", label="retained", value_realized=1200.0, expected_value=None,
            observed_at=now, source="migrated:outcomes", recorded_by="migration:0003",
            recorded_at=now))
        store.db.record(conn, [
            Event(actor="w", event="prediction.triaged",
                  body={"prediction_id": "p-1", "action": "act", "reason": "act"}),
            Event(actor="w", event="prediction.triaged",
                  body={"prediction_id": "p-2", "action": "drop", "reason": "no_playbook"}),
            Event(actor="w", event="prediction.triaged",
                  body={"prediction_id": "p-3", "action": "drop",
                        "reason": "low_expected_value"}),
            Event(actor="w", event="decision.started", decision_id="dec_1",
                  body={"prediction_id": "p-1"}),
            Event(actor="w", event="execution.started", decision_id="dec_1",
                  body={"step_id": "case", "tool": "support.open_ticket",
                        "idempotency_key": "idem_1", "attempt": 1, "arguments_hash": "ab" * 32}),
            Event(actor="w", event="execution.succeeded", decision_id="dec_1",
                  body={"step_id": "case", "idempotency_key": "idem_1",
                        "receipt_digest": digest(receipt)}),
            Event(actor="w", event="decision.completed", decision_id="dec_1"),
            Event(actor="api:feeder", event="outcome.recorded", decision_id="dec_1",
                  body={"decision_id": "dec_1", "label": "retained", "value_realized": 1200.0,
                        "observed_at": now.isoformat(), "note": ""})], now)
    try:
        report = verify(store.engine)
        assert report.ok, report.problem
        assert (report.executions, report.outcomes) == (1, 1)
        with store.transaction() as conn:
            conn.execute(update(t.executions).values(status="failed"))
            conn.execute(update(outcome_records).values(value_realized=9e6))
        assert sorted(_found(verify(store.engine))) == [
            ("executions", "idem_1", "status", "failed", "succeeded"),
            ("outcome_records", "out_1", "value_realized", 9e6, 1200.0)]
    finally:
        store.close()


def test_a_decision_a_host_creates_takes_the_expected_value_triage_recorded(
        world: World) -> None:
    """(review: LangGraph Studio created a decision with its payload's expected value,
    None without a value at stake, where triage had recorded the kind's default)"""
    from decisionops.agent.models import Prediction

    rt = world.rt
    prediction = Prediction(id="churn-studio", model="m", kind="churn", entity_type="account",
                            entity_id="ACC-10008", score=0.9, value_at_stake=30_000,
                            observed_at="2026-11-20T08:00:00Z")
    rt.ingest([prediction], source="test")
    rt.triage_pending()
    stored = rt.store.prediction_views.get("churn-studio").expected_value
    assert stored
    rt.store.decisions.create("dec_studio", prediction, playbook="churn-retention",
                              expected_value=None, owner="studio", lease_seconds=60)
    assert rt.store.decisions.get("dec_studio").expected_value == stored
    report = verify(rt.store.engine)
    assert report.ok, report.problem
