"""Predictions over the API: each with its outcome and reason, the needs-a-human queue,
and its answers as the caller the credential names; bad input is a 4xx naming the
field that changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Service, churn_record


def _fraud(pid: str = "fraud-1") -> dict[str, Any]:
    return {**churn_record(pid, account="ACC-10003", score=0.96), "kind": "fraud"}


@pytest.fixture
def queued(svc: Service) -> Service:
    novalue = churn_record("churn-novalue", account="ACC-10002")
    del novalue["value_at_stake"]
    body = {"predictions": [churn_record("churn-1"), novalue, _fraud(),
                            churn_record("churn-low", account="ACC-10005", score=0.1)]}
    assert svc.post("/v1/predictions", "feeder", body).status_code == 200
    svc.rt.triage_pending()
    return svc


def _state(svc: Service) -> tuple:
    return (len(svc.rt.store.ledger.entries()),
            [v.to_dict() for v in svc.rt.store.prediction_views.list(limit=100)])


def test_list_and_show_give_every_outcome_and_reason(queued: Service) -> None:
    rows = {r["id"]: r for r in queued.get("/v1/predictions", "olga").json()}
    assert {i: (r["outcome"], r["reason"]) for i, r in rows.items()} == {
        "churn-1": ("act", "act"), "churn-novalue": ("needs_human", "missing_value"),
        "fraud-1": ("needs_human", "no_playbook"), "churn-low": ("drop", "below_threshold")}
    needs = queued.get("/v1/predictions", "olga", params={"outcome": "needs_human"}).json()
    assert sorted(r["id"] for r in needs) == ["churn-novalue", "fraud-1"]
    assert [r["id"] for r in queued.get("/v1/predictions", "olga",
                                        params={"kind": "fraud"}).json()] == ["fraud-1"]
    shown = queued.get("/v1/predictions/fraud-1", "olga").json()
    assert (shown["outcome"], shown["entity_id"]) == ("needs_human", "ACC-10003")
    assert "'fraud'" in shown["detail"]
    queue = queued.get("/v1/predictions/queue", "olga").json()
    assert [r["id"] for r in queue] == ["churn-novalue", "fraud-1"]


def test_answers_are_recorded_under_the_callers_name(queued: Service) -> None:
    picked = queued.post("/v1/predictions/fraud-1/pick", "olga",
                         {"playbook": "churn-retention", "note": "treat as churn"})
    assert picked.status_code == 200, picked.text
    assert (picked.json()["outcome"], picked.json()["reason"]) == ("act", "picked")
    valued = queued.post("/v1/predictions/churn-novalue/value", "root",
                         {"value_at_stake": 25_000})
    assert (valued.json()["outcome"], valued.json()["expected_value"]) == ("act", 22_500)
    queued.work()  # the service's worker starts both decisions
    assert queued.get("/v1/predictions/fraud-1", "olga").json()["decision_id"]
    assert queued.get("/v1/predictions/queue", "olga").json() == []
    events = {(e.event, e.actor) for e in queued.rt.store.ledger.entries()}
    assert {("prediction.picked", "olga"), ("prediction.value_supplied", "root")} <= events


def test_dismiss_by_an_approver(queued: Service) -> None:
    response = queued.post("/v1/predictions/fraud-1/dismiss", "dana", {"reason": "known test"})
    assert response.json()["detail"] == "dismissed by dana: known test"
    assert response.json()["outcome"] == "drop"


@pytest.mark.parametrize(("method", "path", "user", "body", "status", "field"), [
    ("get", "/v1/predictions?outcome=maybe", "olga", None, 422, "outcome"),
    ("get", "/v1/predictions/nope", "olga", None, 404, "prediction_id"),
    ("get", "/v1/predictions", "feeder", None, 403, None),
    ("post", "/v1/predictions/fraud-1/pick", "olga", {"playbook": "nope"}, 422, "playbook"),
    ("post", "/v1/predictions/fraud-1/pick", "olga", {"playbook": "churn-retention",
                                                      "extra": 1}, 422, "extra"),
    ("post", "/v1/predictions/churn-1/pick", "olga", {"playbook": "churn-retention"}, 409,
     "prediction_id"),
    ("post", "/v1/predictions/fraud-1/value", "olga", {"value_at_stake": 5}, 422,
     "value_at_stake"),
    ("post", "/v1/predictions/churn-novalue/value", "olga", {"value_at_stake": -5}, 422,
     "value_at_stake"),
    ("post", "/v1/predictions/fraud-1/dismiss", "olga", {"reason": ""}, 422, "reason"),
    ("post", "/v1/predictions/fraud-1/dismiss", "feeder", {"reason": "x"}, 403, None),
])
def test_bad_requests_name_the_field_and_change_nothing(queued: Service, method, path, user,
                                                        body, status, field) -> None:
    before = _state(queued)
    response = (queued.get(path, user) if method == "get"
                else queued.post(path, user, body))
    assert response.status_code == status, response.text
    error = response.json()["error"]
    if field is not None:
        assert field in (error.get("field") or "") or field in error["message"]
    assert _state(queued) == before


def test_http_ingest_applies_kind_aliases(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.api.conftest import serve

    monkeypatch.setenv("DECISIONOPS_KIND_ALIASES", '{"customer_attrition": "churn"}')
    with serve(tmp_path / "home") as svc:
        record = {**churn_record("alias-1"), "kind": "customer_attrition"}
        response = svc.post("/v1/predictions", "feeder", {"predictions": [record]})
        assert response.json()["kinds_without_playbook"] == []
        svc.rt.triage_pending()
        shown = svc.get("/v1/predictions/alias-1", "olga").json()
        assert (shown["kind"], shown["kind_as_received"], shown["outcome"]) == (
            "churn", "customer_attrition", "act")


def test_four_eyes_counts_whoever_picked_the_playbook_as_the_requester(svc4: Service) -> None:
    """Picking a playbook asks for the plan, as a revise does: under four eyes the person
    who picked it may not approve it themselves."""
    body = {"predictions": [_fraud()]}
    assert svc4.post("/v1/predictions", "feeder", body).status_code == 200
    svc4.rt.triage_pending()
    picked = svc4.post("/v1/predictions/fraud-1/pick", "dana", {"playbook": "churn-retention"})
    assert picked.status_code == 200, picked.text
    svc4.work()
    decision = svc4.rt.decision_ids(["fraud-1"])[0]
    finance = svc4.pending(decision)["finance"]
    own = svc4.answer("dana", finance)
    assert own.status_code == 403 and own.json()["error"]["reason"] == "four_eyes"
    assert svc4.answer("omar", finance).status_code == 200


def test_an_approver_sees_the_queue_and_the_predictions_of_their_decisions_only(
        queued: Service) -> None:
    """One visibility rule (``agent.store.seen_by``): an approver whose function has no
    step in a decision gets the same 404 for its prediction and preview as for an unknown
    id, and does not find it in the list or in the chat's ``why``; the queue is every
    approver's to answer (trial: max@maintenance read a churn decision's prediction,
    preview and status that the decision endpoints hid from him)."""
    queued.work()  # churn-1's decision: sales, support and finance steps
    decision = queued.rt.decision_ids(["churn-1"])[0]
    for user in ("mia", "olga"):  # sales is in it; an operator sees everything
        assert queued.get("/v1/predictions/churn-1", user).json()["decision_id"] == decision
        assert queued.get("/v1/predictions/churn-1/preview", user).status_code == 200
    unknown = queued.get("/v1/predictions/nope", "max").json()["error"]
    for path in ("/v1/predictions/churn-1", "/v1/predictions/churn-1/preview"):
        hidden = queued.get(path, "max")
        assert hidden.status_code == 404, (path, hidden.text)
        error = hidden.json()["error"]
        assert error["field"] == unknown["field"] == "prediction_id"
        assert error["message"] == unknown["message"].replace("nope", "churn-1")
        assert decision not in hidden.text
    # The queue (his to answer); not what triage dropped without a decision (churn-low),
    # which is an operator's to look into (trial 19: every approver read every kind's
    # drops and their what-if plans).
    listed = [r["id"] for r in queued.get("/v1/predictions", "max").json()]
    assert sorted(listed) == ["churn-novalue", "fraud-1"]
    assert queued.get("/v1/predictions/churn-low", "max").status_code == 404
    assert queued.get("/v1/predictions/churn-low/preview", "max").status_code == 404
    assert "churn-low" in [r["id"] for r in queued.get("/v1/predictions", "olga").json()]
    assert "churn-1" in [r["id"] for r in queued.get("/v1/predictions", "mia").json()]
    assert [r["id"] for r in queued.get("/v1/predictions/queue", "max").json()] == [
        "churn-novalue", "fraud-1"]
    said = queued.post("/v1/chat", "max", {"message": "why ACC-10004"}).json()["reply"]
    assert decision not in said and "churn-1" not in said
    assert decision in queued.post("/v1/chat", "mia", {"message": "why ACC-10004"}).json()["reply"]


@pytest.mark.parametrize("pid", ["queue", "z/preview", "a/b/pick",
                                 "x/plan", "x/value", "x/dismiss"])
def test_an_id_the_api_could_not_address_is_refused_at_intake(svc: Service, pid: str) -> None:
    """GET /v1/predictions/queue is the queue and .../z/preview the preview of z: a
    prediction with such an id could never be shown or answered over HTTP, so intake
    refuses it naming the field, and stores nothing."""
    before = len(svc.rt.store.ledger.entries())
    response = svc.post("/v1/predictions", "feeder", {"predictions": [churn_record(pid)]})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "predictions.0.id", error
    assert "route" in error["problems"][0]["message"], error
    assert len(svc.rt.store.ledger.entries()) == before


def test_ids_that_only_look_like_routes_are_addressable(svc: Service) -> None:
    for pid in ("queue-1", "queued", "z/previews", "preview", "x/pick/1", "mlflow"):
        assert svc.post("/v1/predictions", "feeder",
                        {"predictions": [churn_record(pid)]}).status_code == 200, pid
        shown = svc.get(f"/v1/predictions/{pid}", "olga")
        assert shown.status_code == 200 and shown.json()["id"] == pid, (pid, shown.text)


def test_the_reserved_ids_are_the_routes_own_words(svc: Service) -> None:
    """The rule names exactly the words the prediction routes put after the id (or in
    its place): a new route word added without it fails here."""
    from decisionops.agent.models import PREDICTION_ROUTE_SUFFIXES, PREDICTION_ROUTE_WORDS

    words, suffixes = set(), set()
    for path, methods in svc.client.app.openapi()["paths"].items():
        rest = path.removeprefix("/v1/predictions/")
        if rest.startswith("{prediction_id}"):
            if tail := rest.removeprefix("{prediction_id}"):
                suffixes.add(tail)
        elif rest != path and "get" in methods:
            # Only GET shows one prediction at /v1/predictions/<id>; a POST there is
            # always one of its answers, /<id>/<answer>.
            words.add(rest)
    assert words == set(PREDICTION_ROUTE_WORDS)
    assert suffixes == set(PREDICTION_ROUTE_SUFFIXES)
