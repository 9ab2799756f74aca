"""The inbox's "needs a human" page: the queue with reasons, answered by forms under the
logged-in user's name (CSRF-checked); a bad answer shows why and changes nothing."""

from __future__ import annotations

import html

import pytest

from tests.api.conftest import Service
from tests.api.test_api_auth_web import _login
from tests.api.test_api_predictions import queued  # noqa: F401  (fixture)


def _state(svc: Service) -> tuple:
    return (len(svc.rt.store.ledger.entries()),
            [v.to_dict() for v in svc.rt.store.prediction_views.list(limit=100)])


def test_the_page_lists_the_queue_with_reasons(queued: Service) -> None:  # noqa: F811
    assert queued.client.get("/queue", follow_redirects=False).status_code == 303
    _login(queued, "olga")
    page = queued.client.get("/queue")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "fraud-1" in text and "no playbook answers kind 'fraud'" in text
    assert "churn-novalue" in text and "missing_value" in text
    assert 'name="value_at_stake"' in page.text  # offered only where a value is missing
    assert page.text.count('value="value"') == 1
    assert '<a href="/queue">Needs a human</a>' in page.text


def test_forms_answer_as_the_logged_in_user(queued: Service) -> None:  # noqa: F811
    csrf = _login(queued, "olga")
    done = queued.client.post("/queue/fraud-1", data={
        "action": "pick", "playbook": "churn-retention", "csrf_token": csrf},
        follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/queue?done=fraud-1"
    # what the answer did, from the store, not the link's text (trial 25: "Answered X."
    # of whatever X the link carried, and nothing of the outcome)
    said = html.unescape(queued.client.get(done.headers["location"]).text)
    assert "Answered fraud-1: outcome act (picked: playbook churn-retention picked by" in \
        said.replace("<wbr>", "")
    assert "Answered" not in queued.client.get("/queue?done=<script>").text
    valued = queued.client.post("/queue/churn-novalue", data={
        "action": "value", "value_at_stake": "25,000", "csrf_token": csrf},
        follow_redirects=False)
    assert valued.status_code == 303
    views = {v.id: v for v in queued.rt.store.prediction_views.list()}
    assert (views["fraud-1"].outcome, views["fraud-1"].reason) == ("act", "picked")
    assert (views["churn-novalue"].outcome, views["churn-novalue"].expected_value) == (
        "act", 22_500)
    actors = {(e.event, e.actor) for e in queued.rt.store.ledger.entries()}
    assert {("prediction.picked", "olga"), ("prediction.value_supplied", "olga")} <= actors
    assert "Nothing needs a human" in queued.client.get("/queue").text


@pytest.mark.parametrize(("data", "status", "says"), [
    ({"action": "pick", "playbook": "nope"}, 422, "playbook"),
    ({"action": "value", "value_at_stake": "lots"}, 422, "value_at_stake"),
    ({"action": "dismiss", "reason": " "}, 422, "reason"),
    # a too-long note is refused, not cut short (as over the API)
    ({"action": "pick", "playbook": "churn-retention", "note": "n" * 501}, 422, "note"),
    ({"action": "explode"}, 422, "action"),
    ({"action": "dismiss", "reason": "x", "csrf_token": "wrong"}, 403, "expired"),
])
def test_a_bad_form_shows_why_and_changes_nothing(queued: Service, data, status,  # noqa: F811
                                                  says) -> None:
    csrf = _login(queued, "dana")
    before = _state(queued)
    response = queued.client.post("/queue/fraud-1", data={"csrf_token": csrf, **data})
    assert response.status_code == status
    assert says in html.unescape(response.text)
    assert _state(queued) == before


def test_the_page_is_for_those_who_may_read_predictions(queued: Service) -> None:  # noqa: F811
    """As GET /v1/predictions/queue: an ingest credential does not read predictions."""
    assert queued.get("/v1/predictions/queue", "feeder").status_code == 403
    _login(queued, "feeder")
    page = queued.client.get("/queue")
    assert page.status_code == 403
    assert "fraud-1" not in page.text and "churn-novalue" not in page.text
