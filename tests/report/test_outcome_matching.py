"""Outcomes are matched to decisions (or control predictions) by entity and window,
every row that cannot be used is reported, and re-importing changes nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from decisionops.agent.errors import InvalidInputError
from decisionops.agent.models import decision_id_for
from decisionops.agent.report import OutcomeRow, import_outcome_file, record_outcomes
from decisionops.agent.store import Store

from .conftest import T0, World

pytestmark = pytest.mark.both_backends


def _row(kind: str, entity: str, at, label: str = "retained", value: float = 100.0) -> dict:
    return {"kind": kind, "entity_id": entity, "label": label, "value_realized": value,
            "observed_at": at.isoformat()}


def test_entity_row_matches_latest_acted_or_held_prediction_within_window(world: World) -> None:
    old = world.predict("churn", "A1", T0)
    world.predict("churn", "A1", T0 + timedelta(days=5), action="drop")  # not a subject
    recent = world.predict("churn", "A1", T0 + timedelta(days=10))
    world.predict("churn", "A1", T0 + timedelta(days=40))  # after the outcome
    world.predict("failure", "A1", T0 + timedelta(days=12))  # another kind

    result = record_outcomes(world.store, [_row("churn", "A1", T0 + timedelta(days=30))],
                             source="test", actor="tester")

    assert result.unmatched == [] and result.treated == 1
    [saved] = world.store.outcomes.outcome_list()
    assert saved["prediction_id"] == recent.id != old.id
    assert saved["decision_id"] == decision_id_for(recent.id)
    assert saved["arm"] == "treated"
    assert saved["expected_value"] == recent.expected_value


def test_window_is_configurable_and_its_edge_is_inclusive(world: World) -> None:
    world.predict("churn", "A1", T0)
    rows = [_row("churn", "A1", T0 + timedelta(days=90)),
            _row("churn", "A1", T0 + timedelta(days=91), label="churned")]

    default = record_outcomes(world.store, rows, source="test", actor="tester")
    assert len(default.recorded) == 1
    [late] = default.unmatched
    assert (late.row, late.field) == (2, "observed_at")
    assert "91 days before the outcome; the window is 90 days" in late.reason

    wider = record_outcomes(world.store, rows, source="test", actor="tester",
                            window=timedelta(days=120))
    assert len(wider.recorded) == 1 and len(wider.duplicates) == 1 and not wider.unmatched


def test_an_outcome_before_its_prediction_or_beyond_any_money_is_refused(
        world: World, tmp_path: Path) -> None:
    # Found in a black-box trial: an outcome observed in 1900 was recorded against a
    # decision of 2026, and a value of 1e300 made ``report`` crash (OverflowError).
    p = world.predict("failure", "AST-1", T0)
    early = {"decision_id": decision_id_for(p.id), "label": "failure_avoided",
             "value_realized": 1200, "observed_at": (T0 - timedelta(days=1)).isoformat()}
    (refused,) = record_outcomes(world.store, [early], source="api", actor="api:tester").unmatched
    assert (refused.field, refused.problem) == ("observed_at", "invalid")
    assert "predates its prediction" in refused.reason
    for value in (1e300, -1e300, 1e16):
        with pytest.raises(ValueError, match="value_realized"):
            OutcomeRow(decision_id=decision_id_for(p.id), label="failure_avoided",
                       value_realized=value, observed_at=T0 + timedelta(days=1))
    path = tmp_path / "outcomes.csv"
    path.write_text("decision_id,label,value_realized,observed_at\n"
                    f"{decision_id_for(p.id)},failure_avoided,1e300,"
                    f"{(T0 + timedelta(days=1)).isoformat()}\n"
                    f"{decision_id_for(p.id)},failure_avoided,10,"
                    f"{(T0 - timedelta(days=1)).isoformat()}\n")
    result = import_outcome_file(world.store, path, actor="tester")
    assert result.recorded == []
    reasons = {u.row: (u.field, u.reason) for u in result.unmatched}
    assert reasons[1][0] == "value_realized"
    assert reasons[2][0] == "observed_at" and "predates its prediction" in reasons[2][1]
    assert world.store.outcomes.outcome_list() == []


def test_unmatched_rows_are_reported_with_row_number_and_reason(world: World,
                                                                 tmp_path: Path) -> None:
    world.predict("churn", "A1", T0)
    world.predict("churn", "D1", T0, action="drop")
    world.predict("churn", "H1", T0, action="hold", reason="operator_hold")
    path = tmp_path / "outcomes.csv"
    path.write_text(
        "kind,entity_id,decision_id,label,value_realized,observed_at\n"
        f"churn,A1,,retained,10,{(T0 + timedelta(days=3)).isoformat()}\n"   # row 1: ok
        "churn,NOPE,,retained,10,2026-06-10\n"                               # row 2
        "churn,D1,,retained,10,2026-06-10\n"                                 # row 3
        "churn,H1,,retained,10,2026-06-10\n"                                 # row 4
        "churn,A1,,retained,10,2026-05-01\n"                                 # row 5
        ",,dec_unknown,retained,10,2026-06-10\n"                             # row 6
        "churn,A1,,retained,ten,2026-06-10\n"                                # row 7
        "churn,A1,,retained,10,2026-06-10T09:00:00\n"                        # row 8
        "churn,A1,,retained,10\n"                                            # row 9
        f"churn,A1,,retained,10,{(T0 + timedelta(days=3000)).isoformat()}\n"  # row 10
    )

    result = import_outcome_file(world.store, path, actor="tester")

    assert len(result.recorded) == 1 and result.rows_read == 10
    reasons = {u.row: (u.line, u.field, u.reason) for u in result.unmatched}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert reasons[2] == (3, "entity_id", "no churn prediction for entity NOPE")
    assert "was acted on or held out (triage: drop/below_threshold)" in reasons[3][2]
    assert "(triage: hold/operator_hold)" in reasons[4][2]
    assert reasons[5][1] == "observed_at" and "later than the outcome" in reasons[5][2]
    assert reasons[6][1:] == ("decision_id", "no decision dec_unknown")
    assert reasons[7][1] == "value_realized"
    assert reasons[8][1] == "observed_at" and "time zone" in reasons[8][2]
    # (trial 13: refused without naming what was missing)
    assert reasons[9] == (10, "observed_at", "has 5 cells; the header has 6: no cell for "
                          "observed_at (an empty one is a trailing comma)")
    assert reasons[10][1:] == ("observed_at", "is in the future")


def test_reimporting_the_same_file_is_a_no_op(world: World, tmp_path: Path) -> None:
    world.predict("churn", "A1", T0)
    world.predict("churn", "C1", T0, action="hold")
    path = tmp_path / "outcomes.jsonl"
    path.write_text(
        '{"kind": "churn", "entity_id": "A1", "label": "Retained", "value": 5, '
        '"observed_at": "2026-06-20T00:00:00Z"}\n'
        '{"kind": "churn", "entity_id": "C1", "label": "churned", '
        '"observed_at": "2026-06-21T00:00:00Z"}\n'
        '{"kind": "churn", "entity_id": "A1", "label": "retained", "value": 5, '
        '"observed_at": "2026-06-20T00:00:00Z"}\n')  # the first row again

    first = import_outcome_file(world.store, path, actor="tester")
    assert len(first.recorded) == 2 and len(first.duplicates) == 1 and first.ok
    before = world.counts()

    again = import_outcome_file(world.store, path, actor="tester")

    assert again.recorded == [] and sorted(again.duplicates) == sorted(first.recorded
                                                                        + first.duplicates)
    assert world.counts() == before
    # The same fact by decision id is the same outcome (stable id), not a new one.
    by_decision = record_outcomes(world.store, [{
        "decision_id": decision_id_for(f"churn-A1-{T0:%Y%m%dT%H%M}"), "label": "retained",
        "value_realized": 5, "observed_at": "2026-06-20T00:00:00+00:00"}],
        source="api", actor="tester")
    assert by_decision.duplicates == [first.recorded[0]]
    assert world.counts() == before


def test_a_changed_value_for_a_recorded_outcome_is_a_conflict_not_an_overwrite(
        world: World) -> None:
    world.predict("churn", "A1", T0)
    at = T0 + timedelta(days=7)
    record_outcomes(world.store, [_row("churn", "A1", at, value=100)], source="a", actor="x")
    before = world.counts()

    result = record_outcomes(world.store, [_row("churn", "A1", at, value=999)], source="b",
                             actor="x")

    [problem] = result.unmatched
    assert problem.field == "value_realized" and "not overwritten" in problem.reason
    assert world.counts() == before
    assert world.store.outcomes.outcome_list()[0]["value_realized"] == 100


def test_control_outcomes_are_recorded_against_the_prediction(world: World) -> None:
    held = world.predict("churn", "C1", T0, action="hold")
    acted = world.predict("churn", "A1", T0)

    result = record_outcomes(world.store, [
        _row("churn", "C1", T0 + timedelta(days=9), label="churned", value=0),
        {"prediction_id": acted.id, "label": "retained", "value": 50,
         "observed_at": (T0 + timedelta(days=9)).isoformat()}], source="test", actor="tester")

    assert (result.treated, result.control, result.unmatched) == (1, 1, [])
    [control] = world.store.outcomes.outcome_list(arm="control")
    assert control["prediction_id"] == held.id and control["decision_id"] is None
    entries = [e for e in world.store.ledger.entries() if e.event == "outcome.recorded"]
    assert {(e.body["arm"], e.decision_id) for e in entries} == {
        ("control", None), ("treated", decision_id_for(acted.id))}


def test_an_outcome_by_decision_is_recorded_once_and_never_overwritten(world: World) -> None:
    p = world.predict("failure", "AST-1", T0)
    outcome = {"decision_id": decision_id_for(p.id), "label": "failure_avoided",
               "value_realized": 1200, "observed_at": (T0 + timedelta(days=2)).isoformat()}

    (oid,) = record_outcomes(world.store, [outcome], source="api", actor="api:tester").recorded

    again = record_outcomes(world.store, [outcome], source="api", actor="api:tester")
    assert (again.recorded, again.duplicates) == ([], [oid])  # idempotent
    assert [o["id"] for o in world.store.outcomes.outcome_list()] == [oid]
    (conflict,) = record_outcomes(world.store, [{**outcome, "value_realized": 1}], source="api",
                                  actor="api:tester").unmatched
    assert (conflict.field, conflict.problem) == ("value_realized", "conflict")
    assert world.store.outcomes.outcome(oid)["value_realized"] == 1200


def test_a_file_without_the_needed_columns_records_nothing(world: World, tmp_path: Path) -> None:
    world.predict("churn", "A1", T0)
    path = tmp_path / "bad.csv"
    path.write_text("entity,what,when\nA1,retained,2026-06-10\n")
    before = world.counts()

    with pytest.raises(InvalidInputError) as info:
        import_outcome_file(world.store, path, actor="tester")

    assert info.value.field == "header" and "label" in info.value.message
    assert world.counts() == before


def test_sql_source_reads_rows_by_column_name(world: World, tmp_path: Path) -> None:
    import sqlite3

    from decisionops.agent.report import import_outcome_sql

    world.predict("churn", "A1", T0)
    db = tmp_path / "crm.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("create table renewals (account text, status text, revenue real, at text)")
        conn.execute("insert into renewals values ('A1', 'retained', 42.5, '2026-06-30'),"
                     " ('ZZ', 'retained', 1, '2026-06-30')")
    query = ("select 'churn' as kind, account as entity_id, status as label, "
             "revenue as value, at as observed_at from renewals order by account")

    result = import_outcome_sql(world.store, f"sqlite:///{db}", query, actor="tester")

    assert len(result.recorded) == 1 and [u.row for u in result.unmatched] == [2]
    with pytest.raises(InvalidInputError) as info:
        import_outcome_sql(world.store, f"sqlite:///{db}", "delete from renewals",
                           actor="tester")
    assert info.value.field == "query"


def test_store_subjects_without_outcomes(store: Store, world: World) -> None:
    a = world.predict("churn", "A1", T0)
    c = world.predict("churn", "C1", T0, action="hold")
    world.predict("churn", "D1", T0, action="drop")
    record_outcomes(store, [_row("churn", "A1", T0 + timedelta(days=1))], source="t", actor="x")

    assert [s.prediction_id for s in store.outcomes.unrecorded_subjects()] == [c.id]
    assert {s.prediction_id for s in store.outcomes.outcome_subjects(keys=[("churn", "A1")])} == {a.id}
    assert store.outcomes.outcome_subjects() == []


def test_two_outcomes_of_one_prediction_at_one_time_contradict_and_the_second_is_refused(
        world: World) -> None:
    """(trial 13: `failure` and `failure_avoided` at the same time were both recorded,
    and which one the report counted was decided by their ids' hashes)"""
    p = world.predict("failure", "AST-1", T0)
    at = (T0 + timedelta(days=3)).isoformat()
    first = {"decision_id": decision_id_for(p.id), "label": "failure", "value_realized": 0,
             "observed_at": at}
    assert record_outcomes(world.store, [first], source="api", actor="t").recorded
    before = world.counts()
    (refused,) = record_outcomes(world.store, [{**first, "label": "failure_avoided",
                                                "value_realized": 500_000}],
                                 source="api", actor="t").unmatched
    assert (refused.field, refused.problem) == ("label", "conflict")
    assert "failure" in refused.reason and "same time" in refused.reason
    assert world.counts() == before
    # in one file: the second row of the pair is refused, the first recorded
    q = world.predict("failure", "AST-2", T0)
    pair = [{"decision_id": decision_id_for(q.id), "label": label, "value_realized": 1,
             "observed_at": at} for label in ("failure_avoided", "failure")]
    result = record_outcomes(world.store, pair, source="file", actor="t")
    assert len(result.recorded) == 1 and [u.row for u in result.unmatched] == [2]
    # a later outcome of the same prediction is a new observation: it is recorded
    later = {**first, "label": "failure_avoided", "observed_at": (T0 + timedelta(days=9)).isoformat()}
    assert record_outcomes(world.store, [later], source="api", actor="t").recorded


def test_an_empty_value_is_refused_not_taken_for_zero(world: World, tmp_path: Path) -> None:
    """(trial 31 #4: a row whose value cell was empty, a JSON null or a SQL NULL was
    recorded as 0 realized and, being the prediction's latest, replaced its real
    outcome in the report.) An empty value names ``value_realized`` and is not
    recorded; 0 is written as 0. A file without a value column still records 0 (the
    label is the outcome)."""
    world.predict("churn", "E1", T0)
    at = (T0 + timedelta(days=3)).isoformat()
    later = (T0 + timedelta(days=4)).isoformat()
    path = tmp_path / "outcomes.csv"
    path.write_text("kind,entity_id,label,value_realized,observed_at\n"
                    f"churn,E1,retained,750,{at}\n"
                    f"churn,E1,retained,,{later}\n"
                    f"churn,E1,retained,  ,{later}\n")
    result = import_outcome_file(world.store, path, actor="tester")
    assert len(result.recorded) == 1
    assert [(u.row, u.field) for u in result.unmatched] == [(2, "value_realized"),
                                                            (3, "value_realized")]
    assert "empty" in result.unmatched[0].reason and "0" in result.unmatched[0].reason
    assert "object" not in str(result.unmatched[0])  # says the empty text it got
    nulls = record_outcomes(world.store, [{**_row("churn", "E1", T0 + timedelta(days=5)),
                                           "value_realized": None}], source="t", actor="t")
    assert [u.field for u in nulls.unmatched] == ["value_realized"]
    bare = tmp_path / "labels.csv"
    bare.write_text(f"kind,entity_id,label,observed_at\nchurn,E1,churned,{later}\n")
    assert len(import_outcome_file(world.store, bare, actor="tester").recorded) == 1
    values = sorted(o["value_realized"] for o in world.store.outcomes.outcome_list())
    assert values == [0.0, 750.0]
