"""``GET /v1/predictions/{id}/preview``: the what-if of ``decisionops plan preview`` over
HTTP (``agent.scenario``): nothing stored, bad input a 4xx."""

from __future__ import annotations

import json

from tests.api.conftest import Service, churn_record


def test_the_same_preview_over_http(svc: Service) -> None:
    response = svc.post("/v1/predictions", "feeder", {"predictions": [churn_record("pp-h")]})
    assert response.status_code == 200
    out = svc.get("/v1/predictions/pp-h/preview?score=0.95", "olga").json()
    assert out["changed"] == {"score": 0.95} and out["plan"]["steps"]
    assert svc.rt.store.decisions.list() == []
    assert svc.get("/v1/predictions/pp-h/preview?score=2", "olga").status_code == 422
    assert svc.get("/v1/predictions/nope/preview", "olga").status_code == 404
    # Not yet any function's (no decision, not in the queue): an approver sees no more of
    # it than of an unknown id.
    assert svc.get("/v1/predictions/pp-h/preview", "dana").status_code == 404
    assert json.dumps(out)  # JSON all the way


def test_an_answer_over_http_binds_to_the_preview_it_saw(svc: Service) -> None:
    decision = svc.decide(churn_record("pp-bind"))
    finance = svc.pending(decision)["finance"]
    view = svc.get(f"/v1/approvals/{finance['id']}", "dana").json()
    seen = view["preview_hash"]
    assert len(seen) == 64
    assert "goodwill_credit" in view["approval"]["request"]["previews"]
    stale = svc.answer("dana", finance, preview_hash="f" * 64)
    assert stale.status_code == 409
    assert stale.json()["error"]["message"].startswith("preview_hash: ")
    assert svc.answer("dana", finance, preview_hash="nothex").status_code == 422
    assert svc.answer("dana", finance, preview_hash=seen).status_code == 200
