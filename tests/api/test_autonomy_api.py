"""Earned autonomy over HTTP and in the web inbox: finance opts in (3 approvals in a row by
2 approvers); the class's record is listed for the function's approvers, a dry run
replays the record, a person revokes and reinstates (approvers of the function or an
admin; an operator is refused); the inbox request page shows each step's class, state
and run, and what it would change (its preview), and the approve form binds the answer
to that preview, in a real browser."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import (
    CHROMIUM,
    Live,
    Service,
    add_users,
    churn_record,
    live_server,
    make_app,
    serve,
)

CREDIT = "finance/churn-retention/goodwill_credit/finance.issue_credit[amount≤256]"


def _opt_in(functions: dict[str, Any]) -> None:
    functions["finance"]["autonomy"] = {"after": 3, "approvers": 2}


@pytest.fixture
def auto(tmp_path: Path) -> Iterator[Service]:
    with serve(tmp_path / "home", functions=_opt_in, settings={"holdout_share": 0}) as service:
        yield service


def _finance(svc: Service, n: int, first: int = 0) -> list[dict[str, Any]]:
    out = []
    for i in range(first, first + n):
        decision = svc.decide(churn_record(f"au-{i}", account=f"ACC-{10001 + i}"))
        out.append(svc.pending(decision)["finance"])
    return out


def test_the_record_is_listed_changed_by_people_and_refused_to_others(auto: Service) -> None:
    for request, person in zip(_finance(auto, 3), ["dana", "omar", "dana"], strict=True):
        assert auto.answer(person, request).status_code == 200
    listed = auto.get("/v1/autonomy", "dana").json()["classes"]
    (row,) = [r for r in listed if r["class"] == CREDIT]
    assert row["state"] == "promoted" and row["run"] == 3
    assert auto.get("/v1/autonomy", "raj").json()["classes"] == []  # sales sees its own
    assert {r["class"] for r in auto.get("/v1/autonomy", "olga").json()["classes"]} >= {CREDIT}

    refused = auto.post("/v1/autonomy/revoke", "olga", {"class": CREDIT, "reason": "x"})
    assert refused.status_code == 403
    refused = auto.post("/v1/autonomy/revoke", "raj", {"class": CREDIT})
    assert refused.status_code == 403 and "approvers of finance" in refused.json()["error"]["message"]
    bad = auto.post("/v1/autonomy/revoke", "dana", {"klass": CREDIT})
    assert bad.status_code == 422
    missing = auto.post("/v1/autonomy/revoke", "dana", {"class": "finance/nope"})
    assert missing.status_code == 404
    assert auto.rt.store.autonomy.get(CREDIT).state == "promoted"  # nothing changed

    revoked = auto.post("/v1/autonomy/revoke", "omar", {"class": CREDIT, "reason": "audit"})
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    again = auto.post("/v1/autonomy/revoke", "omar", {"class": CREDIT})
    assert again.status_code == 422 and "not promoted" in again.json()["error"]["message"]
    back = auto.post("/v1/autonomy/reinstate", "root", {"class": CREDIT, "reason": "ok"})
    assert back.status_code == 200 and back.json()["changed_by"] == "root"

    mine = auto.get("/v1/autonomy?dry_run=true&after=2", "dana").json()
    assert [r["function"] for r in mine["would_promote"]] in ([], ["finance"])
    assert auto.get("/v1/autonomy?dry_run=true&function=finance", "raj").status_code == 403
    dry = auto.get("/v1/autonomy?dry_run=true&after=2", "olga").json()
    assert dry["replay"]["requests_answered"] == 3
    assert dry["replay"]["would_have_taken"] == 1  # the third, after two in a row


def test_the_inbox_shows_each_steps_preview_and_autonomy_and_binds_the_answer(
        tmp_path: Path, browser: Any) -> None:
    if not shutil.which(CHROMIUM) and not os.environ.get("CI"):
        pytest.skip("Debian chromium is not installed (CI installs it: .ci/run)")
    app = make_app(tmp_path / "home", functions=_opt_in, worker_interval_seconds=0.05,
                   settings={"holdout_share": 0})
    with live_server(app) as url:
        live = Live(url, app, add_users(app))
        requests = []
        with httpx.Client(base_url=url) as client:
            for i in range(2):
                assert client.post("/v1/predictions", headers=live.auth("feeder"), json={
                    "predictions": [churn_record(f"web-au-{i}", account=f"ACC-{10001 + i}")]
                }).status_code == 200
                (decision,) = live.rt.decision_ids([f"web-au-{i}"])
                requests.append(live.pending(decision, 2)["finance"])
            answered = client.post(f"/v1/approvals/{requests[0]['id']}/approve",
                                   json={"plan_hash": requests[0]["plan_hash"]},
                                   headers=live.auth("omar"))
            assert answered.status_code == 200
        page = browser.new_page()
        page.set_default_timeout(10_000)
        page.goto(f"{url}/login?next=/inbox/requests/{requests[1]['id']}")
        page.get_by_label("API token").fill(live.tokens["dana"])
        page.get_by_role("button", name="Log in").click()
        page.wait_for_selector("#autonomy")
        text = page.locator("#autonomy").inner_text()
        assert "Earned autonomy" in text and "goodwill_credit" in text
        assert "learning" in text and "1/3 in a row by omar@finance" in text
        assert CREDIT in text
        # What the credit would change, read when the plan was routed.
        preview = page.locator("#preview-goodwill_credit").inner_text()
        assert "What it would change" in preview and "issued credits 0.00 → 200.00" in preview
        assert "credits_issued" in preview
        bound = page.locator("#approve-form input[name=preview_hash]").get_attribute("value")
        stored = live.rt.store.approvals.get(requests[1]["id"]).request.preview_hash
        assert bound == stored and len(bound) == 64
        page.locator("#approve-button").click()
        page.wait_for_load_state()
        assert live.rt.store.approvals.get(requests[1]["id"]).status.value == "approved"
