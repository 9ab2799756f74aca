"""Open Inference Protocol (KServe V2) infer bodies joined to entity ids."""

from __future__ import annotations

import copy
import json

import pytest

from decisionops.agent.errors import InvalidInputError
from decisionops.agent.sources import FieldMapping, parse_kserve_v2

WHEN = "2026-11-01T09:00:00Z"
REQUEST = {"inputs": [
    {"name": "entity_id", "shape": [3], "datatype": "BYTES", "data": ["a1", "a2", "a3"]},
    {"name": "region", "shape": [3, 1], "datatype": "BYTES", "data": ["EU", "US", "EU"]},
    {"name": "x", "shape": [3, 2], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]},
]}
FLAT = {"model_name": "churn-xgb", "model_version": "7", "id": "req-1",
        "outputs": [{"name": "score", "shape": [3], "datatype": "FP32",
                     "data": [0.9, 0.2, 0.5]}]}
TWO_CLASS = {"model_name": "churn-xgb", "id": "req-1",
             "outputs": [{"name": "label", "shape": [3], "datatype": "INT64", "data": [1, 0, 0]},
                         {"name": "probabilities", "shape": [3, 2], "datatype": "FP64",
                          "data": [0.1, 0.9, 0.8, 0.2, 0.5, 0.5]}]}


@pytest.fixture
def mapping() -> FieldMapping:
    return FieldMapping(defaults={"kind": "churn", "entity_type": "account"},
                        feature_columns=("region",))


def test_flat_scores_and_bytes_entity_input(mapping):
    batch = parse_kserve_v2(json.dumps(FLAT).encode(), json.dumps(REQUEST), mapping=mapping,
                            observed_at=WHEN)
    assert batch.ok and batch.rows_read == 3
    assert [(p.entity_id, p.score) for p in batch.predictions] == [
        ("a1", 0.9), ("a2", 0.2), ("a3", 0.5)]
    first = batch.predictions[0]
    assert (first.model, first.model_version) == ("churn-xgb", "7")
    assert first.features == {"region": "EU"}


def test_two_class_output_by_name(mapping):
    batch = parse_kserve_v2(TWO_CLASS, REQUEST, mapping=mapping, output_name="probabilities",
                            observed_at=WHEN)
    assert [p.score for p in batch.predictions] == [0.9, 0.2, 0.5]
    assert batch.predictions[0].model_version == "unversioned"
    nested = copy.deepcopy(TWO_CLASS)
    nested["outputs"][1]["data"] = [[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]]
    again = parse_kserve_v2(nested, REQUEST, mapping=mapping, output_name="probabilities",
                            positive_index=0, observed_at=WHEN)
    assert [p.score for p in again.predictions] == [0.1, 0.8, 0.5]


def test_mapping_defaults_override_the_response_model(mapping):
    pinned = mapping.with_defaults(model="churn", model_version="2026.11")
    [p, *_] = parse_kserve_v2(FLAT, REQUEST, mapping=pinned, observed_at=WHEN).predictions
    assert (p.model, p.model_version) == ("churn", "2026.11")


def test_explicit_entity_ids(mapping):
    batch = parse_kserve_v2(FLAT, mapping=mapping, entity_ids=["x", "y", "z"], observed_at=WHEN)
    assert [p.entity_id for p in batch.predictions] == ["x", "y", "z"]
    assert batch.predictions[0].features == {}


def test_ids_follow_the_response_id(mapping):
    def ids(response):
        return [p.id for p in parse_kserve_v2(response, REQUEST, mapping=mapping).predictions]

    first = ids(FLAT)
    assert first == ids(json.dumps(FLAT))  # re-delivery without observed_at: same ids
    assert first != ids({**FLAT, "id": "req-2"})
    assert len(set(first)) == 3


@pytest.mark.parametrize(("change", "field"), [
    (lambda r: r["outputs"][0].update(shape=[3, 2, 1]), "outputs[0].shape"),
    (lambda r: r["outputs"][0].update(shape=["3"]), "outputs[0].shape"),
    (lambda r: r["outputs"][0].update(shape=[4]), "outputs[0].data"),
    (lambda r: r["outputs"][0].update(shape=[1, 3]), "outputs[0].shape"),
    (lambda r: r["outputs"][0].update(datatype="BYTES"), "outputs[0].datatype"),
    (lambda r: r["outputs"][0].update(data="0.9"), "outputs[0].data"),
    (lambda r: r.update(outputs=[]), "outputs"),
    (lambda r: r.pop("outputs"), "outputs"),
])
def test_bad_response_names_the_json_path(mapping, change, field):
    response = copy.deepcopy(FLAT)
    change(response)
    with pytest.raises(InvalidInputError) as caught:
        parse_kserve_v2(response, REQUEST, mapping=mapping, observed_at=WHEN)
    assert caught.value.field == field
    assert caught.value.location == "response"


def test_positive_index_out_of_range(mapping):
    with pytest.raises(InvalidInputError, match="positive_index 2") as caught:
        parse_kserve_v2(TWO_CLASS, REQUEST, mapping=mapping, output_name="probabilities",
                        positive_index=2)
    assert caught.value.field == "outputs[1].shape"


@pytest.mark.parametrize(("change", "field"), [
    (lambda r: r["inputs"][0].update(datatype="INT64"), "inputs[0].datatype"),
    (lambda r: r["inputs"][0].update(shape=[3, 2]), "inputs[0].shape"),
    (lambda r: r["inputs"][0].update(name="customer"), "inputs"),
    (lambda r: r.update(inputs={}), "inputs"),
])
def test_bad_request_names_the_json_path(mapping, change, field):
    request = copy.deepcopy(REQUEST)
    change(request)
    with pytest.raises(InvalidInputError) as caught:
        parse_kserve_v2(FLAT, request, mapping=mapping, observed_at=WHEN)
    assert caught.value.field == field
    assert caught.value.location == "request"


def test_entity_count_mismatch_and_no_entities(mapping):
    with pytest.raises(InvalidInputError, match="3 rows but there are 2 entity ids"):
        parse_kserve_v2(FLAT, mapping=mapping, entity_ids=["a", "b"])
    with pytest.raises(InvalidInputError) as caught:
        parse_kserve_v2(FLAT, mapping=mapping)
    assert caught.value.field == "entity_ids"


def test_bad_values_fail_their_rows(mapping):
    response = copy.deepcopy(FLAT)
    response["outputs"][0]["data"] = [0.9, 1.7, "high"]
    request = copy.deepcopy(REQUEST)
    request["inputs"][0]["data"] = ["a1", "a 2", "a3"]
    batch = parse_kserve_v2(response, request, mapping=mapping, observed_at=WHEN)
    assert [p.entity_id for p in batch.predictions] == ["a1"]
    assert sorted((e.row, e.field, e.source) for e in batch.errors) == [
        (2, "entity_id", "request.inputs[0].data[1]"), (2, "score", "outputs[0].data[1]"),
        (3, "score", "outputs[0].data[2]")]
