"""The retraining export round-trips through Parquet and CSV; CSV neutralizes formulas."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from decisionops.agent.report import export_rows, neutralize, record_outcomes, write_export

from .conftest import T0, World


def _populate(world: World) -> dict[str, str]:
    acted = world.predict("churn", "A1", T0, features={
        "region": "=HYPERLINK(\"http://evil.example\")", "seats": 12, "delta": -3.5,
        "note": "@SUM(A1)", "plain": "-minus", "flag": True})
    held = world.predict("churn", "C1", T0, action="hold", features={"region": "EMEA",
                                                                     "seats": 4})
    world.predict("churn", "D1", T0, action="drop")  # not exported: no outcome can apply
    waiting = world.predict("failure", "AST-1", T0)  # no outcome yet
    assert record_outcomes(world.store, [
        {"kind": "churn", "entity_id": "A1", "label": "retained", "value": -120.5,
         "observed_at": (T0 + timedelta(days=5)).isoformat()},
        {"kind": "churn", "entity_id": "A1", "label": "churned", "value": 0,
         "observed_at": (T0 + timedelta(days=50)).isoformat()},
        {"kind": "churn", "entity_id": "C1", "label": "churned",
         "observed_at": (T0 + timedelta(days=6)).isoformat()}],
        source="test", actor="tester").ok
    return {"acted": acted.id, "held": held.id, "waiting": waiting.id}


def test_neutralize() -> None:
    assert [neutralize(v) for v in ("=1+1", "+1", "-1", "@x", "\tx", "ok", "a=b")] == [
        "'=1+1", "'+1", "'-1", "'@x", "'\tx", "ok", "a=b"]


def test_rows_flag_control_and_carry_features(world: World) -> None:
    ids = _populate(world)
    rows, columns = export_rows(world.store)
    by = [(r["prediction_id"], r["outcome_label"]) for r in rows]
    assert sorted(by, key=str) == sorted([(ids["acted"], "retained"), (ids["acted"], "churned"),
                                          (ids["held"], "churned"), (ids["waiting"], None)],
                                         key=str)
    control = [r for r in rows if r["control"]]
    assert [r["prediction_id"] for r in control] == [ids["held"]]
    assert control[0]["arm"] == "control" and control[0]["decision_id"] is None
    types = dict(columns)
    assert types["feature_seats"] == "int" and types["feature_delta"] == "float"
    assert types["feature_flag"] == "bool" and types["feature_region"] == "string"


@pytest.mark.both_backends
def test_parquet_round_trip(world: World, tmp_path: Path) -> None:
    _populate(world)
    rows, columns = export_rows(world.store)
    out = tmp_path / "outcomes.parquet"

    assert write_export(world.store, out, "parquet") == len(rows) == 4

    table = pq.read_table(out)
    assert table.column_names == [name for name, _ in columns]
    back = table.to_pylist()
    for original, read in zip(rows, back, strict=True):
        for name, _ in columns:
            assert read[name] == original.get(name), name
    # Parquet keeps text as it is: neutralizing is for spreadsheets (CSV) only.
    assert any(r["feature_region"] == '=HYPERLINK("http://evil.example")' for r in back)


def test_csv_round_trip_neutralizes_formulas(world: World, tmp_path: Path) -> None:
    _populate(world)
    rows, columns = export_rows(world.store)
    out = tmp_path / "outcomes.csv"

    write_export(world.store, out, "csv")

    with out.open(newline="") as handle:
        back = list(csv.DictReader(handle))
    assert len(back) == len(rows) and list(back[0]) == [name for name, _ in columns]
    acted = next(r for r in back if r["outcome_label"] == "retained")
    assert acted["feature_region"] == "'=HYPERLINK(\"http://evil.example\")"
    assert acted["feature_note"] == "'@SUM(A1)"
    assert acted["feature_plain"] == "'-minus"
    # Numbers stay numbers, negative ones included; booleans and times are plain text.
    assert float(acted["value_realized"]) == pytest.approx(-120.5)
    assert float(acted["feature_delta"]) == -3.5 and acted["feature_seats"] == "12"
    assert acted["feature_flag"] == "true" and acted["control"] == "false"
    assert acted["predicted_at"].startswith("2026-06-01T09:00:00")
    waiting = next(r for r in back if r["kind"] == "failure")
    assert waiting["outcome_label"] == "" and waiting["value_realized"] == ""
    for row in back:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "@")), cell
            if cell.startswith("-"):
                float(cell)  # only numbers may start with a minus


def test_export_since_filters_by_prediction_time(world: World) -> None:
    _populate(world)
    world.predict("churn", "LATE", T0 + timedelta(days=100))
    rows, _ = export_rows(world.store, since=T0 + timedelta(days=90))
    assert [r["entity_id"] for r in rows] == ["LATE"]


def test_each_row_says_whether_it_is_the_outcome_a_report_counts(world: World) -> None:
    """(trial 31 #9: an export had a row per outcome and no way to tell which one the
    report counted, so its sums did not reconcile.) ``outcome_latest``: the
    prediction's latest outcome (the one a report counts), a row without an outcome
    None."""
    ids = _populate(world)
    rows, columns = export_rows(world.store)
    latest = {(r["prediction_id"], r["outcome_label"]): r["outcome_latest"] for r in rows}
    assert latest == {(ids["acted"], "retained"): False, (ids["acted"], "churned"): True,
                      (ids["held"], "churned"): True, (ids["waiting"], None): None}
    assert dict(columns)["outcome_latest"] == "bool"
