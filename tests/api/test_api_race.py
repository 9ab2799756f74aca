"""Compare-and-set over real HTTP (catalog C3): two approvers racing on one approval, or
approve against reject, give one decision and one 409; the executor acts once; both
attempts are in the ledger."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Live, add_users, churn_record, live_server, make_app

ROUNDS = 8


def _decide(live: Live, n: int) -> str:
    record = churn_record(f"race-{n}", account=f"ACC-{10010 + n}")
    with httpx.Client(base_url=live.url) as client:
        assert client.post("/v1/predictions", json={"predictions": [record]},
                           headers=live.auth("feeder")).status_code == 200
    live.rt.triage_pending()
    work = live.rt.start_actionable()
    assert not work.errors, work.errors
    return live.rt.decision_ids([record["id"]])[0]


def _race(live: Live, calls: list[tuple[str, str, dict[str, Any]]]) -> list[int]:
    barrier = threading.Barrier(len(calls))
    statuses: list[int] = [0] * len(calls)

    def go(index: int, user: str, path: str, body: dict[str, Any]) -> None:
        with httpx.Client(base_url=live.url, timeout=30) as client:
            barrier.wait()
            statuses[index] = client.post(path, json=body, headers=live.auth(user)).status_code

    threads = [threading.Thread(target=go, args=(i, *c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_racing_answers_give_one_decision_and_one_409(live: Live) -> None:
    decisions = []
    for n in range(ROUNDS):
        decision = _decide(live, n)
        decisions.append(decision)
        pending = {a["function"]: a for a in live.rt.store.approvals(decision_id=decision,
                                                                     status="pending")}
        finance, sales = pending["finance"], pending["sales"]
        body = {"plan_hash": finance["plan_hash"]}
        approve_vs_approve = _race(live, [
            ("dana", f"/v1/approvals/{finance['id']}/approve", body),
            ("omar", f"/v1/approvals/{finance['id']}/approve", body)])
        assert sorted(approve_vs_approve) == [200, 409], approve_vs_approve
        approve_vs_reject = _race(live, [
            ("raj", f"/v1/approvals/{sales['id']}/approve", {"plan_hash": sales["plan_hash"]}),
            ("mia", f"/v1/approvals/{sales['id']}/reject",
             {"plan_hash": sales["plan_hash"], "reason": "no"})])
        assert sorted(approve_vs_reject) == [200, 409], approve_vs_reject
        refused = [e for e in live.rt.store.ledger_entries(decision)
                   if e.event == "approval.refused"]
        assert len(refused) == 2  # the losers are audited too
        assert {e.body["reason"] for e in refused} <= {"conflict", "replay"}
    sales_approved = 0
    for decision in decisions:
        assert live.rt.store.decision(decision)["status"] == "completed"
        sales = live.rt.store.approvals(decision_id=decision, function="sales")[0]
        sales_approved += sales["status"] == "approved"
    # The credit runs after the offer: once per decision whose sales part was approved
    # (a rejected offer skips it), never twice.
    credits = live.rt.enterprise.effects("finance.issue_credit")
    assert len(credits) == sales_approved
    assert len({c.idempotency_key for c in credits}) == sales_approved
    assert len(live.rt.enterprise.effects("support.open_ticket")) == ROUNDS


@pytest.mark.xfail(strict=True, reason="issue 11 finding 9: answers take the worker's lease")
def test_racing_approvers_under_serve_with_its_worker_never_get_a_5xx(tmp_path: Path) -> None:
    """150 approvers answer 25 decisions at once while ``serve``'s own worker loop applies
    answers: every valid answer gets 200 or a 409 conflict, never a server error."""
    app = make_app(tmp_path / "home", worker_interval_seconds=0.02)
    with live_server(app) as url:
        live = Live(url, app, add_users(app))
        records = [churn_record(f"serve-race-{n}", account=f"ACC-{10010 + n}")
                   for n in range(25)]
        with httpx.Client(base_url=url) as client:
            assert client.post("/v1/predictions", json={"predictions": records},
                               headers=live.auth("feeder")).status_code == 200
        decisions = live.rt.decision_ids(r["id"] for r in records)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            waiting = live.rt.store.approvals(status="pending", limit=1000)
            if len(waiting) == 2 * len(decisions):
                break
            time.sleep(0.1)
        calls = []
        for row in waiting:
            users = ("dana", "omar", "dana") if row["function"] == "finance" else ("raj", "mia",
                                                                                 "raj")
            calls += [(user, f"/v1/approvals/{row['id']}/approve",
                       {"plan_hash": row["plan_hash"]}) for user in users]
        assert len(calls) == 150
        statuses = _race(live, calls)
        assert [s for s in statuses if s >= 500] == []
        assert statuses.count(200) == len(waiting)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(live.rt.store.decision(d)["status"] == "completed" for d in decisions):
                break
            time.sleep(0.1)
        assert [live.rt.store.decision(d)["status"] for d in decisions] == ["completed"] * 25
