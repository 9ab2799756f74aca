"""Service latency over real HTTP (uvicorn on 127.0.0.1, embedded SQLite, reference
enterprise):

* approve -> first tool call: an approver's POST .../approve that completes the last
  pending part of a churn plan, until the first effect is recorded at the enterprise
  (its ``tool_calls`` row time, millisecond resolution). As in ``decisionops serve``,
  the request only records the answer (the approval service); the service's own worker
  loop, woken at once by the answer, applies it and executes the plan. Also: the POST's
  own round trip (recording the answer), and approve -> decision completed (the
  decision's ``finished_at``: every step executed and recorded).
  The decisions themselves are started by the service's worker too; ingest does not
  wake it, so the bench wakes it after each ingest rather than wait out its poll
  interval (that wait is not measured). The other part of the plan (sales) is approved
  first; its answer waits in the store (a decision's answers go to its graph together,
  once every function it asked has answered), so the measured answer's leg applies
  both and executes the plan.
* the same answers while the service's worker plans a backlog of 10,000 new predictions
  (queued after the answered decisions were started; each on an account of its own,
  added to the reference CRM first, so each is planned, checked and routed to its
  approvers): answers are applied between two new decisions, not after the backlog
  (issue 12, fair scheduling). Also: how many backlog decisions were
  started while they were measured.
* inbox listing with 10,000 pending approvals: ``GET /v1/approvals`` (the 200 most
  urgent) for an approver and for an operator, and the HTML ``/inbox`` page; served by
  a second app on the same data with its worker loop off (the seeded requests are
  listing load, not work for a worker).

Targets: approve -> first tool call p95 <= 50 ms, idle and under the backlog; inbox p95
<= 200 ms. The last lines are ``p95_ms: <approve -> first tool call p95>`` and
``p95_ms_under_backlog:``.

    python bench/service.py [--rounds 60] [--pending 10000] [--backlog 10000]
"""

from __future__ import annotations

import argparse
import socket
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from decisionops.agent.api import ServiceSettings, add_user, create_app
from decisionops.agent.errors import NotFoundError
from decisionops.agent.models import DecisionStatus, Prediction, decision_id_for
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from decisionops.agent.store import ApprovalRow, DecisionRow
from decisionops.agent.store import _tables as t


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _line(name: str, values: list[float]) -> str:
    return (f"{name:<44} n={len(values):<5} p50={_pct(values, .5):7.1f} ms  "
            f"p95={_pct(values, .95):7.1f} ms  max={max(values):7.1f} ms")


@contextmanager
def _server(app: Any) -> Iterator[str]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this. asyncio sets it only on sockets made with
    # proto=IPPROTO_TCP; without it a keep-alive connection's next response waited for
    # the client's delayed ACK (about 40 ms a request, the service's time or not).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _client(url: str, **options: Any) -> httpx.Client:
    """An HTTP client that sends a request's headers and body without Nagle's delay (as
    curl and browsers do): httpx writes them separately, and the body would wait for
    the server's delayed ACK of the headers (40 ms on Linux), which is not the service's
    time."""
    transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    return httpx.Client(base_url=url, timeout=60, transport=transport, **options)


def _record(pid: str, account: str) -> dict[str, Any]:
    return {"id": pid, "model": "churn-gbm", "model_version": "bench", "kind": "churn",
            "entity_type": "account", "entity_id": account, "score": 0.9,
            "value_at_stake": 40_000, "observed_at": "2026-11-20T08:00:00Z",
            "features": {"segment": "enterprise", "plan": "scale"}}


def _effect_time(created_at: str) -> float:
    return datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp()


def _wait(what: str, probe: Any, *args: Any, timeout: float = 60.0) -> Any:
    """Poll ``probe(*args)`` until it returns something truthy. The figures come from stored
    timestamps, so the polling interval is not in them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe(*args)
        if found:
            return found
        time.sleep(0.01)
    raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")


def _waiting_on_people(rt: Runtime, decision_id: str) -> dict[str, ApprovalRow] | None:
    """The decision's pending requests by function, once its leg has ended waiting on
    them (lease given back); None before."""
    try:
        decision = rt.store.decisions.get(decision_id)
    except NotFoundError:
        return None
    if decision.status is not DecisionStatus.AWAITING_APPROVAL or decision.lease_owner:
        return None
    return {a.function: a for a in rt.store.approvals.list(decision_id=decision_id,
                                                            status="pending")}


def _finished(rt: Runtime, decision_id: str) -> DecisionRow | None:
    decision = rt.store.decisions.get(decision_id)
    return decision if decision.terminal else None


def bench_approve(client: httpx.Client, rt: Runtime, tokens: dict[str, str], rounds: int,
                  start: int = 0) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"first_call": [], "post": [], "completed": []}
    for n in range(start, start + rounds):
        # Sales answered first: the measured answer completes the set.
        (finance,) = _prepare(client, rt, tokens, n, 1)
        decision_id = finance.decision_id
        known = {e.idempotency_key for e in rt.enterprise.effects()}
        sent = time.time()
        began = time.perf_counter()
        done = client.post(f"/v1/approvals/{finance.id}/approve",
                           json={"plan_hash": finance.plan_hash},
                           headers={"Authorization": f"Bearer {tokens['dana']}"})
        out["post"].append((time.perf_counter() - began) * 1000)
        done.raise_for_status()
        assert done.json()["pending_approvals"] == [], done.json()
        decision = _wait(f"{decision_id} to finish", _finished, rt, decision_id)
        assert decision.status is DecisionStatus.COMPLETED, (decision.status, decision.error)
        assert decision.finished_at is not None
        new = [e for e in rt.enterprise.effects() if e.idempotency_key not in known]
        first = min(_effect_time(e.created_at) for e in new)
        out["first_call"].append(max(0.0, (first - sent) * 1000))
        out["completed"].append(max(0.0, (decision.finished_at.timestamp() - sent) * 1000))
    return out


def _prepare(client: httpx.Client, rt: Runtime, tokens: dict[str, str], start: int,
             count: int) -> list[ApprovalRow]:
    """``count`` decisions waiting only on their finance request (sales answered)."""
    waiting = []
    for n in range(start, start + count):
        record = _record(f"bench-{n}", f"ACC-{10001 + n}")
        client.post("/v1/predictions", json={"predictions": [record]},
                    headers={"Authorization": f"Bearer {tokens['feeder']}"}).raise_for_status()
        decision_id = decision_id_for(record["id"])
        # The service's worker triages and starts it. Ingest wakes workers of other
        # processes (NOTIFY on PostgreSQL), not this SQLite one's: wake it as an answer does.
        assert rt.approvals.on_answer is not None, "the service's worker loop is off"
        rt.approvals.on_answer(decision_id)
        pending = _wait(f"{decision_id} to wait on approvals", _waiting_on_people, rt,
                        decision_id)
        sales = client.post(f"/v1/approvals/{pending['sales'].id}/approve",
                            json={"plan_hash": pending["sales"].plan_hash},
                            headers={"Authorization": f"Bearer {tokens['raj']}"})
        sales.raise_for_status()
        # Recorded, and kept in the store: a decision's answers go to its graph together,
        # once every function it asked has answered, so the worker has nothing to apply
        # until finance answers (the measured answer, which completes the set).
        assert sales.json()["pending_approvals"] == [pending["finance"].id], sales.json()
        waiting.append(pending["finance"])
    return waiting


def _backlog_accounts(rt: Runtime, n: int) -> None:
    """The backlog's accounts, added to the reference CRM as another system would add
    them: each backlog decision passes the target check and is planned and routed (a
    prediction for an account the CRM does not know stops at the check, needs_human,
    and would be a lighter load than planning)."""
    path = rt.enterprise.url.removeprefix("sqlite:///")
    with sqlite3.connect(path, timeout=30) as conn:
        conn.executemany(
            "insert or ignore into accounts (account_id, name, region, segment, plan, arr, "
            "currency, account_manager, tenure_months, notes) values (?, ?, 'EU', "
            "'enterprise', 'scale', 120000, 'EUR', 'am@example.com', 24, '')",
            [(f"ACC-9{i:06d}", f"Backlog account {i}") for i in range(n)])


def bench_under_backlog(client: httpx.Client, rt: Runtime, tokens: dict[str, str],
                        rounds: int, backlog: int, start: int) -> dict[str, Any]:
    """approve -> first tool call while the same worker loop plans ``backlog`` new
    predictions (queued before the answers; triaged, claimed and started meanwhile)."""
    waiting = _prepare(client, rt, tokens, start, rounds)
    _backlog_accounts(rt, backlog)
    now = datetime.now(UTC).isoformat()
    queue = [Prediction.model_validate(_record(f"backlog-{i}", f"ACC-9{i:06d}")
                                       | {"observed_at": now}) for i in range(backlog)]
    for first in range(0, backlog, 5000):
        rt.ingest(queue[first:first + 5000], source="bench:backlog")
    rt.approvals.on_answer("")  # the worker starts on the backlog
    _wait("the backlog to be under way", lambda: rt.store.decisions.counts().get(
        "awaiting_approval", 0) + rt.store.decisions.counts().get("failed", 0) > rounds + 50)
    before = sum(rt.store.decisions.counts().values())
    out: dict[str, Any] = {"first_call": [], "completed": []}
    for finance in waiting:
        decision_id = finance.decision_id
        sent = time.time()
        client.post(f"/v1/approvals/{finance.id}/approve", json={"plan_hash": finance.plan_hash},
                    headers={"Authorization": f"Bearer {tokens['dana']}"}).raise_for_status()
        decision = _wait(f"{decision_id} to finish", _finished, rt, decision_id)
        assert decision.status is DecisionStatus.COMPLETED, (decision.status, decision.error)
        assert decision.finished_at is not None
        keys = {x.idempotency_key for x in rt.store.executions.list(decision_id)}
        first = min(_effect_time(e.created_at) for e in rt.enterprise.effects()
                    if e.idempotency_key in keys)
        out["first_call"].append(max(0.0, (first - sent) * 1000))
        out["completed"].append(max(0.0, (decision.finished_at.timestamp() - sent) * 1000))
    out["started_meanwhile"] = sum(rt.store.decisions.counts().values()) - before
    out["backlog_left"] = rt.store.predictions.queue_depth()
    return out


def seed_pending(rt: Runtime, count: int) -> None:
    """``count`` pending finance approvals (copies of a real request), in bulk."""
    template = rt.store.approvals.list(status="pending", limit=1)
    request = template[0].request.model_dump(mode="json") if template else {}
    now = datetime.now(UTC)
    predictions, decisions, approvals = [], [], []
    for i in range(count):
        pid, did = f"seed-{i}", f"dec_seed_{i:06d}"
        payload = _record(pid, f"ACC-{10001 + i % 240}") | {"value_at_stake": 1000 + i}
        predictions.append({"id": pid, "kind": "churn", "entity_type": "account",
                            "entity_id": payload["entity_id"], "model": "churn-gbm",
                            "model_version": "bench", "score": 0.9,
                            "value_at_stake": payload["value_at_stake"],
                            "observed_at": now, "payload": payload, "source": "bench",
                            "ingested_at": now, "triage_action": "act", "triage_reason": "act",
                            "triaged_at": now})
        decisions.append({"id": did, "prediction_id": pid, "kind": "churn",
                          "entity_id": payload["entity_id"], "status": "awaiting_approval",
                          "plan_version": 1, "plan_hash": "0" * 64, "created_at": now,
                          "updated_at": now, "fence": 0})
        approvals.append({"id": f"apr_seed_{i:06d}", "decision_id": did, "plan_version": 1,
                          "plan_hash": "0" * 64, "function": "finance", "status": "pending",
                          "reason": "bench", "request": request | {"decision_id": did},
                          "requested_at": now, "deadline": now + timedelta(minutes=i % 1440)})
    with rt.store.transaction() as conn:
        for rows, table in ((predictions, t.predictions), (decisions, t.decisions),
                            (approvals, t.approvals)):
            for start in range(0, len(rows), 2000):
                conn.execute(insert(table), rows[start:start + 2000])


def bench_inbox(client: httpx.Client, url: str, tokens: dict[str, str], repeat: int
                ) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"approver": [], "operator": [], "html": []}
    login = client.get("/login")
    csrf = login.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    web = _client(url, cookies=client.cookies)
    web.cookies.update(login.cookies)
    web.post("/login", data={"token": tokens["dana"], "csrf_token": csrf, "next": "/inbox"})
    for _ in range(repeat):
        for who, token in (("approver", tokens["dana"]), ("operator", tokens["olga"])):
            began = time.perf_counter()
            response = client.get("/v1/approvals", headers={"Authorization": f"Bearer {token}"})
            out[who].append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200 and len(response.json()) == 200
        began = time.perf_counter()
        page = web.get("/inbox")
        out["html"].append((time.perf_counter() - began) * 1000)
        assert page.status_code == 200 and "pending request" in page.text
    web.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: python bench/service.py --rounds 60 --pending 10000 --backlog 10000")
    parser.add_argument("--rounds", type=int, default=60,
                        help="answers measured, idle and under the backlog (1 to 110)")
    parser.add_argument("--pending", type=int, default=10_000,
                        help="pending requests seeded for the inbox listing (at least 200: "
                        "a page holds the 200 most urgent)")
    parser.add_argument("--repeat", type=int, default=40, help="inbox requests of each kind")
    parser.add_argument("--backlog", type=int, default=10_000,
                        help="predictions the loop plans while the answers of the last "
                        "part are measured (0: skip it; else at least 100, so the answers "
                        "are sent with 50 backlog decisions started and more to come)")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 110:
        parser.error(f"--rounds must be 1 to 110 (each round, idle and under the backlog, "
                     f"takes an account of the reference CRM's 234), not {args.rounds}")
    if args.pending < 200:
        parser.error(f"--pending must be at least 200, not {args.pending}")
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, not {args.repeat}")
    if args.backlog and args.backlog < 100:
        parser.error(f"--backlog must be 0 or at least 100, not {args.backlog}")
    with tempfile.TemporaryDirectory(prefix="decisionops-bench-") as folder:
        settings = Settings(holdout_share=0, home=Path(folder) / "home")
        # The service as `decisionops serve` runs it: its worker loop on (default poll).
        app = create_app(settings, service=ServiceSettings(),
                         runtime_factory=lambda: Runtime(settings, actor="bench"))
        with _server(app) as url, _client(url) as client:
            rt: Runtime = app.state.service.runtime
            tokens = {name: add_user(rt, name, role=role, functions=fns, actor="bench")[0]
                      for name, role, fns in (("dana", "approver", ["finance"]),
                                              ("raj", "approver", ["sales"]),
                                              ("olga", "operator", []),
                                              ("feeder", "ingest", []))}
            bench_approve(client, rt, tokens, 5)  # warm-up
            approve = bench_approve(client, rt, tokens, args.rounds, start=5)
            # One request left pending, the template of the seeded ones.
            record = _record("bench-template", f"ACC-{10001 + 5 + args.rounds}")
            client.post("/v1/predictions", json={"predictions": [record]},
                        headers={"Authorization": f"Bearer {tokens['feeder']}"}
                        ).raise_for_status()
            rt.approvals.on_answer(decision_id_for(record["id"]))  # wake the worker
            _wait("the template request", _waiting_on_people, rt, decision_id_for(record["id"]))
            busy = (bench_under_backlog(client, rt, tokens, args.rounds, args.backlog,
                                        start=5 + args.rounds + 1) if args.backlog else None)
        inbox_app = create_app(settings, service=ServiceSettings(worker_interval_seconds=0),
                               runtime_factory=lambda: Runtime(settings, actor="bench"))
        with _server(inbox_app) as url, _client(url) as client:
            seed_pending(inbox_app.state.service.runtime, args.pending)
            inbox = bench_inbox(client, url, tokens, args.repeat)
    print(f"service bench: SQLite, reference enterprise, uvicorn on loopback; "
          f"{args.rounds} approvals, {args.pending:,} pending for the inbox")
    print(_line("approve -> first tool call", approve["first_call"]))
    print(_line("approve POST round trip (records it)", approve["post"]))
    print(_line("approve -> decision completed", approve["completed"]))
    if busy is not None:
        print(_line(f"approve -> first tool call, {args.backlog:,} backlog", busy["first_call"]))
        print(_line(f"approve -> completed, {args.backlog:,} backlog", busy["completed"]))
        print(f"  backlog decisions started while these were measured: "
              f"{busy['started_meanwhile']:,}; predictions still queued: {busy['backlog_left']:,}")
    size = f"{args.pending // 1000}k" if args.pending % 1000 == 0 else f"{args.pending}"
    print(_line(f"GET /v1/approvals, approver ({size} pending)", inbox["approver"]))
    print(_line(f"GET /v1/approvals, operator ({size} pending)", inbox["operator"]))
    print(_line(f"GET /inbox HTML, approver ({size} pending)", inbox["html"]))
    print(f"inbox_p95_ms: {max(_pct(v, .95) for v in inbox.values()):.1f}")
    print(f"p95_ms: {_pct(approve['first_call'], .95):.1f}")
    if busy is not None:
        print(f"p95_ms_under_backlog: {_pct(busy['first_call'], .95):.1f} (goal <= 50)")


if __name__ == "__main__":
    main()
