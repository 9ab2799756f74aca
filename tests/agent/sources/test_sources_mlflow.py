"""MLflow scoring-server bodies joined to the entity ids of their request."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from decisionops.agent.errors import InvalidInputError
from decisionops.agent.sources import INDEX_COLUMN, FieldMapping, parse_mlflow

WHEN = "2026-11-01T09:00:00Z"
SPLIT = {"dataframe_split": {"columns": ["customer_id", "region", "arr"],
                             "data": [["c1", "EU", 1200], ["c2", "US", 800]]}}
RECORDS = {"dataframe_records": [{"customer_id": "c1", "region": "EU", "arr": 1200},
                                 {"customer_id": "c2", "region": "US", "arr": 800}]}
INPUTS = {"inputs": {"customer_id": ["c1", "c2"], "region": ["EU", "US"], "arr": [1200, 800]}}
INSTANCES = {"instances": [{"customer_id": "c1", "region": "EU", "arr": 1200},
                           {"customer_id": "c2", "region": "US", "arr": 800}]}


@pytest.fixture
def mapping(churn) -> FieldMapping:
    return FieldMapping(defaults=churn.defaults, feature_columns=("region",),
                        value_at_stake="arr")


@pytest.mark.parametrize("request_body", [SPLIT, RECORDS, INPUTS, INSTANCES],
                         ids=["dataframe_split", "dataframe_records", "inputs", "instances"])
@pytest.mark.parametrize(("response", "kwargs"), [
    ({"predictions": [0.8, 0.1]}, {}),
    ([0.8, 0.1], {}),
    ({"predictions": [[0.2, 0.8], [0.9, 0.1]]}, {}),
    ({"predictions": [[0.8, 0.2], [0.1, 0.9]]}, {"positive_index": 0}),
    ({"predictions": [{"score": 0.8}, {"score": 0.1}]}, {}),
    ({"predictions": [{"label": 1, "probability": [0.2, 0.8]},
                      {"label": 0, "probability": [0.9, 0.1]}]}, {}),
    ({"predictions": [{"0": 0.2, "1": 0.8}, {"0": 0.9, "1": 0.1}]}, {"score_key": "1"}),
    ({"predictions": {"score": [0.8, 0.1], "label": [1, 0]}}, {}),
], ids=["numbers", "bare-list", "two-class", "positive-index-0", "score-key", "probability-key",
        "custom-key", "columns"])
def test_response_and_request_shapes(mapping, request_body, response, kwargs):
    batch = parse_mlflow(json.dumps(response).encode(), json.dumps(request_body),
                         mapping=mapping, entity_column="customer_id", observed_at=WHEN,
                         **kwargs)
    assert batch.ok and batch.rows_read == 2
    first, second = batch.predictions
    assert (first.entity_id, first.score, second.entity_id, second.score) == ("c1", 0.8, "c2", 0.1)
    assert first.features == {"region": "EU"} and first.value_at_stake == 1200
    assert first.observed_at == datetime(2026, 11, 1, 9, tzinfo=UTC)
    assert (first.kind, first.model) == ("churn", "churn-gbm")


def test_index_as_entity_and_numeric_ids(churn):
    request = {"dataframe_split": {"index": [101, 102], "columns": ["x"], "data": [[1], [2]]}}
    batch = parse_mlflow({"predictions": [0.3, 0.4]}, request, mapping=churn,
                         entity_column=INDEX_COLUMN, observed_at=WHEN)
    assert [p.entity_id for p in batch.predictions] == ["101", "102"]


def test_count_mismatch_names_both_counts(mapping):
    with pytest.raises(InvalidInputError, match="request has 2 rows but the response has 3") \
            as caught:
        parse_mlflow({"predictions": [0.1, 0.2, 0.3]}, SPLIT, mapping=mapping,
                     entity_column="customer_id")
    assert caught.value.details["request_rows"] == 2 and caught.value.details["predictions"] == 3


def test_bad_items_fail_their_rows(churn):
    request = {"dataframe_records": [{"id_": f"c{i}"} for i in range(6)]}
    response = {"predictions": [[0.1, 0.2, 0.7], [0.5, 0.5], "yes", {"label": 1}, float("nan"),
                                0.3]}
    batch = parse_mlflow(json.dumps(response), request, mapping=churn, entity_column="id_",
                         positive_index=2, observed_at=WHEN)
    assert [p.entity_id for p in batch.predictions] == ["c0", "c5"]
    assert [(e.row, e.field, e.source) for e in batch.errors] == [
        (2, "score", "predictions[1]"), (3, "score", "predictions[2]"),
        (4, "score", "predictions[3]"), (5, "score", "predictions[4]")]
    assert "positive_index 2 is out of range" in batch.errors[0].message
    assert "finite" in batch.errors[3].message


def test_missing_entity_value_fails_its_row(churn):
    request = {"dataframe_records": [{"customer_id": "c1"}, {"other": 1}]}
    batch = parse_mlflow([0.2, 0.3], request, mapping=churn, entity_column="customer_id",
                         observed_at=WHEN)
    [error] = batch.errors
    assert (error.row, error.field) == (2, "entity_id")
    assert error.source == "request.dataframe_records[1].customer_id"


@pytest.mark.parametrize(("response", "request_body", "field"), [
    ({"predictions": [0.1]}, {"dataframe_split": {"columns": ["a"], "data": [["x", 1]]}},
     "dataframe_split.data[0]"),
    ({"predictions": [0.1]}, {"inputs": [[1, 2]]}, "inputs"),
    ({"predictions": [0.1]}, {"something": []}, None),
    ({"outputs": [0.1]}, {"dataframe_records": [{"customer_id": "c"}]}, "predictions"),
    ({"predictions": [0.1]}, {"dataframe_records": [{"cust": "c"}]}, "entity_column"),
])
def test_malformed_bodies_are_refused(churn, response, request_body, field):
    with pytest.raises(InvalidInputError) as caught:
        parse_mlflow(response, request_body, mapping=churn, entity_column="customer_id")
    assert caught.value.field == field


def test_not_json_is_refused(churn):
    with pytest.raises(InvalidInputError, match="response: not valid JSON"):
        parse_mlflow(b"<html>502</html>", SPLIT, mapping=churn, entity_column="customer_id")


def test_redelivered_response_derives_the_same_ids(mapping):
    response = {"predictions": [0.8, 0.1]}
    first = parse_mlflow(response, SPLIT, mapping=mapping, entity_column="customer_id")
    again = parse_mlflow(json.dumps(response), json.dumps(SPLIT), mapping=mapping,
                         entity_column="customer_id")
    assert [p.id for p in first.predictions] == [p.id for p in again.predictions]
    rescored = parse_mlflow({"predictions": [0.7, 0.1]}, SPLIT, mapping=mapping,
                            entity_column="customer_id")
    assert rescored.predictions[0].id != first.predictions[0].id
    timed = [parse_mlflow(response, SPLIT, mapping=mapping, entity_column="customer_id",
                          observed_at=WHEN).predictions[0].id for _ in range(2)]
    assert timed[0] == timed[1] != first.predictions[0].id


def test_observed_at_from_a_request_column(churn):
    request = {"dataframe_records": [{"customer_id": "c1", "observed_at": 1761987600}]}
    [p] = parse_mlflow([0.5], request, mapping=churn, entity_column="customer_id").predictions
    assert p.observed_at == datetime(2025, 11, 1, 9, tzinfo=UTC)
    with pytest.raises(InvalidInputError, match="time zone") as caught:
        parse_mlflow([0.5], request, mapping=churn, entity_column="customer_id",
                     observed_at="2026-11-01T09:00:00")
    assert caught.value.field == "observed_at"


def test_request_id_column_is_read_only_when_mapped(churn):
    request = {"dataframe_records": [{"id": "cust-1", "pid": "p-1"}]}
    [derived] = parse_mlflow([0.5], request, mapping=churn, entity_column="id",
                             observed_at=WHEN).predictions
    assert derived.id.startswith("prd_") and derived.entity_id == "cust-1"
    mapped = FieldMapping(id="pid", defaults=churn.defaults)
    [explicit] = parse_mlflow([0.5], request, mapping=mapped, entity_column="id",
                              observed_at=WHEN).predictions
    assert explicit.id == "p-1"
