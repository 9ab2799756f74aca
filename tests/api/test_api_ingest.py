"""Ingest over the API: native JSON, MLflow and KServe V2 bodies, outcomes; bad input is
a 4xx naming the field that changes nothing; bodies over the limit get 413 before
anything parses them."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from decisionops.agent.models import utcnow
from decisionops.agent.store import _tables as t
from tests.api.conftest import Service, churn_record


def _count(svc: Service) -> int:
    with svc.rt.store.reading() as conn:
        return conn.scalar(select(func.count()).select_from(t.predictions))


DEPRECATED = {"new": "ingested_ids", "duplicates": "already_stored_ids",
              "unknown_kinds": "kinds_without_playbook"}
"""The old names of the response's fields, kept as deprecated aliases."""


def test_native_batch_and_redelivery(svc: Service) -> None:
    body = {"predictions": [churn_record("p-1"), churn_record("p-2", account="ACC-10006")]}
    first = svc.post("/v1/predictions", "feeder", body)
    assert first.status_code == 200
    shown = {k: v for k, v in first.json().items() if k not in DEPRECATED}
    assert shown == {"rows_read": 2, "ingested": 2, "already_stored": 0,
                     "already_stored_changed": 0, "already_stored_changed_ids": [],
                     "rejected": 0, "empty_rows": 0,
                     "needs": {"unknown_kind": 0, "no_value_at_stake": 0, "no_entity": 0},
                     "kinds_without_playbook": [], "errors": [], "errors_omitted": 0,
                     "ingested_ids": ["p-1", "p-2"], "already_stored_ids": []}
    again = svc.post("/v1/predictions", "feeder", body).json()
    assert (again["ingested"], again["already_stored"]) == (0, 2)
    assert again["already_stored_changed"] == 0  # the same records, re-delivered
    rescored = {"predictions": [churn_record("p-1") | {"score": 0.42}]}
    changed = svc.post("/v1/predictions", "feeder", rescored).json()
    assert changed["already_stored_changed_ids"] == ["p-1"]
    assert again["already_stored_ids"] == ["p-1", "p-2"] and again["ingested_ids"] == []
    ingested = [e for e in svc.rt.store.ledger.entries() if e.event == "predictions.ingested"]
    assert {e.actor for e in ingested} == {"feeder"}
    assert [e.body["rows"] for e in ingested] == [2]  # one entry for the batch


def test_the_api_and_the_cli_report_the_same_counts_under_the_same_names(
        svc: Service, tmp_path) -> None:
    """One owner of the intake summary: the same records over HTTP and through
    ``decisionops ingest --json`` give the same fields with the same values."""
    from decisionops.agent.sources import IngestSummary
    from tests.cli.conftest import Cli

    records = [churn_record("same-1"), churn_record("same-2", account="ACC-10006"),
               churn_record("same-3") | {"kind": "fraud"}]
    (tmp_path / "cli").mkdir()
    cli = Cli(tmp_path / "cli")  # its own store: the same input, twice, on each channel
    path = cli.cwd / "same.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    shared = list(IngestSummary.model_fields)
    for _ in ("first", "again"):
        over_http = svc.post("/v1/predictions", "feeder", {"predictions": records}).json()
        on_cli = cli.json("ingest", str(path))
        assert {k: over_http[k] for k in shared} == {k: on_cli[k] for k in shared}
    assert (on_cli["already_stored"], on_cli["kinds_without_playbook"]) == (3, ["fraud"])


def test_the_old_field_names_stay_as_deprecated_aliases(svc: Service) -> None:
    body = {"predictions": [churn_record("old-1"), churn_record("old-2") | {"kind": "fraud"}]}
    svc.post("/v1/predictions", "feeder", {"predictions": body["predictions"][:1]})
    out = svc.post("/v1/predictions", "feeder", body).json()
    assert (out["new"], out["duplicates"], out["unknown_kinds"]) == (
        ["old-2"], ["old-1"], ["fraud"])
    assert all(out[old] == out[new] for old, new in DEPRECATED.items())
    schema = svc.client.get("/openapi.json").json()["components"]["schemas"]["IngestOut"]
    assert {k for k, v in schema["properties"].items() if v.get("deprecated")} \
        == set(DEPRECATED)


def test_foreign_field_names_through_a_mapping(svc: Service) -> None:
    record = {"pred_id": "m-1", "acct": "ACC-10004", "p": 0.8, "at": "2026-11-20T08:00:00Z"}
    response = svc.post("/v1/predictions", "olga", {"predictions": [record], "mapping": {
        "id": "pred_id", "entity_id": "acct", "score": "p", "observed_at": "at",
        "defaults": {"model": "churn-gbm", "kind": "churn", "entity_type": "account"}}})
    assert response.status_code == 200, response.text
    assert svc.rt.store.predictions.get("m-1").entity_id == "ACC-10004"


def test_a_bad_row_refuses_the_whole_body_and_names_it(svc: Service) -> None:
    good, bad = churn_record("ok-1"), churn_record("bad-1") | {"score": 1.7}
    response = svc.post("/v1/predictions", "feeder", {"predictions": [good, bad]})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "predictions.1.score"
    assert error["problems"][0]["row"] == 2
    assert "1.7" not in str(error["problems"])  # the value sent is not echoed back
    assert _count(svc) == 0


def test_non_finite_and_deeply_nested_json_are_refused(svc: Service) -> None:
    headers = svc.auth("feeder") | {"Content-Type": "application/json"}
    nan = b'{"predictions": [{"id": "n", "score": NaN}]}'
    assert svc.client.post("/v1/predictions", content=nan, headers=headers).status_code == 422
    deep = b'{"predictions": [' + b"[" * 5000 + b"]" * 5000 + b"]}"
    response = svc.client.post("/v1/predictions", content=deep, headers=headers)
    assert response.status_code == 422
    assert "nested" in response.json()["error"]["message"]
    assert _count(svc) == 0


def test_oversized_bodies_get_413_before_parsing(svc: Service) -> None:
    headers = svc.auth("olga") | {"Content-Type": "application/json",
                                  "Content-Length": str(50 * 1024 * 1024)}
    # Only the header is sent: the limit is checked before the body is read.
    response = svc.client.post("/v1/chat", content=b"{}", headers=headers)
    assert response.status_code == 413
    big = b'{"message": "' + b"x" * (300 * 1024) + b'"}'
    chunked = svc.client.post("/v1/chat", content=iter([big[:1000], big[1000:]]),
                              headers=svc.auth("olga") | {"Content-Type": "application/json"})
    assert chunked.status_code == 413
    assert chunked.json()["error"]["code"] == "too_large"


def test_mlflow_response_with_its_request(svc: Service) -> None:
    body = {"response": {"predictions": [0.91, 0.2]},
            "request": {"dataframe_split": {"columns": ["account_id", "arr"],
                                            "data": [["ACC-10004", 40000], ["ACC-10006", 900]]}},
            "entity_column": "account_id", "observed_at": "2026-11-20T08:00:00Z",
            "mapping": {"value_at_stake": "arr", "defaults": {
                "model": "churn-gbm", "kind": "churn", "entity_type": "account"}}}
    response = svc.post("/v1/predictions/mlflow", "feeder", body)
    assert response.status_code == 200, response.text
    assert len(response.json()["ingested_ids"]) == 2
    mismatch = svc.post("/v1/predictions/mlflow", "feeder",
                        body | {"response": {"predictions": [0.9]}})
    assert mismatch.status_code == 422 and mismatch.json()["error"]["field"] == "inputs"
    assert "2 rows but the response has 1 scores" in mismatch.json()["error"]["message"]


def test_a_body_over_the_row_limit_says_the_limit_a_request(svc: Service) -> None:
    # The API's row limit is per request, not a setting: the refusal says so (the CLI's
    # says which option raises its own).
    rows = 10_001
    body = {"response": {"predictions": [0.9] * rows},
            "request": {"dataframe_split": {"columns": ["account_id"],
                                            "data": [[f"ACC-{i}"] for i in range(rows)]}},
            "entity_column": "account_id",
            "mapping": {"defaults": {"model": "churn-gbm", "kind": "churn",
                                     "entity_type": "account"}}}
    response = svc.post("/v1/predictions/mlflow", "feeder", body)
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert "10,000 rows a request" in message and "max_rows" not in message, message
    assert _count(svc) == 0


def test_kserve_v2_response(svc: Service) -> None:
    body = {"response": {"model_name": "churn-gbm", "model_version": "7", "id": "r-1",
                         "outputs": [{"name": "p", "shape": [2], "datatype": "FP32",
                                      "data": [0.9, 0.3]}]},
            "request": {"inputs": [{"name": "entity_id", "shape": [2], "datatype": "BYTES",
                                    "data": ["ACC-10004", "ACC-10006"]}]},
            "mapping": {"defaults": {"kind": "churn", "entity_type": "account"}}}
    response = svc.post("/v1/predictions/kserve", "feeder", body)
    assert response.status_code == 200, response.text
    assert len(response.json()["ingested_ids"]) == 2
    bad = svc.post("/v1/predictions/kserve", "feeder",
                   body | {"response": {**body["response"], "outputs": [
                       {"name": "p", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]}]}})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "outputs[0].datatype"


SCORED = [{"customer_id": "ACC-10004", "arr": 40000, "tenure": 3},
          {"customer_id": "ACC-10006", "arr": 900, "tenure": 30}]
SCORED_REQUEST = {"dataframe_split": {"columns": ["arr", "tenure"],
                                      "data": [[40000, 3], [900, 30]]}}
CHURN = {"defaults": {"model": "churn-sk", "kind": "churn", "entity_type": "account"}}
RESPONSES = {
    "mlflow": {"predictions": [[0.09, 0.91], [0.8, 0.2]]},
    "kserve": {"model_name": "churn-sk", "outputs": [
        {"name": "predict", "shape": [2], "datatype": "INT64", "data": [1, 0]},
        {"name": "predict_proba", "shape": [2, 2], "datatype": "FP64",
         "data": [0.09, 0.91, 0.8, 0.2]}]},
    "kserve-v1": {"predictions": [[0.09, 0.91], [0.8, 0.2]]},
}


@pytest.mark.parametrize("name", list(RESPONSES))
@pytest.mark.parametrize("join", [
    {"inputs": SCORED, "entity_column": "customer_id", "value_column": "arr"},
    {"inputs": SCORED_REQUEST, "entity_ids": ["ACC-10004", "ACC-10006"],
     "value_column": "arr"},
    {"request": SCORED_REQUEST, "entity_ids": ["ACC-10004", "ACC-10006"],
     "mapping": {"value_at_stake": "arr", **CHURN}},
], ids=["rows", "request-and-ids", "legacy-request-field"])
def test_both_routes_join_a_response_to_what_it_scored(svc: Service, name, join) -> None:
    route = "/v1/predictions/" + name.removesuffix("-v1")
    body = {"response": RESPONSES[name], "mapping": CHURN,
            "observed_at": "2026-11-20T08:00:00Z"} | join
    response = svc.post(route, "feeder", body)
    assert response.status_code == 200, response.text
    assert response.json()["needs"] == {"unknown_kind": 0, "no_value_at_stake": 0,
                                       "no_entity": 0}
    stored = [svc.rt.store.predictions.get(i) for i in response.json()["ingested_ids"]]
    assert sorted((p.entity_id, p.score, p.value_at_stake) for p in stored) == [
        ("ACC-10004", 0.91, 40000), ("ACC-10006", 0.2, 900)]


@pytest.mark.parametrize("route", ["mlflow", "kserve"])
def test_join_errors_name_the_field_and_store_nothing(svc: Service, route) -> None:
    base = {"response": RESPONSES[route], "mapping": CHURN}
    cases = [
        (base | {"inputs": SCORED[:1], "entity_column": "customer_id"}, "inputs"),
        (base | {"inputs": SCORED, "entity_column": "cust"}, "entity_column"),
        (base | {"inputs": SCORED, "entity_column": "customer_id", "positive_class": 4},
         "positive_class"),
        (base | {"entity_ids": ["a"]}, "entity_ids"),
        (base | {"entity_ids": ["a", "b"], "value_column": " "}, "value_column"),
        # a column the inputs lack (trial 25: named value_at_stake)
        (base | {"inputs": SCORED, "entity_column": "customer_id", "value_column": "arrx"},
         "value_column"),
        ({"response": RESPONSES[route], "inputs": SCORED, "entity_column": "customer_id"},
         "kind" if route == "kserve" else "model"),
    ]
    for body, field in cases:
        response = svc.post(f"/v1/predictions/{route}", "feeder", body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["field"] == field, response.text
    assert _count(svc) == 0


def test_the_webhook_takes_the_same_joins(svc: Service) -> None:
    body = {"response": RESPONSES["mlflow"], "inputs": SCORED, "entity_column": "customer_id",
            "mapping": CHURN}
    response = svc.webhook(json.dumps(body).encode(), delivery="evt-join", fmt="mlflow")
    assert response.status_code == 200, response.text
    assert len(response.json()["ingested_ids"]) == 2
    assert response.json()["needs"] == {"unknown_kind": 0, "no_value_at_stake": 2,
                                       "no_entity": 0}


def test_outcomes(svc: Service) -> None:
    decision = svc.decide()
    body = {"decision_id": decision, "label": "Retained", "value_realized": 30_000,
            "observed_at": (utcnow() - timedelta(hours=1)).isoformat()}
    created = svc.post("/v1/outcomes", "feeder", body)
    assert created.status_code == 201, created.text
    assert created.json() | {"outcome_id": None} == {
        "outcome_id": None, "decision_id": decision, "arm": "treated", "label": "retained",
        "prediction_id": svc.rt.store.decisions.get(decision).prediction_id, "recorded": True}
    again = svc.post("/v1/outcomes", "feeder", body)
    assert again.status_code == 201 and again.json()["recorded"] is False
    assert svc.post("/v1/outcomes", "dana", body).status_code == 403
    missing = svc.post("/v1/outcomes", "olga", body | {"decision_id": "dec_nope"})
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "decision_id"
    other = svc.post("/v1/outcomes", "feeder", body | {"value_realized": 1})
    assert other.status_code == 409 and other.json()["error"]["field"] == "value_realized"


@pytest.mark.parametrize(("change", "field"), [
    ({"observed_at": "2099-12-05T00:00:00Z"}, "observed_at"),
    ({"label": "has space!"}, "label"),
    ({"label": '=HYPERLINK("http://evil")'}, "label"),
    ({"value_realized": 1e300}, "value_realized"),
])
def test_outcomes_are_refused_as_the_cli_refuses_them(svc: Service, change: dict,
                                                      field: str) -> None:
    """(trial: the API stored a future outcome and labels the CLI refuses)"""
    body = {"decision_id": svc.decide(), "label": "retained", "value_realized": 10,
            "observed_at": (utcnow() - timedelta(hours=1)).isoformat(), **change}
    response = svc.post("/v1/outcomes", "feeder", body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert svc.rt.store.outcomes.outcome_list() == []


def test_roles_decide_who_ingests(svc: Service) -> None:
    body = {"predictions": [churn_record("r-1")]}
    assert svc.post("/v1/predictions", "dana", body).status_code == 403
    assert svc.post("/v1/predictions", "root", body).status_code == 200
    assert svc.get("/v1/decisions", "feeder").status_code == 403  # ingest cannot read
    assert svc.client.post("/v1/predictions", json=body).status_code == 401


def test_a_body_that_is_not_json_is_told_what_to_send(svc: Service) -> None:
    """(trial: a CSV posted as it is got 'Input should be a valid dictionary')"""
    before = svc.rt.store.predictions.queue_depth()
    response = svc.client.post("/v1/predictions", content=b"id,score\nx,0.5\n",
                               headers={**svc.auth("feeder"), "content-type": "text/csv"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "body"
    assert "send JSON (Content-Type: application/json), not text/csv" in error["message"]
    assert svc.rt.store.predictions.queue_depth() == before
