"""A prediction sent again under a stored id is the same content when it says what the
stored one says (``same_content``), leaving out what the intake filled in: the clock's
time for a model-server body that carries none, which every delivery gets anew. A
score, a feature or a time the sender gave that differs is other content, whatever the
source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from decisionops.agent.sources import (
    FieldMapping,
    PredictionRow,
    PreparedChunk,
    SourceBatch,
    parse_kserve_v2,
    parse_mlflow,
    parse_scored,
    prepare,
    read_file,
    same_content,
)

CHURN = FieldMapping(value_at_stake="arr", defaults={
    "kind": "churn", "model": "churn-sk", "entity_type": "account"})
# the README's MLflow example: what the model server got and what it answered
REQUEST = {"dataframe_split": {"columns": ["customer_id", "tenure", "arr"],
                               "data": [["ACC-10004", 3, 40000], ["ACC-10006", 30, 900]]}}
RESPONSE = {"predictions": [[0.09, 0.91], [0.8, 0.2]]}
EARLIER = "2026-12-01T08:00:00Z"


def _rows(batch: SourceBatch) -> list[PredictionRow]:
    assert batch.ok, batch.errors
    return PreparedChunk.of(batch, {}).rows


def _stored_at(row: PredictionRow, when: str) -> str:
    """``row`` as the store would hold it had it been received at ``when``."""
    return json.dumps(json.loads(row.payload) | {"observed_at": when})


def test_an_mlflow_response_sent_again_without_a_time_is_the_same_content() -> None:
    first = _rows(parse_mlflow(RESPONSE, REQUEST, mapping=CHURN, entity_column="customer_id"))
    again = _rows(parse_mlflow(RESPONSE, REQUEST, mapping=CHURN, entity_column="customer_id"))
    assert [r.id for r in again] == [r.id for r in first]  # the body's digest, not the time
    assert {r.filled for r in again} == {frozenset({"observed_at"})}
    for stored, sent in zip(first, again, strict=True):
        # stored at another moment: the clock's time differs, nothing the server said does
        text = _stored_at(stored, EARLIER)
        assert text != sent.payload
        assert same_content(text, sent)
        assert same_content(json.loads(text), sent)  # as PostgreSQL reads JSON back


def _v2(scores: list[float]) -> dict[str, Any]:
    return {"model_name": "churn-gbm", "model_version": "7", "id": "r-1",
            "outputs": [{"name": "p", "shape": [2], "datatype": "FP32", "data": scores}]}


def test_a_response_id_sent_again_with_another_score_is_other_content() -> None:
    """KServe V2: the response id names the predictions (the clock's time is not in
    their ids), so a second response under that id with another score is a change."""
    mapping = FieldMapping(defaults={"kind": "churn", "entity_type": "account"})
    ids = ["ACC-10004", "ACC-10006"]
    first = _rows(parse_kserve_v2(_v2([0.9, 0.3]), mapping=mapping, entity_ids=ids))
    again = _rows(parse_kserve_v2(_v2([0.9, 0.5]), mapping=mapping, entity_ids=ids))
    assert [r.id for r in again] == [r.id for r in first]
    assert {r.filled for r in again} == {frozenset({"observed_at"})}
    stored = [_stored_at(r, EARLIER) for r in first]
    assert [same_content(s, r) for s, r in zip(stored, again, strict=True)] == [True, False]


def test_a_response_joined_to_a_table_fills_the_time_too(tmp_path: Path) -> None:
    """KServe V1 (or MLflow) joined to the CSV it scored, as ``ingest --inputs`` does."""
    table = tmp_path / "customers.csv"
    table.write_text("customer_id,tenure,arr\nACC-10004,3,40000\nACC-10006,30,900\n")
    first = _rows(parse_scored(RESPONSE, table, mapping=CHURN, entity_column="customer_id"))
    again = _rows(parse_scored(RESPONSE, table, mapping=CHURN, entity_column="customer_id"))
    assert {r.filled for r in again} == {frozenset({"observed_at"})}
    assert all(same_content(_stored_at(s, EARLIER), r)
               for s, r in zip(first, again, strict=True))
    given = _rows(parse_scored(RESPONSE, table, mapping=CHURN, entity_column="customer_id",
                               observed_at=EARLIER))
    assert {r.filled for r in given} == {frozenset()}  # the caller said when


def test_a_time_the_sender_gave_is_content(tmp_path: Path) -> None:
    """A file's rows carry their own time (CSV and JSONL refuse a row without one):
    nothing is filled in, and a re-sent row observed at another time is a change."""
    path = tmp_path / "p.csv"
    path.write_text("id,model,kind,entity_type,entity_id,score,observed_at\n"
                    f"p-1,churn-gbm,churn,account,ACC-1,0.2,{EARLIER}\n")
    (row,) = _rows(read_file(path))
    assert row.filled == frozenset()
    assert same_content(row.payload, row)
    assert not same_content(_stored_at(row, "2026-12-02T08:00:00Z"), row)
    assert not same_content(json.loads(row.payload) | {"score": 0.3}, row)


def test_what_was_filled_in_survives_kind_aliases() -> None:
    """A row made before the aliases were applied is made again from its payload."""
    batch = parse_mlflow({"predictions": [0.91]}, {"dataframe_split": {
        "columns": ["customer_id"], "data": [["ACC-1"]]}}, mapping=FieldMapping(defaults={
            "kind": "attrition", "model": "m", "entity_type": "account"}),
        entity_column="customer_id")
    (made,) = PreparedChunk.of(batch, {}).rows
    (aliased,) = prepare([made], {"attrition": "churn"})
    assert (aliased.kind, aliased.filled) == ("churn", frozenset({"observed_at"}))
