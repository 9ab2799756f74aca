"""Compare-and-set over real HTTP (catalog C3): two approvers racing on one approval, or
approve against reject, give one decision and one 409; the executor acts once; both
attempts are in the ledger."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.api.conftest import Live, add_users, churn_record, live_server, make_app

ROUNDS = 8


def _decide(live: Live, n: int) -> str:
    record = churn_record(f"race-{n}", account=f"ACC-{10010 + n}")
    with httpx.Client(base_url=live.url) as client:
        assert client.post("/v1/predictions", json={"predictions": [record]},
                           headers=live.auth("feeder")).status_code == 200
    decision = live.rt.decision_ids([record["id"]])[0]
    live.pending(decision, 2)  # the service's worker triaged, planned and asked
    return decision


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
        pending = live.pending(decision, 2)
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
        refused = [e for e in live.rt.store.ledger.entries(decision)
                   if e.event == "approval.refused"]
        assert len(refused) == 2  # the losers are audited too
        # the loser is told who answered, whether it lost before or at the write
        assert {e.body["reason"] for e in refused} == {"replay"}
        assert all("was already answered" in e.body["message"] for e in refused)
    sales_approved = 0
    for decision in decisions:
        assert live.settled(decision) == "completed"
        sales = live.rt.store.approvals.list(decision_id=decision, function="sales")[0]
        sales_approved += sales.status == "approved"
    # The credit runs after the offer: once per decision whose sales part was approved
    # (a rejected offer skips it), never twice.
    credits = live.rt.enterprise.effects("finance.issue_credit")
    assert len(credits) == sales_approved
    assert len({c.idempotency_key for c in credits}) == sales_approved
    assert len(live.rt.enterprise.effects("support.open_ticket")) == ROUNDS


def test_racing_approvers_under_serve_with_its_worker_never_get_a_5xx(tmp_path: Path) -> None:
    """150 approvers answer 25 decisions (three racers per request) while ``serve``'s own
    worker loop applies answers: every valid answer gets 200 or a 409 conflict, never a
    server error, and every decision completes. Black-box, over HTTP only."""
    app = make_app(tmp_path / "home", worker_interval_seconds=0.02)
    with live_server(app) as url:
        live = Live(url, app, add_users(app))
        records = [churn_record(f"serve-race-{n}", account=f"ACC-{10010 + n}")
                   for n in range(25)]
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.post("/v1/predictions", json={"predictions": records},
                               headers=live.auth("feeder")).status_code == 200
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                waiting = client.get("/v1/approvals", params={"limit": 1000},
                                     headers=live.auth("olga")).json()
                if len(waiting) == 50:
                    break
                time.sleep(0.1)
        assert len(waiting) == 50
        racers = {"finance": ("dana", "omar", "dana"), "sales": ("raj", "mia", "raj")}
        groups = [[(user, f"/v1/approvals/{row['id']}/approve", {"plan_hash": row["plan_hash"]})
                   for user in racers[row["function"]]] for row in waiting]
        statuses: list[int] = []
        lock = threading.Lock()

        def race(group: list[tuple[str, str, dict[str, Any]]]) -> None:
            got = _race(live, group)  # the three answers to one request at the same instant
            with lock:
                statuses.extend(got)

        # 16 requests raced at once (48 connections), while the worker applies answers.
        for i in range(0, len(groups), 16):
            threads = [threading.Thread(target=race, args=(g,)) for g in groups[i:i + 16]]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert len(statuses) == 150
        assert [s for s in statuses if s >= 500] == []
        assert statuses.count(200) == 50 and statuses.count(409) == 100
        with httpx.Client(base_url=url, timeout=30) as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                states = [d["status"] for d in client.get(
                    "/v1/decisions", params={"limit": 100}, headers=live.auth("olga")).json()]
                if states == ["completed"] * 25:
                    break
                time.sleep(0.2)
        assert states == ["completed"] * 25
