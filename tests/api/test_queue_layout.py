"""The needs-a-human queue page (real headless Chromium) fits a phone and a wide screen
as the inbox does (the same measurement: tests/api/test_inbox_layout.py), and a person
can answer from it on a phone: dismiss one prediction, and the page says so."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import Live
from tests.api.test_browser import pytestmark  # noqa: F401  (skip without it)
from tests.api.test_inbox_layout import VIEWPORTS, assert_fits, browser, live, login  # noqa: F401


def _unplannable() -> list[dict[str, Any]]:
    base = {"model": "risk-model-with-a-rather-long-name", "model_version": "2026.12.04-rc1",
            "entity_type": "account", "observed_at": "2026-11-30T08:00:00Z"}
    return [
        {**base, "id": "queue-fraud-transaction-screening-0001", "kind": "card_not_present_fraud",
         "entity_id": "ACC-10003", "score": 0.97, "value_at_stake": 18_000},
        {**base, "id": "queue-churn-without-value-0002", "kind": "churn",
         "entity_id": "ACC-10004", "score": 0.88},
    ]


@pytest.mark.parametrize("viewport", VIEWPORTS.values(), ids=list(VIEWPORTS))
def test_the_queue_fits_and_can_be_answered_on_any_screen(
        live: Live, browser: Any, viewport: tuple[int, int]) -> None:
    records = _unplannable()
    with httpx.Client(base_url=live.url) as client:
        assert client.post("/v1/predictions", json={"predictions": records},
                           headers=live.auth("feeder")).status_code == 200
    live.rt.triage_pending()
    size = f"{viewport[0]}x{viewport[1]}"
    page = login(browser, live, "olga", "/queue", viewport)
    for record in records:
        assert page.locator(f"text={record['id']}").count() >= 1 or record["id"] in page.content()
    assert_fits(page, f"queue {size}")

    row = page.locator("tr", has_text="card_not_present_fraud")
    row.get_by_label("Reason").fill("not ours: the fraud team handles it")
    row.get_by_role("button", name="Dismiss").click()
    page.wait_for_selector("[role=status]")
    assert "card_not_present_fraud" not in page.content()
    assert_fits(page, f"queue after an answer {size}")
