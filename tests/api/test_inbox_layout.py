"""The inbox fits a phone and a wide screen (real headless Chromium): at 390x844 and
1440x900 the inbox list, a request page and a decision page scroll only vertically, and
no word is split across lines; so does the needs-a-human queue page, which a person can
answer from on a phone.

"No mid-word break" is measured, not assumed: every word of every visible text node is
laid out with a DOM ``Range``; a word whose boxes sit on more than one line was split.
Long tokens may wrap only where the page offers a break (after a hyphen, or at a ``<wbr>``
after ``_ . - @ /``: the word is then two text nodes) or be truncated with an ellipsis, the full value in the
element's ``title``. The styles that split words anywhere (``word-break: break-all``,
``overflow-wrap: anywhere``, ``hyphens: auto``) are refused on any text.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Live, add_users, churn_record, live_server, make_app
from tests.api.test_browser import pytestmark  # noqa: F401  (skip without it)
from tests.api.test_inbox_answers import late_payment, people_answer_sales

VIEWPORTS = {"phone": (390, 844), "wide": (1440, 900)}

LAYOUT = """
() => {
  const problems = [];
  const ellipsisBox = (el) => {
    for (let e = el; e && e !== document.body; e = e.parentElement) {
      const s = getComputedStyle(e);
      if (s.textOverflow === 'ellipsis' && s.overflowX !== 'visible') { return e; }
    }
    return null;
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let node, words = 0;
  while ((node = walker.nextNode())) {
    const el = node.parentElement;
    if (!el || !node.data.trim() || el.closest('script, style, title, dialog:not([open])')) {
      continue;
    }
    if (!el.getClientRects().length) { continue; }  // not rendered
    const style = getComputedStyle(el);
    const where = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + ' "' +
                  node.data.trim().slice(0, 40) + '"';
    if (style.wordBreak === 'break-all' || style.overflowWrap === 'anywhere' ||
        style.hyphens === 'auto') {
      problems.push('splitting style on ' + where + ': word-break ' + style.wordBreak +
                    ', overflow-wrap ' + style.overflowWrap + ', hyphens ' + style.hyphens);
    }
    const box = ellipsisBox(el);
    if (box) {
      if (box.scrollWidth > box.clientWidth + 1 &&
          (box.getAttribute('title') || '').trim() !== box.textContent.trim()) {
        problems.push('truncated without the full value in its title: ' + where);
      }
      continue;
    }
    const re = /[^\\s-]+-?|-/g;  // a hyphen ends a word: browsers may break after it
    let m;
    while ((m = re.exec(node.data))) {
      words += 1;
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const rects = Array.from(range.getClientRects()).filter((r) => r.width > 0.5);
      if (!rects.length) { continue; }
      const tops = rects.map((r) => r.top), height = Math.min(...rects.map((r) => r.height));
      if (Math.max(...tops) - Math.min(...tops) > height / 2) {
        problems.push('word split across lines: "' + m[0] + '" in ' + where);
      }
      const right = Math.max(...rects.map((r) => r.right));
      if (right > window.innerWidth + 0.5) {
        problems.push('word runs off the screen (' + Math.round(right) + 'px): "' + m[0] +
                      '" in ' + where);
      }
    }
  }
  const scroller = document.scrollingElement;
  return {problems: problems, words: words, scrollWidth: scroller.scrollWidth,
          innerWidth: window.innerWidth};
}
"""


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """Sales answers every request itself, so low-risk requests (bulk approve) show."""
    app = make_app(tmp_path / "home", worker_interval_seconds=0.05,
                   functions=people_answer_sales)
    with live_server(app) as url:
        yield Live(url, app, add_users(app))


def login(browser: Any, live: Live, user: str, path: str, viewport: tuple[int, int]) -> Any:
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    page.set_default_timeout(10_000)
    page.goto(f"{live.url}{path}")
    page.get_by_label("API token").fill(live.tokens[user])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{path}")
    return page


def assert_fits(page: Any, what: str) -> None:
    report = page.evaluate(LAYOUT)
    assert report["words"] > 50, f"{what}: too little text measured ({report['words']} words)"
    assert report["scrollWidth"] <= report["innerWidth"], (
        f"{what}: horizontal scroll ({report['scrollWidth']}px content in "
        f"{report['innerWidth']}px)")
    assert not report["problems"], f"{what}:\n" + "\n".join(report["problems"][:20])
    if os.environ.get("DECISIONOPS_SCREENSHOTS"):
        name = what.replace(" ", "-")
        page.screenshot(path=os.path.join(os.environ["DECISIONOPS_SCREENSHOTS"], f"{name}.png"),
                        full_page=True)


@pytest.mark.parametrize("viewport", VIEWPORTS.values(), ids=list(VIEWPORTS))
def test_inbox_and_request_fit_without_horizontal_scroll_or_split_words(
        live: Live, browser: Any, viewport: tuple[int, int]) -> None:
    records = [churn_record(f"layout-{n}", account=account, value=value,
                            segment="enterprise_strategic_accounts_emea_north",
                            contract_reference="MSA-2026/ACME-INTERNATIONAL-HOLDINGS-0042")
               for n, (account, value) in enumerate([("ACC-10004", 40_000),
                                                      ("ACC-10001", 25_000)])]
    records.append(late_payment("layout-lp", "ACC-10002"))
    with httpx.Client(base_url=live.url) as client:
        assert client.post("/v1/predictions", json={"predictions": records},
                           headers=live.auth("feeder")).status_code == 200
    decisions = live.rt.decision_ids([r["id"] for r in records])
    sales = [live.pending(d, 2 if n < 2 else 1)["sales"] for n, d in enumerate(decisions)]

    size = f"{viewport[0]}x{viewport[1]}"
    page = login(browser, live, "raj", "/inbox", viewport)
    assert page.locator("[data-approval]").count() == 3
    assert page.locator("input.select").count() == 1  # the low-risk one: bulk approve
    assert_fits(page, f"inbox list {size}")

    page.goto(f"{live.url}/inbox/requests/{sales[0]['id']}")
    page.wait_for_selector("#approve-form")
    assert_fits(page, f"request page {size}")

    page.goto(f"{live.url}/decisions/{decisions[0]}")
    page.wait_for_selector("#decision-status")
    assert_fits(page, f"decision page {size}")


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


@pytest.mark.parametrize("viewport", VIEWPORTS.values(), ids=list(VIEWPORTS))
def test_a_plan_by_hand_can_be_written_on_any_screen(
        live: Live, browser: Any, viewport: tuple[int, int]) -> None:
    records = _unplannable()
    with httpx.Client(base_url=live.url) as client:
        assert client.post("/v1/predictions", json={"predictions": records[:1]},
                           headers=live.auth("feeder")).status_code == 200
    live.rt.triage_pending()
    size = f"{viewport[0]}x{viewport[1]}"
    page = login(browser, live, "olga", "/queue", viewport)
    row = page.locator("tr", has_text="card_not_present_fraud")
    row.get_by_text("Plan by hand").click()
    assert_fits(page, f"queue with the hand plan form open {size}")
    row.get_by_label("Steps").fill(
        "- id: call\n  function: sales\n  tool: crm.create_task\n  arguments: {account_id: "
        "ACC-10003, owner_role: account_manager, subject: call them, due_in_days: 1}\n")
    row.get_by_role("button", name="Submit plan").click()
    page.wait_for_selector("[role=status]")
    assert "card_not_present_fraud" not in page.content()
    view = live.rt.store.prediction_views.get(records[0]["id"])
    assert (view.outcome, view.reason) == ("act", "planned_by_hand")
