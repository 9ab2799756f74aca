"""Signed webhooks (catalog B8): only correctly signed, fresh deliveries are accepted;
replays are answered from the stored first response and change nothing; two secrets
are valid during a rotation."""

from __future__ import annotations

import time

import pytest

from tests.api.conftest import OLD_WEBHOOK_SECRET, Service, churn_record, dumps, sign


def _body(pid: str = "wh-1") -> bytes:
    return dumps({"predictions": [churn_record(pid)]})


def _ingested(svc: Service) -> int:
    """Rows the ledger records as accepted."""
    return sum(e.body["rows"] for e in svc.rt.store.ledger.entries()
               if e.event == "predictions.ingested")


def test_valid_delivery_is_ingested_once_and_replays_get_the_first_response(svc: Service) -> None:
    first = svc.webhook(_body(), delivery="evt-1")
    assert first.status_code == 200, first.text
    assert first.json()["ingested_ids"] == ["wh-1"]
    replay = svc.webhook(_body(), delivery="evt-1")
    assert replay.status_code == 200 and replay.json() == first.json()
    assert replay.headers["DecisionOps-Replayed"] == "true"
    assert _ingested(svc) == 1
    other_body = svc.webhook(_body("wh-2"), delivery="evt-1")
    assert other_body.status_code == 409
    assert _ingested(svc) == 1


@pytest.mark.parametrize("case", ["none", "wrong_secret", "one_byte", "old", "future",
                                  "garbage", "no_delivery_id"])
def test_bad_signatures_are_refused_and_change_nothing(svc: Service, case: str) -> None:
    body = _body()
    now = int(time.time())
    kwargs: dict = {}
    if case == "none":
        kwargs["signature"] = ""
    elif case == "wrong_secret":
        kwargs["secret"] = "not-the-secret"
    elif case == "one_byte":
        _, mac = sign("whsec_test_current", body, now)
        body = body.replace(b"0.9", b"0.8")
        kwargs["signature"] = f"t={now},v1={mac}"
    elif case == "old":
        kwargs["timestamp"] = now - 360  # a minute past the tolerance: a slow run stays outside
    elif case == "future":
        kwargs["timestamp"] = now + 360
    elif case == "garbage":
        kwargs["signature"] = "v1=zz,t=abc"
    response = svc.webhook(body, delivery="" if case == "no_delivery_id" else "evt-x", **kwargs)
    assert response.status_code == (422 if case == "no_delivery_id" else 401)
    assert "whsec" not in response.text
    assert _ingested(svc) == 0
    assert svc.rt.store.webhooks.get("evt-x") is None


def test_rotation_accepts_the_previous_secret_and_several_v1_values(svc: Service) -> None:
    assert svc.webhook(_body("rot-1"), delivery="evt-r1",
                       secret=OLD_WEBHOOK_SECRET).status_code == 200
    body = _body("rot-2")
    ts, good = sign(OLD_WEBHOOK_SECRET, body)
    header = f"t={ts},v1={'0' * 64},v1={good}"
    assert svc.webhook(body, delivery="evt-r2", signature=header).status_code == 200
    assert _ingested(svc) == 2


def test_bad_body_is_a_stored_422_and_formats_are_selectable(svc: Service) -> None:
    bad = svc.webhook(b'{"predictions": "nope"}', delivery="evt-b")
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "predictions"
    assert svc.webhook(b'{"predictions": "nope"}', delivery="evt-b").status_code == 422
    kserve = dumps({"response": {"model_name": "churn-gbm", "id": "r-9", "outputs": [
        {"name": "p", "shape": [1], "datatype": "FP64", "data": [0.95]}]},
        "entity_ids": ["ACC-10004"],
        "mapping": {"defaults": {"kind": "churn", "entity_type": "account"}}})
    response = svc.webhook(kserve, delivery="evt-k", fmt="kserve")
    assert response.status_code == 200, response.text
    assert len(response.json()["ingested_ids"]) == 1
