"""Over HTTP, a model server's response delivered twice without a time (the clock's
time at each delivery) is already stored with the same content; another score under
the same response id is other content."""

from __future__ import annotations

from tests.api.conftest import Service

CHURN = {"defaults": {"model": "churn-sk", "kind": "churn", "entity_type": "account"}}
SCORED = [{"customer_id": "ACC-10004", "arr": 40000}, {"customer_id": "ACC-10006", "arr": 900}]


def test_a_response_delivered_twice_is_the_same_content(svc: Service) -> None:
    body = {"response": {"predictions": [[0.09, 0.91], [0.8, 0.2]]}, "inputs": SCORED,
            "entity_column": "customer_id", "value_column": "arr", "mapping": CHURN}
    assert svc.post("/v1/predictions/mlflow", "feeder", body).json()["ingested"] == 2
    again = svc.post("/v1/predictions/mlflow", "feeder", body).json()
    assert (again["already_stored"], again["already_stored_changed"]) == (2, 0)


def test_another_score_under_the_same_response_id_is_other_content(svc: Service) -> None:
    def body(scores: list[float]) -> dict:
        return {"response": {"model_name": "churn-sk", "id": "r-1", "outputs": [
            {"name": "p", "shape": [2], "datatype": "FP32", "data": scores}]},
            "inputs": SCORED, "entity_column": "customer_id", "mapping": CHURN}

    assert svc.post("/v1/predictions/kserve", "feeder", body([0.9, 0.3])).json()["ingested"] == 2
    same = svc.post("/v1/predictions/kserve", "feeder", body([0.9, 0.3])).json()
    assert same["already_stored_changed"] == 0
    other = svc.post("/v1/predictions/kserve", "feeder", body([0.9, 0.5])).json()
    assert (other["already_stored"], other["already_stored_changed"]) == (2, 1)
