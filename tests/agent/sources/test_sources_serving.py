"""Model-server responses as users have them (scores only), joined by row order to the
input that was scored: a table file or the request body, MLflow and KServe V1/V2."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from decisionops.agent.errors import InvalidInputError
from decisionops.agent.sources import INDEX_COLUMN, FieldMapping
from decisionops.agent.sources._serving import detect, parse_scored

WHEN = "2026-11-01T09:00:00Z"
IDS = ["c1", "c2", "c3"]
ARR = [1200, 800, 50]
FEATURES = [[0.1, 3], [0.5, 1], [0.9, 0]]

ROWS = list(zip(IDS, ARR, FEATURES, strict=True))
MLFLOW_SPLIT = {"dataframe_split": {"columns": ["customer_id", "arr", "tenure"],
                                    "data": [[i, a, f[1]] for i, a, f in ROWS]}}
MLFLOW_RECORDS = {"dataframe_records": [{"customer_id": i, "arr": a} for i, a, _ in ROWS]}
MLFLOW_INPUTS = {"inputs": {"customer_id": IDS, "arr": ARR}}
MLFLOW_INSTANCES = {"instances": [{"customer_id": i, "arr": a} for i, a, _ in ROWS]}
V1_UNNAMED = {"instances": FEATURES}
V2_REQUEST = {"inputs": [{"name": "input-0", "shape": [3, 2], "datatype": "FP32",
                          "data": [x for row in FEATURES for x in row]},
                         {"name": "customer_id", "shape": [3], "datatype": "BYTES", "data": IDS},
                         {"name": "arr", "shape": [3, 1], "datatype": "INT64", "data": ARR}]}

RESPONSES = {
    "mlflow-numbers": {"predictions": [0.8, 0.1, 0.6]},
    "mlflow-proba": {"predictions": [[0.2, 0.8], [0.9, 0.1], [0.4, 0.6]]},
    "mlflow-class-keys": {"predictions": [{"0": 0.2, "1": 0.8}, {"0": 0.9, "1": 0.1},
                                          {"0": 0.4, "1": 0.6}]},
    "mlflow-bool-keys": {"predictions": [{"false": 0.2, "true": 0.8},
                                         {"false": 0.9, "true": 0.1},
                                         {"false": 0.4, "true": 0.6}]},
    "v1-bare-list": [0.8, 0.1, 0.6],
    "v2-n": {"model_name": "sk", "outputs": [{"name": "output-0", "shape": [3],
                                              "datatype": "FP32", "data": [0.8, 0.1, 0.6]}]},
    "v2-n2": {"model_name": "sk", "id": "r-1", "outputs": [
        {"name": "predict", "shape": [3], "datatype": "INT64", "data": [1, 0, 1]},
        {"name": "predict_proba", "shape": [3, 2], "datatype": "FP64",
         "data": [0.2, 0.8, 0.9, 0.1, 0.4, 0.6]}]},
    "v2-nested": {"outputs": [{"name": "p", "shape": [3, 2], "datatype": "FP32",
                               "data": [[0.2, 0.8], [0.9, 0.1], [0.4, 0.6]]}]},
}


@pytest.fixture
def mapping(churn) -> FieldMapping:
    return churn.model_copy(update={"value_at_stake": "arr"})


@pytest.mark.parametrize("name", list(RESPONSES))
@pytest.mark.parametrize("inputs", [MLFLOW_SPLIT, MLFLOW_RECORDS, MLFLOW_INPUTS,
                                    MLFLOW_INSTANCES, V2_REQUEST],
                         ids=["split", "records", "inputs", "instances", "v2-request"])
def test_every_response_joins_every_request_shape(mapping, name, inputs):
    batch = parse_scored(json.dumps(RESPONSES[name]), json.dumps(inputs), mapping=mapping,
                         entity_column="customer_id", observed_at=WHEN)
    assert batch.ok, batch.errors
    got = [(p.entity_id, p.score, p.value_at_stake) for p in batch.predictions]
    assert got == [("c1", 0.8, 1200), ("c2", 0.1, 800), ("c3", 0.6, 50)]
    assert batch.predictions[0].features["arr"] == 1200  # joined columns become features
    assert "customer_id" not in batch.predictions[0].features


@pytest.mark.parametrize("suffix", ["csv", "tsv", "jsonl", "parquet", "json"])
def test_inputs_from_a_table_file(mapping, tmp_path: Path, suffix):
    path = tmp_path / f"customers.{suffix}"
    rows = [{"customer_id": i, "arr": a, "segment": s}
            for i, a, s in zip(IDS, ARR, ["smb", "ent", "smb"], strict=True)]
    if suffix in ("csv", "tsv"):
        sep = "," if suffix == "csv" else "\t"
        path.write_text(sep.join(rows[0]) + "\n"
                        + "".join(sep.join(str(v) for v in r.values()) + "\n" for r in rows))
    elif suffix == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif suffix == "json":
        path.write_text(json.dumps({"dataframe_records": rows}, indent=2))
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    batch = parse_scored(RESPONSES["v2-n2"], path, mapping=mapping, entity_column="customer_id",
                         observed_at=WHEN)
    assert [(p.entity_id, p.value_at_stake) for p in batch.predictions] == list(zip(IDS, ARR, strict=True))
    assert batch.predictions[1].features == {"arr": 800, "segment": "ent"}
    assert batch.predictions[0].model == "churn-gbm"  # the mapping's default wins over the body


def test_a_quoted_line_break_in_a_csv_inputs_cell_is_kept_and_refused(mapping, tmp_path: Path):
    """(trial 29: "ACC\n10003" and "ACC-1000\r\n5" in a CSV --inputs file were stored
    as ACC10003 and ACC-10005, a real account, where every other path refuses an id
    with a control character.)"""
    path = tmp_path / "customers.csv"
    path.write_bytes(b'customer_id,arr\n"c\n1",1200\n"c\r\n2",800\nc3,50\n')
    batch = parse_scored(RESPONSES["v2-n2"], path, mapping=mapping, entity_column="customer_id",
                         observed_at=WHEN)
    assert [p.entity_id for p in batch.predictions] == ["c3"]
    assert len(batch.errors) == 2 and all("control" in str(e) for e in batch.errors), \
        batch.errors


def test_unnamed_instances_join_by_index_or_by_given_ids(churn):
    batch = parse_scored(RESPONSES["mlflow-proba"], V1_UNNAMED, mapping=churn,
                         entity_column=INDEX_COLUMN, observed_at=WHEN)
    assert [p.entity_id for p in batch.predictions] == ["0", "1", "2"]
    assert batch.predictions[0].features == {"0": 0.1, "1": 3}
    given = parse_scored(RESPONSES["mlflow-proba"], V1_UNNAMED, mapping=churn,
                         entity_ids=["a", "b", "c"], observed_at=WHEN)
    assert [p.entity_id for p in given.predictions] == ["a", "b", "c"]
    split = {"dataframe_split": {"index": ["x", "y", "z"], "columns": ["f"], "data": [[1], [2],
                                                                                      [3]]}}
    named = parse_scored(RESPONSES["mlflow-numbers"], split, mapping=churn,
                         entity_column=INDEX_COLUMN, observed_at=WHEN)
    assert [p.entity_id for p in named.predictions] == ["x", "y", "z"]


@pytest.mark.parametrize(("name", "positive", "expected"), [
    ("mlflow-proba", 0, [0.2, 0.9, 0.4]),
    ("mlflow-proba", "0", [0.2, 0.9, 0.4]),
    ("mlflow-class-keys", "0", [0.2, 0.9, 0.4]),
    ("mlflow-bool-keys", "false", [0.2, 0.9, 0.4]),
    ("v2-n2", 0, [0.2, 0.9, 0.4]),
    ("v2-n2", 1, [0.8, 0.1, 0.6]),
])
def test_the_positive_class_by_index_or_name(churn, name, positive, expected):
    batch = parse_scored(RESPONSES[name], entity_ids=IDS, mapping=churn, positive=positive,
                         observed_at=WHEN)
    assert [p.score for p in batch.predictions] == expected


def test_v2_class_names_in_parameters(churn):
    response = {"outputs": [{"name": "p", "shape": [1, 2], "datatype": "FP32",
                             "parameters": {"classes": ["stay", "leave"]}, "data": [0.3, 0.7]}]}
    [p] = parse_scored(response, entity_ids=["c1"], mapping=churn, positive="stay",
                       observed_at=WHEN).predictions
    assert p.score == 0.3


@pytest.mark.parametrize(("datatype", "sent", "read"), [
    # a float32 0.65 written out as a double (Triton does): 0.65, not under a 0.65
    # threshold (trial 25: "score 0.65 < 0.65")
    ("FP32", 0.6499999761581421, 0.65), ("FP16", 0.64990234375, 0.65),
    ("FP64", 0.6499999761581421, 0.6499999761581421), ("FP32", 1, 1),
])
def test_v2_single_and_half_precision_scores_read_at_their_decimal_meaning(
        churn, datatype, sent, read):
    response = {"outputs": [{"name": "p", "shape": [1], "datatype": datatype,
                             "data": [sent]}]}
    [p] = parse_scored(response, entity_ids=["c1"], mapping=churn, observed_at=WHEN).predictions
    assert p.score == read


def test_a_bad_positive_class_is_one_error_not_one_per_row(churn):
    with pytest.raises(InvalidInputError, match="not an index") as caught:
        parse_scored(RESPONSES["mlflow-proba"], entity_ids=IDS, mapping=churn, positive=5)
    assert caught.value.field == "positive_class"
    with pytest.raises(InvalidInputError, match="not an index"):
        parse_scored(RESPONSES["v2-n2"], entity_ids=IDS, mapping=churn, positive="maybe")


@pytest.mark.parametrize(("inputs", "entity_ids", "field", "message"), [
    ({"dataframe_records": [{"customer_id": "c1"}]}, None, "inputs",
     "1 rows but the response has 3"),
    (None, ["a", "b"], "entity_ids", "2 ids but the response has 3"),
    (MLFLOW_RECORDS, None, "entity_column", "no column 'cust'"),
    (None, None, "inputs", "scores only"),
])
def test_whole_input_problems_refuse_everything(churn, inputs, entity_ids, field, message):
    with pytest.raises(InvalidInputError, match=message) as caught:
        parse_scored(RESPONSES["mlflow-numbers"], inputs, entity_ids=entity_ids, mapping=churn,
                     entity_column="cust" if inputs is MLFLOW_RECORDS else "customer_id")
    assert caught.value.field == field


def test_a_field_nothing_supplies_is_named_once():
    with pytest.raises(InvalidInputError, match="--kind") as caught:
        parse_scored(RESPONSES["mlflow-numbers"], MLFLOW_RECORDS, entity_column="customer_id",
                     mapping=FieldMapping(defaults={"model": "m", "entity_type": "account"}))
    assert caught.value.field == "kind"
    with pytest.raises(InvalidInputError, match="no column 'acv'") as caught:
        parse_scored(RESPONSES["mlflow-numbers"], MLFLOW_RECORDS, entity_column="customer_id",
                     mapping=FieldMapping(value_at_stake="acv", defaults={
                         "model": "m", "kind": "churn", "entity_type": "account"}))
    assert caught.value.field == "value_at_stake"


def test_a_request_given_as_the_response_is_named(churn):
    with pytest.raises(InvalidInputError, match="a request body, not a response"):
        parse_scored(MLFLOW_SPLIT, MLFLOW_SPLIT, mapping=churn, entity_column="customer_id")


@pytest.mark.parametrize(("body", "kind"), [
    (RESPONSES["mlflow-numbers"], "response"), (RESPONSES["v2-n2"], "kserve_v2_response"),
    (MLFLOW_SPLIT, "request"), (MLFLOW_RECORDS, "request"), (MLFLOW_INPUTS, "request"),
    (V1_UNNAMED, "request"), (V2_REQUEST, "kserve_v2_request"),
    ({"id": "p1", "score": 0.3}, None), ([0.1, [0.2, 0.8]], "response"),
    ([{"id": "p1"}], None), ([], None), ([True], None),
])
def test_detect_by_shape(body, kind):
    assert detect(body) == kind


def test_rescored_rows_get_new_ids_and_redelivery_the_same(churn):
    first = parse_scored(RESPONSES["mlflow-numbers"], MLFLOW_RECORDS, mapping=churn,
                         entity_column="customer_id")
    again = parse_scored(json.dumps(RESPONSES["mlflow-numbers"]), MLFLOW_RECORDS, mapping=churn,
                         entity_column="customer_id")
    assert [p.id for p in first.predictions] == [p.id for p in again.predictions]
    other = parse_scored({"predictions": [0.7, 0.1, 0.6]}, MLFLOW_RECORDS, mapping=churn,
                         entity_column="customer_id")
    assert other.predictions[0].id != first.predictions[0].id


def test_items_without_a_score_are_one_error_naming_the_keys(churn):
    response = {"predictions": [{"label": "stay"}, {"label": "leave"}]}
    with pytest.raises(InvalidInputError, match="its keys: label") as caught:
        parse_scored(response, entity_ids=["a", "b"], mapping=churn)
    assert caught.value.field == "score"


@pytest.mark.parametrize("item", [[], {"probabilities": []}, {"1": []}])
def test_an_empty_probability_list_is_a_row_problem_not_a_crash(churn, item):
    """Found by the API fuzz test: ``[]`` in place of a row's probabilities raised
    IndexError (a 500) where it must be the row's field error."""
    with pytest.raises(InvalidInputError, match="empty list") as caught:
        parse_scored({"predictions": [item, item]}, entity_ids=["a", "b"], mapping=churn)
    assert caught.value.field == "score"


def test_two_rows_of_one_entity_say_why_their_ids_are_the_same(mapping):
    # Rows without an id get one derived from model, version, kind, entity and time:
    # two rows scored for one customer at one time are one prediction told twice. The
    # refusal says so, not just "duplicate id" of an id nobody gave.
    inputs = {"dataframe_records": [{"customer_id": "c1", "arr": 1200},
                                    {"customer_id": "c1", "arr": 900}]}
    batch = parse_scored(json.dumps({"predictions": [0.8, 0.7]}), json.dumps(inputs),
                         mapping=mapping, entity_column="customer_id", observed_at=WHEN)
    (error,) = batch.errors
    assert error.row == 2 and error.field == "id"
    assert "the first one (row 1) was kept" in error.message
    assert "derived from model, model_version, kind, entity_id and observed_at" in error.message
    assert "c1" in error.message
