"""The web inbox in a real headless Chromium (Debian's, driven by Playwright): log in with
a token, see the pending request with its evidence and plan, edit an amount (validated
through the API, with the diff shown), approve, and see the executed result."""

from __future__ import annotations

import os
import shutil
from typing import Any

import httpx
import pytest

from tests.api.conftest import CHROMIUM, Live, churn_record

pytestmark = pytest.mark.skipif(
    not shutil.which(CHROMIUM) and not os.environ.get("CI"),
    reason="Debian chromium is not installed (CI installs it: .ci/run)")


def test_approver_edits_and_approves_in_the_browser(live: Live, browser: Any) -> None:
    with httpx.Client(base_url=live.url) as client:
        assert client.post("/v1/predictions", json={"predictions": [churn_record("web-1")]},
                           headers=live.auth("feeder")).status_code == 200
        (decision,) = live.rt.decision_ids(["web-1"])
        pending = live.pending(decision, 2)
        sales = pending["sales"]
        assert client.post(f"/v1/approvals/{sales['id']}/approve",
                           json={"plan_hash": sales["plan_hash"]},
                           headers=live.auth("raj")).status_code == 200

    page = browser.new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{live.url}/inbox")
    assert "/login" in page.url
    page.get_by_label("API token").fill(live.tokens["dana"])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/inbox")
    link = page.locator(f"a[data-approval='{pending['finance']['id']}']")
    assert "ACC-10004" in link.inner_text()
    link.click()
    page.wait_for_selector("#edit-form")
    assert page.locator("svg .node.mine").count() == 1  # the finance step, highlighted
    assert page.locator("svg .node").count() == 4

    amount = page.get_by_label("amount")
    amount.fill("9000")
    page.get_by_role("button", name="Check changes").click()
    page.wait_for_selector("#edit-result.error")
    assert "over the limit of 500" in page.locator("#edit-result").inner_text()
    assert amount.get_attribute("aria-invalid") == "true"

    amount.fill("120")
    page.get_by_role("button", name="Check changes").click()
    page.locator("#edit-result", has_text="→ 120").wait_for()  # no eval: the CSP forbids it
    assert "goodwill_credit.amount: 200 → 120" in page.locator("#edit-result").inner_text()
    page.get_by_role("button", name="Approve with these changes").click()
    page.wait_for_url(f"**/decisions/{decision}**")
    # The service's worker applies the answer; the page refreshes until it settles.
    page.locator("#decision-status", has_text="completed").wait_for()
    executions = page.locator("#executions").inner_text()
    assert "finance.issue_credit" in executions and "succeeded" in executions
    (credit,) = live.rt.enterprise.effects("finance.issue_credit")
    assert credit.arguments["amount"] == 120
    if os.environ.get("DECISIONOPS_SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["DECISIONOPS_SCREENSHOTS"], "decision.png"),
                        full_page=True)
