"""The inbox by keyboard in a real headless Chromium: a deep link survives the login,
j/k move, x selects, a approves the selection in bulk (results per request), and on a
request page a approves and opens the next one; no shortcut fires while typing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Live, add_users, churn_record, live_server, make_app
from tests.api.test_browser import pytestmark  # noqa: F401  (skip without it)
from tests.api.test_inbox_answers import late_payment, people_answer_sales
from tests.api.test_inbox_layout import assert_fits


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    app = make_app(tmp_path / "home", worker_interval_seconds=0.05,
                   functions=people_answer_sales)
    with live_server(app) as url:
        yield Live(url, app, add_users(app))


def test_approver_works_the_inbox_from_the_keyboard(live: Live, browser: Any) -> None:
    records = [late_payment(f"lp-{n}", f"ACC-1000{n}") for n in (1, 2, 3)]
    records.append(churn_record("churn-1", account="ACC-10005"))
    with httpx.Client(base_url=live.url) as client:
        assert client.post("/v1/predictions", json={"predictions": records},
                           headers=live.auth("feeder")).status_code == 200
    decisions = live.rt.decision_ids([r["id"] for r in records])
    sales = [live.pending(d, 1 if n < 3 else 2)["sales"] for n, d in enumerate(decisions)]

    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.set_default_timeout(10_000)
    deep = f"/inbox/requests/{sales[0]['id']}"
    page.goto(live.url + deep)
    assert "/login" in page.url
    page.get_by_label("API token").fill(live.tokens["raj"])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{deep}")  # landed on the linked request, not the inbox

    page.goto(f"{live.url}/inbox")
    order = page.locator("tr[data-row]").evaluate_all("rows => rows.map(r => r.dataset.row)")
    assert sorted(order) == sorted(s["id"] for s in sales)
    low = [i for i in order if i != sales[3]["id"]]
    page.keyboard.press("?")
    assert page.locator("#keys-help").get_attribute("open") is not None
    page.keyboard.press("?")

    page.keyboard.press("j")  # first row
    assert page.locator("tr.current").get_attribute("data-row") == order[0]
    page.keyboard.press("x")
    page.keyboard.press("j")
    page.keyboard.press("x")
    page.keyboard.press("k")
    assert page.locator("tr.current").get_attribute("data-row") == order[0]
    selected = page.locator("input.select:checked").evaluate_all(
        "boxes => boxes.map(b => b.value)")
    assert selected == [i for i in order[:2] if i in low]
    page.get_by_label("Comment for each approval (optional)").fill("ax")  # typing: no shortcut
    assert page.locator("input.select:checked").count() == len(selected)
    page.locator("h1").click()
    page.keyboard.press("a")
    page.wait_for_selector("#bulk-results")
    results = page.locator("#bulk-results").inner_text()
    assert f"{len(selected)} approved, 0 refused" in results
    assert_fits(page, "bulk results 390x844")
    for approval_id in selected:
        assert live.rt.store.approvals.get(approval_id).approver == "raj@sales"

    remaining = [i for i in order if i not in selected]
    page.goto(f"{live.url}/inbox/requests/{remaining[0]}")
    page.keyboard.press("a")  # approve and open the next request
    page.wait_for_url(f"**/inbox/requests/{remaining[1]}?answered=approved")
    assert live.rt.store.approvals.get(remaining[0]).status.value == "approved"
    page.keyboard.press("r")
    assert page.evaluate("document.activeElement.id") == "reject-reason"
    page.keyboard.type("already paid; a call is not needed")  # 'a' typed, nothing approved
    assert live.rt.store.approvals.get(remaining[1]).status.value == "pending"
    page.get_by_role("button", name="Reject and open next").click()
    after = f"/inbox/requests/{remaining[2]}" if len(remaining) > 2 else "/inbox"
    page.wait_for_url(f"**{after}?answered=rejected")
    assert live.rt.store.approvals.get(remaining[1]).status.value == "rejected"
