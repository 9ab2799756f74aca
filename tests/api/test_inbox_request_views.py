"""A request's page as each viewer sees it: their own part, another function's part of a
decision they see (read-only, named as that function's), one they do not see (the same
404 as an unknown id, naming neither it nor its decision), and the last plan version the
loop drafts (no revise offered, here or to a LangGraph client)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import Service, churn_record, serve
from tests.api.test_inbox_answers import login


@pytest.fixture
def last(tmp_path: Path) -> Iterator[Service]:
    """The loop drafts no second version (``max_replans`` 0)."""
    with serve(tmp_path / "home", settings={"max_replans": 0}) as service:
        yield service


def _page(svc: Service, user: str, approval_id: str) -> str:
    svc.client.cookies.clear()
    login(svc, user, f"/inbox/requests/{approval_id}")
    return svc.client.get(f"/inbox/requests/{approval_id}").text


def test_another_functions_request_reads_as_theirs_and_offers_no_answer(svc: Service) -> None:
    """(trial: raj@sales saw finance's request as 'Your part', 'Why you are asked', its
    steps highlighted as his, and the key help offering 'a approve')"""
    waiting = svc.pending(svc.decide())
    own = _page(svc, "mia", waiting["sales"]["id"])
    assert "Why you are asked" in own and "Your part" in own
    assert "Highlighted: your function&#39;s steps" in own
    theirs = _page(svc, "mia", waiting["finance"]["id"])
    assert "Why finance is asked" in theirs and "finance's part" in theirs
    assert "Highlighted: finance&#39;s steps" in theirs
    for offered in ("Your part", "Why you are asked", "approve as proposed",
                    'id="approve-button"', "Request a new plan"):
        assert offered not in theirs, offered


def test_a_request_of_a_decision_one_does_not_see_is_not_found_as_an_unknown_id(
        svc: Service) -> None:
    """(trial: the 404 named the hidden request's decision)"""
    waiting = svc.pending(svc.decide())
    decision = waiting["finance"]["decision_id"]
    unknown = svc.get("/v1/approvals/apr_nope", "max").json()["error"]
    for path in (f"/v1/approvals/{waiting['finance']['id']}",):
        hidden = svc.get(path, "max")
        assert hidden.status_code == 404
        error = hidden.json()["error"]
        assert (error["field"], unknown["field"]) == ("approval_id", "approval_id")
        assert decision not in hidden.text
    page = _page(svc, "max", waiting["finance"]["id"])
    assert decision not in page and "no approval" in page


def test_the_last_plan_version_offers_no_revise_on_any_channel(last: Service) -> None:
    """(trial: the inbox and the LangGraph interrupt offered a revise that the service
    then refused as replan_limit)"""
    waiting = last.pending(last.decide())
    page = _page(last, "dana", waiting["finance"]["id"])
    assert "Request a new plan" not in page and 'id="last-version"' in page
    assert "approve-button" in page
    thread = last.get(f"/langgraph/threads/{waiting['finance']['decision_id']}/state",
                      "dana").json()
    (interrupt,) = [i for i in thread["interrupts"] if i["value"]["function"] == "finance"]
    assert interrupt["value"]["config"]["allow_respond"] is False
    refused = last.answer("dana", waiting["finance"], "revise", feedback="credit 120")
    assert (refused.status_code, refused.json()["error"]["reason"]) == (409, "replan_limit")


def test_a_plan_version_that_may_be_revised_offers_it(svc: Service) -> None:
    waiting = svc.pending(svc.decide())
    assert "Request a new plan" in _page(svc, "dana", waiting["finance"]["id"])
    thread = svc.get(f"/langgraph/threads/{waiting['finance']['decision_id']}/state",
                     "dana").json()
    assert all(i["value"]["config"]["allow_respond"] for i in thread["interrupts"])


def test_a_withdrawn_request_says_why_and_offers_no_answer(svc: Service) -> None:
    """(trial 14: after sales asked for a revision, finance's request of the dead version
    still offered approve, and the approve answered 200 'approved')"""
    decision = svc.decide()
    waiting = svc.pending(decision)
    assert svc.answer("raj", waiting["sales"], "revise", feedback="15% discount").status_code == 200
    page = _page(svc, "dana", waiting["finance"]["id"])
    assert 'id="withdrawn"' in page
    assert "Withdrawn: sales asked to revise plan v1" in page
    assert 'id="approve-button"' not in page
    # Its status reads withdrawn where a person reads it (trial 16: "superseded", which
    # says a newer version replaced it); the API keeps the stored status beside why.
    assert '<strong id="approval-status">withdrawn</strong>' in page
    svc.client.cookies.clear()
    login(svc, "dana", f"/decisions/{decision}")
    decision_page = svc.client.get(f"/decisions/{decision}").text
    assert '<td data-label="Status">withdrawn</td>' in decision_page
    row = svc.get(f"/v1/approvals/{waiting['finance']['id']}", "dana").json()["approval"]
    assert row["status"] == "superseded"
    assert row["withdrawn"].startswith("sales asked to revise plan v1")
    # A listing finds it by the status a person reads (trial 17 F6: refused), and the
    # stored status still finds it too.
    for status in ("withdrawn", "superseded"):
        listed = svc.get(f"/v1/approvals?status={status}", "olga").json()
        assert [a["id"] for a in listed] == [waiting["finance"]["id"]], status
    assert svc.get("/v1/approvals?status=approved", "olga").json() == []


def test_a_decision_page_says_nothing_was_executed_yet_only_while_it_may_still_be(
        svc: Service) -> None:
    def page(decision: str) -> str:
        svc.client.cookies.clear()
        login(svc, "dana", f"/decisions/{decision}")
        return svc.client.get(f"/decisions/{decision}").text

    waiting = svc.decide()
    assert "Nothing executed yet." in page(waiting)
    # An account the enterprise does not know: sent to a person, finished, nothing run.
    unknown = svc.decide(churn_record("churn-api-unknown", account="ACC-99999"))
    decision = svc.rt.store.decisions.get(unknown)
    assert decision.terminal and decision.finished_at is not None, decision.status
    finished = page(unknown)
    assert "Nothing executed." in finished and "Nothing executed yet." not in finished
