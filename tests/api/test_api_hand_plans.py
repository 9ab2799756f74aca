"""Planning by hand over HTTP: ``POST /v1/predictions/{id}/plan`` and the inbox's form on
/queue, as the caller the credential (or the session) names. The plan passes the guard
at submission (a refusal is a 422 naming ``steps`` that changes nothing), its decision
starts through the loop, each function approves its part, and under four-eyes its author
cannot approve it alone."""

from __future__ import annotations

import html
from typing import Any

import pytest
from sqlalchemy import func, select

from decisionops.agent.store import _tables as t
from tests.api.conftest import Service
from tests.api.test_api_auth_web import _login
from tests.api.test_api_predictions import (
    _fraud,
    queued,  # noqa: F401  (fixture)
)

STEPS: list[dict[str, Any]] = [
    {"id": "offer", "function": "sales", "tool": "crm.create_retention_offer",
     "arguments": {"account_id": "ACC-10003", "offer_type": "discount", "discount_pct": 10,
                   "duration_months": 6}, "risk": "medium", "rationale": "keep them"},
    {"id": "credit", "function": "finance", "tool": "finance.issue_credit",
     "arguments": {"account_id": "ACC-10003", "amount": 150, "currency": "EUR",
                   "reason": "goodwill"}, "depends_on": ["offer"], "risk": "medium"},
]
YAML_STEPS = """
- id: offer
  function: sales
  tool: crm.create_retention_offer
  arguments: {account_id: ACC-10003, offer_type: discount, discount_pct: 10, duration_months: 6}
"""


def _state(svc: Service) -> tuple:
    with svc.rt.store.reading() as conn:
        hand = conn.scalar(select(func.count()).select_from(t.hand_plans))
    return (len(svc.rt.store.ledger.entries()), hand,
            [v.to_dict() for v in svc.rt.store.prediction_views.list(limit=100)])


def test_a_plan_by_hand_over_the_api_is_approved_and_executed(queued: Service  # noqa: F811
                                                              ) -> None:
    response = queued.post("/v1/predictions/fraud-1/plan", "olga",
                           {"steps": STEPS, "rationale": "fraud flag on a loyal account",
                            "note": "called them"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["outcome"], body["reason"]) == ("act", "planned_by_hand")
    assert body["detail"].startswith("planned by hand by olga")
    queued.work()
    decision = queued.get("/v1/predictions/fraud-1", "olga").json()["decision_id"]
    plan = queued.rt.store.plans.get(decision)
    assert plan.planner == "hand" and "fraud flag on a loyal account" in plan.rationale
    asked = queued.pending(decision)
    assert set(asked) == {"sales", "finance"}
    assert queued.answer("raj", asked["sales"]).status_code == 200
    assert queued.answer("dana", asked["finance"]).status_code == 200
    queued.work()
    assert queued.rt.store.decisions.get(decision).status.value == "completed"
    assert len(queued.rt.enterprise.effects("finance.issue_credit")) == 1
    assert len(queued.rt.enterprise.effects("crm.create_retention_offer")) == 1


def test_a_plan_by_hand_s_request_opens_in_the_inbox(queued: Service) -> None:  # noqa: F811
    # Found in a black-box trial: the request page of a hand plan answered 500 (its
    # steps have no playbook class, whose autonomy entry lacked what the page reads).
    assert queued.post("/v1/predictions/fraud-1/plan", "olga", {"steps": STEPS}
                       ).status_code == 200
    queued.work()
    decision = queued.get("/v1/predictions/fraud-1", "olga").json()["decision_id"]
    finance = queued.pending(decision)["finance"]["id"]
    _login(queued, "dana")
    page = queued.client.get(f"/inbox/requests/{finance}")
    assert page.status_code == 200, page.text[-2000:]
    assert "finance.issue_credit" in page.text
    shown = queued.get(f"/v1/approvals/{finance}", "dana").json()
    assert shown["autonomy"][0]["state"] == "no playbook"
    assert shown["autonomy"][0]["opted_in"] is False


@pytest.mark.parametrize(("user", "body", "status", "says"), [
    ("olga", {"steps": [{**STEPS[1], "amount": 1}]}, 422, "steps"),
    ("olga", {"steps": [STEPS[0], {**STEPS[1], "arguments": {**STEPS[1]["arguments"],
                                                          "amount": 9999}}]},
     422, "steps.credit.arguments.amount"),
    ("olga", {"steps": [STEPS[1]]}, 422, "depends on unknown step 'offer'"),
    ("olga", {"steps": [{**STEPS[0], "tool": "finance.issue_credit"}]}, 422,
     "not allowed for sales"),
    ("olga", {"steps": []}, 422, "steps"),
    ("olga", {"steps": STEPS, "extra": 1}, 422, "extra"),
    ("feeder", {"steps": STEPS}, 403, None),
])
def test_a_refused_plan_is_a_4xx_naming_steps_and_changes_nothing(
        queued: Service, user: str, body: dict, status: int, says: str | None  # noqa: F811
) -> None:
    before = _state(queued)
    response = queued.post("/v1/predictions/fraud-1/plan", user, body)
    assert response.status_code == status, response.text
    if says is not None:
        error = response.json()["error"]
        assert says in (error.get("field") or "") + " " + error["message"]
    assert _state(queued) == before


def test_a_prediction_not_in_the_queue_cannot_be_planned_by_hand(queued: Service  # noqa: F811
                                                                 ) -> None:
    before = _state(queued)
    response = queued.post("/v1/predictions/churn-1/plan", "olga", {"steps": STEPS})
    assert response.status_code == 409
    assert _state(queued) == before


def test_the_author_cannot_be_the_sole_approver_under_four_eyes(svc4: Service) -> None:
    assert svc4.post("/v1/predictions", "feeder", {"predictions": [_fraud()]}).status_code == 200
    svc4.rt.triage_pending()
    assert svc4.post("/v1/predictions/fraud-1/plan", "dana",
                     {"steps": STEPS}).status_code == 200
    svc4.work()
    decision = svc4.rt.store.prediction_views.get("fraud-1").decision_id
    asked = svc4.pending(decision)
    refused = svc4.answer("dana", asked["finance"])
    assert refused.status_code == 403 and refused.json()["error"]["reason"] == "four_eyes"
    assert svc4.answer("raj", asked["sales"]).status_code == 200
    assert svc4.answer("omar", asked["finance"]).status_code == 200
    svc4.work()
    assert svc4.rt.store.decisions.get(decision).status.value == "completed"
    assert len(svc4.rt.enterprise.effects("finance.issue_credit")) == 1


# ---------------------------------------------------------------------- the inbox form


def test_the_queue_page_offers_a_plan_by_hand_form(queued: Service) -> None:  # noqa: F811
    _login(queued, "olga")
    page = queued.client.get("/queue")
    assert page.status_code == 200
    assert page.text.count('value="plan"') == 2 and 'name="steps"' in page.text


def test_the_form_plans_by_hand_as_the_logged_in_user(queued: Service) -> None:  # noqa: F811
    csrf = _login(queued, "olga")
    done = queued.client.post("/queue/fraud-1", data={
        "action": "plan", "steps": YAML_STEPS, "note": "by phone", "csrf_token": csrf},
        follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/queue?done=fraud-1"
    view = queued.rt.store.prediction_views.get("fraud-1")
    assert (view.outcome, view.reason) == ("act", "planned_by_hand")
    assert queued.rt.store.hand_plans.get("fraud-1").author == "olga"
    entries = [e for e in queued.rt.store.ledger.entries()
               if e.event == "prediction.planned_by_hand"]
    assert [(e.actor, e.body["channel"]) for e in entries] == [("olga", "web")]
    queued.work()
    decision = queued.rt.store.prediction_views.get("fraud-1").decision_id
    assert set(queued.pending(decision)) == {"sales"}


@pytest.mark.parametrize(("steps", "says"), [
    (YAML_STEPS.replace("discount_pct: 10", "discount_pct: 95"), "steps.offer.arguments"),
    ("- id: [", "not valid YAML or JSON"),
    ('[{"id": "x"}]', "steps.0.function"),
])
def test_a_refused_form_shows_the_guards_problems_and_changes_nothing(
        queued: Service, steps: str, says: str) -> None:  # noqa: F811
    csrf = _login(queued, "olga")
    before = _state(queued)
    response = queued.client.post("/queue/fraud-1", data={
        "action": "plan", "steps": steps, "csrf_token": csrf})
    assert response.status_code == 422
    assert says in html.unescape(response.text)
    assert _state(queued) == before
    # What they wrote is given back to fix, in the open form of that prediction.
    assert f"{steps}</textarea>" in html.unescape(response.text)
    assert response.text.count('<details class="hand-plan" open>') == 1


def test_a_revised_hand_plan_is_planned_again_over_http_and_in_the_inbox(
        queued: Service) -> None:  # noqa: F811
    """(trial: after a revise, POST …/plan answered 409 'a prediction starts one decision',
    and /queue offered only Dismiss)"""
    assert queued.post("/v1/predictions/fraud-1/plan", "olga", {"steps": STEPS}).status_code == 200
    queued.work()
    first = queued.get("/v1/predictions/fraud-1", "olga").json()["decision_id"]
    asked = queued.pending(first)
    assert queued.answer("raj", asked["sales"]).status_code == 200
    revised = queued.answer("dana", asked["finance"], "revise", feedback="credit 120, not 150")
    assert revised.status_code == 200, revised.text
    queued.work()
    shown = queued.get("/v1/predictions/fraud-1", "olga").json()
    assert (shown["outcome"], shown["decision_status"]) == ("needs_human", "needs_human")
    _login(queued, "olga")
    page = queued.client.get("/queue").text
    assert "Its decision ended needing a person" in page and 'value="plan"' in page
    corrected = [dict(s) for s in STEPS]
    corrected[1] = {**STEPS[1], "arguments": {**STEPS[1]["arguments"], "amount": 120}}
    again = queued.post("/v1/predictions/fraud-1/plan", "olga",
                        {"steps": corrected, "note": "as dana asked"})
    assert again.status_code == 200, again.text
    assert (again.json()["id"], again.json()["outcome"]) == ("fraud-1+r2", "act")
    assert queued.get("/v1/predictions/fraud-1", "olga").json()["reason"] == "replanned"
    queued.work()
    second = queued.get("/v1/predictions/fraud-1+r2", "olga").json()["decision_id"]
    asked = queued.pending(second)
    assert set(asked) == {"sales", "finance"}
    assert asked["finance"]["request"]["steps"][0]["arguments"]["amount"] == 120
    for user, function in (("raj", "sales"), ("omar", "finance")):
        assert queued.answer(user, asked[function]).status_code == 200
    queued.work()
    assert queued.get(f"/v1/decisions/{second}", "olga").json()["decision"]["status"] == \
        "completed"
