"""Planning lanes (issue 12): a worker plans several decisions at once with a planner that
waits on a model, applies answers while models think (or, with the playbook planner,
between two decisions), wakes on answers recorded by other processes (PostgreSQL
NOTIFY), keeps the lease of a decision whose model is slow, and never plans a decision
twice, with two workers and leases shorter than a model call.

The model is the scripted OpenAI-compatible server over loopback HTTP (the real
``openai`` client); its responder submits the playbook plan the prompt quotes, and
blocks where a test needs a model that is still thinking. Nothing here is timed: the
tests wait on barriers and events, with generous timeouts only to fail instead of hang.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from decisionops.agent.models import Approve
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from decisionops.agent.worker import Worker, wait_for
from decisionops.evals.scripted import ScriptedServer, careful_model, error
from tests.graphs.conftest import churn
from tests.support import answer, approver

Responder = Callable[[dict[str, Any]], dict[str, Any]]


class Model:
    """A careful model whose answers can be held back (``gate``) and which counts the
    calls it is answering at once."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most = 0
        self.calls: list[str] = []
        self.barrier: threading.Barrier | None = None

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            self.calls.append(str(body["messages"][-1]["content"])[:4000])
        try:
            if self.barrier is not None:
                try:
                    self.barrier.wait(timeout=20)
                except threading.BrokenBarrierError:
                    return error(503, "the calls did not overlap")
            if not self.gate.wait(timeout=30):
                return error(503, "the test never let the model answer")
            return careful_model(body)
        finally:
            with self.lock:
                self.in_flight -= 1


@pytest.fixture
def model() -> Iterator[tuple[Model, ScriptedServer]]:
    responder = Model()
    with ScriptedServer(responder) as server:
        yield responder, server


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("pg_url") if request.param == "postgres" else None


def _settings(home: Path, server: ScriptedServer, db_url: str | None, **more: Any) -> Settings:
    return Settings(home=home, database_url=db_url, planner="llm", llm_base_url=server.url,
                    llm_model="gpt-test", llm_mode="tools", plan_cache_ttl_hours=0,
                    llm_backoff_seconds=0, llm_max_retries=0, tool_backoff_seconds=0.01,
                    **more)


def _accounts(rt: Runtime, n: int, skip: int = 0) -> list[str]:
    return [a["account_id"] for a in rt.enterprise.rows("accounts")[skip:skip + n]]


def _ingest(rt: Runtime, n: int, *, skip: int = 0, prefix: str = "p") -> list[str]:
    predictions = [churn(f"{prefix}-{i}", account=a, value=40_000)
                   for i, a in enumerate(_accounts(rt, n, skip))]
    rt.ingest(predictions, source="test")
    return [p.id for p in predictions]


@contextmanager
def running(rt: Runtime, *, poll_seconds: float) -> Iterator[Worker]:
    """A worker's continuous loop in a thread (as ``decisionops run``), stopped on exit.
    A long ``poll_seconds`` means only a wake-up explains a quick reaction."""
    worker = Worker(rt, poll_seconds=poll_seconds)
    loop = threading.Thread(target=worker.run, daemon=True)
    loop.start()
    try:
        yield worker
    finally:
        worker.stop()
        loop.join(timeout=30)
    assert not loop.is_alive()


def _approver(rt: Runtime, function: str) -> str:
    return rt.policies.functions[function].approvers[0]


def _llm_calls_by_decision(rt: Runtime) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rt.store.llm.llm_calls():
        counts[row["decision_id"]] = counts.get(row["decision_id"], 0) + 1
    return counts


def test_a_worker_loads_its_model_client_before_it_takes_work(
        tmp_path: Path, model: tuple[Model, ScriptedServer]) -> None:
    """Loading the ``openai`` client (its import: most of a second of CPU) is start-up
    work: a worker does it before its first tick, so the first decision it takes, and
    the other workers sharing the machine's cores, do not pay it mid-loop."""
    _, server = model
    with Runtime(_settings(tmp_path / "home", server, None)) as rt:
        assert not rt.planner.ready  # a command that never plans never loads it
        Worker(rt).run(max_ticks=1)
        assert rt.planner.ready


def test_a_worker_plans_several_decisions_at_once(
        tmp_path: Path, model: tuple[Model, ScriptedServer], db_url: str | None) -> None:
    responder, server = model
    responder.barrier = threading.Barrier(4)  # the four calls must be in flight together
    with Runtime(_settings(tmp_path / "home", server, db_url, planner_concurrency=4)) as rt:
        _ingest(rt, 4)
        with Worker(rt) as worker:
            report = worker.tick()
        assert report.errors == [] and report.started == 4
        statuses = {d.status.value for d in rt.store.decisions.list()}
        assert statuses == {"awaiting_approval"}, statuses
        # one model call per decision: none planned twice, none fell back
        assert sorted(_llm_calls_by_decision(rt).values()) == [1, 1, 1, 1]
        assert all((version["meta"] or {}).get("fallback") is None
                   for d in rt.store.decisions.list() for version in rt.store.plans.records(d.id))
    assert responder.most == 4


def test_answers_are_applied_while_models_think(
        tmp_path: Path, model: tuple[Model, ScriptedServer], db_url: str | None) -> None:
    responder, server = model
    with Runtime(_settings(tmp_path / "home", server, db_url, planner_concurrency=8,
                           lease_seconds=30)) as rt:
        _ingest(rt, 1, prefix="first")
        with Worker(rt) as worker:
            worker.tick()
        (first,) = rt.store.decisions.list()
        requests = rt.store.approvals.list(decision_id=first.id, status="pending")
        assert requests
        responder.gate.clear()  # from now on the model thinks until the test says
        _ingest(rt, 5, skip=1, prefix="backlog")
        try:
            with running(rt, poll_seconds=30):
                assert wait_for(lambda: responder.in_flight == 5, 20), responder.in_flight
                for request in requests:
                    answer(rt, request.id, Approve(),
                           approver_name=_approver(rt, request.function), apply=False)
                assert wait_for(lambda: rt.store.decisions.get(first.id).status.value
                                == "completed", 20), rt.store.decisions.get(first.id).status
                assert responder.in_flight == 5  # the backlog is still being planned
                responder.gate.set()
        finally:
            responder.gate.set()
        backlog = [d for d in rt.store.decisions.list() if d.id != first.id]
        assert {d.status.value for d in backlog} == {"awaiting_approval"}


def test_the_playbook_planner_applies_answers_between_two_decisions(tmp_path: Path) -> None:
    with Runtime(Settings(home=tmp_path / "home", tool_backoff_seconds=0.01)) as rt:
        _ingest(rt, 1, prefix="first")
        with Worker(rt) as worker:
            worker.tick()
        (first,) = rt.store.decisions.list()
        requests = rt.store.approvals.list(decision_id=first.id, status="pending")
        _ingest(rt, 4, skip=1, prefix="backlog")
        order: list[str] = []
        start, advance = rt.engine.start, rt.engine.advance

        def starting(claim: Any) -> Any:
            order.append("start")
            result = start(claim)
            if order.count("start") == 1:  # an approver answers while the batch runs
                for request in requests:
                    rt.approvals.answer(request.id, Approve(),
                                        by=approver(rt, _approver(rt, request.function)))
            return result

        def advancing(decision_id: str) -> Any:
            order.append(f"advance {decision_id == first.id}")
            return advance(decision_id)

        rt.engine.start, rt.engine.advance = starting, advancing  # type: ignore[method-assign]
        worker = Worker(rt)
        assert worker.concurrency == 1
        worker.tick()
        assert order == ["start", "advance True", "start", "start", "start"]
        assert rt.store.decisions.get(first.id).status.value == "completed"


@pytest.mark.postgres
def test_an_answer_recorded_by_another_process_wakes_the_worker(
        tmp_path: Path, pg_url: str) -> None:
    settings = Settings(home=tmp_path / "home", database_url=pg_url, tool_backoff_seconds=0.01)
    with Runtime(settings, actor="worker") as rt, Runtime(settings, actor="api") as api:
        _ingest(rt, 1)
        with Worker(rt) as worker:
            worker.tick()
        (decision,) = rt.store.decisions.list()
        with running(rt, poll_seconds=60) as worker:
            # the loop has gone idle: it waits for its poll or a wake-up
            assert wait_for(lambda: worker._listener is not None, 10)
            for request in api.store.approvals.list(decision_id=decision.id, status="pending"):
                api.approvals.answer(request.id, Approve(),
                                     by=approver(api, _approver(api, request.function)))
            assert wait_for(lambda: rt.store.decisions.get(decision.id).status.value
                            == "completed", 20)


@pytest.mark.postgres
def test_two_workers_with_leases_shorter_than_a_model_call_plan_each_decision_once(
        tmp_path: Path, model: tuple[Model, ScriptedServer], pg_url: str) -> None:
    responder, server = model
    responder.gate.clear()
    settings = _settings(tmp_path / "home", server, pg_url, planner_concurrency=4,
                         lease_seconds=3)
    with Runtime(settings, actor="worker-a") as a, Runtime(settings, actor="worker-b") as b:
        _ingest(a, 6)
        a.triage_pending()  # both workers find the six actionable at once
        workers = [Worker(a), Worker(b)]
        reports: list[Any] = []
        threads = [threading.Thread(target=lambda w=w: reports.append(w.tick()))
                   for w in workers]
        for thread in threads:
            thread.start()
        try:
            assert wait_for(lambda: responder.in_flight == 6, 20), responder.in_flight
            # each call outlasts two leases: only the heartbeat keeps them
            threading.Event().wait(7)
            for worker in workers:  # a second look while every model is still thinking
                assert worker.tick(wait=False).recovered == 0
        finally:
            responder.gate.set()
            for thread in threads:
                thread.join(timeout=60)
            for worker in workers:
                worker.close()
        assert [r.errors for r in reports] == [[], []]
        assert sum(r.started for r in reports) == 6
        assert sorted(_llm_calls_by_decision(a).values()) == [1] * 6
        assert {d.status.value for d in a.store.decisions.list()} == {"awaiting_approval"}
        assert a.metrics.lease_steals._value.get() == 0
        assert b.metrics.lease_steals._value.get() == 0


def test_a_worker_claims_only_its_free_planning_slots(
        tmp_path: Path, model: tuple[Model, ScriptedServer]) -> None:
    responder, server = model
    responder.gate.clear()
    with Runtime(_settings(tmp_path / "home", server, None, planner_concurrency=2)) as rt:
        _ingest(rt, 5)
        with Worker(rt) as worker:
            first = worker.tick(wait=False)
            assert wait_for(lambda: responder.in_flight == 2, 20)
            again = worker.tick(wait=False)  # no free slot: nothing more is claimed
            assert (first.planning, again.planning) == (2, 2)
            assert len(rt.store.decisions.list()) == 2  # the other three are not leased away
            responder.gate.set()
            while len(rt.store.decisions.list(status="awaiting_approval")) < 5:
                worker.tick()
        assert responder.most == 2
        assert sorted(_llm_calls_by_decision(rt).values()) == [1] * 5


def test_a_row_another_worker_wrote_first_is_reported_not_a_crash(
        tmp_path: Path, db_url: str | None) -> None:
    """Every insert of a decision's rows is idempotent or fenced (claims skip conflicts,
    plan versions and routing are reused, the plan cache upserts); should one still meet
    a row another worker committed first, the tick says so and goes on."""
    from sqlalchemy import insert

    from decisionops.agent.store import _tables as t

    with Runtime(Settings(home=tmp_path / "home", database_url=db_url)) as rt:
        _ingest(rt, 2)
        start = rt.engine.start

        def colliding(claim: Any) -> Any:
            if claim.prediction_id == "p-0":
                with rt.store.transaction() as conn:  # the same row, once more
                    row = rt.store.decisions.get(claim.decision_id)
                    conn.execute(insert(t.decisions).values(
                        id=row.id, prediction_id=row.prediction_id, kind=row.kind,
                        entity_id=row.entity_id, status="planning", plan_version=0,
                        created_at=row.created_at, updated_at=row.updated_at, fence=1))
            return start(claim)

        rt.engine.start = colliding  # type: ignore[method-assign]
        with Worker(rt) as worker:
            report = worker.tick()
        assert report.started == 1 and report.busy == 1
        # not an error: the other worker carries it on (trial 20: listed under errors)
        assert report.errors == []
        assert len(report.handed_over) == 1
        assert "another worker got there first" in report.handed_over[0]
        assert report.summary()["handed_over"] == report.handed_over


def test_a_decision_left_by_a_worker_is_planned_again_in_the_pool(
        tmp_path: Path, model: tuple[Model, ScriptedServer], db_url: str | None) -> None:
    from sqlalchemy import update

    from decisionops.agent.models import utcnow
    from decisionops.agent.store import _tables as t

    _, server = model
    with Runtime(_settings(tmp_path / "home", server, db_url, planner_concurrency=4)) as rt:
        _ingest(rt, 1)
        rt.triage_pending()
        (claim,) = rt.store.decisions.claim_new(owner="worker:elsewhere:1", lease_seconds=60)
        with rt.store.transaction() as conn:  # that worker stopped; its lease lapsed
            conn.execute(update(t.decisions).where(t.decisions.c.id == claim.decision_id)
                         .values(lease_until=utcnow()))
        with Worker(rt) as worker:
            report = worker.tick()
        assert (report.recovered, report.errors) == (1, [])
        assert rt.store.decisions.get(claim.decision_id).status.value == "awaiting_approval"
        assert rt.metrics.lease_steals._value.get() == 1
        assert _llm_calls_by_decision(rt) == {claim.decision_id: 1}


@pytest.mark.postgres
def test_predictions_stored_by_another_process_wake_the_worker(
        tmp_path: Path, pg_url: str) -> None:
    settings = Settings(home=tmp_path / "home", database_url=pg_url)
    with Runtime(settings, actor="worker") as rt, Runtime(settings, actor="api") as api, \
            running(rt, poll_seconds=60) as worker:
        assert wait_for(lambda: worker._listener is not None, 10)
        threading.Event().wait(0.5)  # the loop has gone idle
        _ingest(api, 1)
        assert wait_for(lambda: len(rt.store.decisions.list()) == 1, 20)


@pytest.mark.postgres
def test_work_another_worker_triaged_wakes_the_worker(tmp_path: Path, pg_url: str) -> None:
    """Triage runs in one worker at a time: the others, woken by the new predictions,
    find nothing to claim yet. The work that triage finds actionable wakes them again
    (it does not wait for their next poll)."""
    settings = Settings(home=tmp_path / "home", database_url=pg_url)
    with Runtime(settings, actor="worker") as rt, Runtime(settings, actor="other") as other, \
            running(rt, poll_seconds=60) as worker:
        assert wait_for(lambda: worker._listener is not None, 10)
        with _triage_lock(other) as mine:  # the other worker triages
            assert mine
            _ingest(other, 1)  # wakes the loop, which finds nothing triaged to claim
            threading.Event().wait(1.0)
            assert rt.store.decisions.list() == []
            other.triage_pending()
        assert wait_for(lambda: len(rt.store.decisions.list()) == 1, 20)


@contextmanager
def _triage_lock(rt: Runtime, timeout: float = 20) -> Iterator[bool]:
    """The triage section, taken as soon as it is free: the worker's own idle tick (or
    another test's worker on the same PostgreSQL database: the lock is database-wide)
    may be in it for a moment (found failing once in CI)."""
    deadline = time.monotonic() + timeout
    while True:
        with rt.store.exclusive("triage") as mine:
            if mine or time.monotonic() > deadline:
                yield mine
                return
        time.sleep(0.05)


def test_a_decision_in_hand_is_not_taken_up_by_a_second_thread(
        tmp_path: Path, model: tuple[Model, ScriptedServer]) -> None:
    """The lease's owner is the process, and a claim by the same owner renews it with a
    new fence: a second thread taking a decision up would fence the first one out midway
    (and its checkpoints are fenced by decision). The engine refuses it."""
    from decisionops.agent.errors import LeaseHeld

    responder, server = model
    responder.gate.clear()
    with Runtime(_settings(tmp_path / "home", server, None, planner_concurrency=2,
                           lease_seconds=1)) as rt:
        _ingest(rt, 1)
        with Worker(rt) as worker:
            worker.tick(wait=False)
            assert wait_for(lambda: responder.in_flight == 1, 20)
            (decision,) = rt.store.decisions.list()
            fence = rt.store.decisions.fence_of(decision.id)
            threading.Event().wait(1.2)  # its lease would have lapsed but for the heartbeat
            with pytest.raises(LeaseHeld, match="another thread"):
                rt.engine.advance(decision.id)
            report = worker.tick(wait=False)  # recovery does not take it up either
            assert rt.store.decisions.fence_of(decision.id) == fence
            responder.gate.set()
            worker.tick()
        assert report.recovered == 0
        assert rt.store.decisions.get(decision.id).status.value == "awaiting_approval"
        assert _llm_calls_by_decision(rt) == {decision.id: 1}


def test_a_released_hold_resumes_its_decisions_at_once(tmp_path: Path) -> None:
    from datetime import timedelta

    from decisionops.agent.models import utcnow

    with Runtime(Settings(home=tmp_path / "home", tool_backoff_seconds=0.01)) as rt:
        _ingest(rt, 1)
        with Worker(rt) as worker:
            worker.tick()
        (decision,) = rt.store.decisions.list()
        rt.approvals.hold("finance", until=utcnow() + timedelta(hours=1), reason="close",
                          actor="ops")
        for request in rt.store.approvals.list(decision_id=decision.id, status="pending"):
            answer(rt, request.id, Approve(), approver_name=_approver(rt, request.function))
        assert rt.store.decisions.get(decision.id).status.value == "held"
        with running(rt, poll_seconds=60):
            threading.Event().wait(0.3)  # the loop has gone idle
            rt.approvals.release("finance", actor="ops")
            assert wait_for(lambda: rt.store.decisions.get(decision.id).status.value
                            == "completed", 20)


def test_a_stopping_worker_gives_back_the_decisions_whose_model_calls_are_out(
        tmp_path: Path, model: tuple[Model, ScriptedServer]) -> None:
    # SIGTERM with three drafts waiting on a slow model: the worker stops once
    # llm_stop_grace_seconds pass, not once the model answers (or llm_timeout_seconds
    # pass), and gives the three decisions back at once (no lease left to lapse, no
    # failure noted): the next worker plans them.
    responder, server = model
    responder.gate.clear()  # the model does not answer until the test lets it
    try:
        with Runtime(_settings(tmp_path / "home", server, None, planner_concurrency=4,
                               llm_timeout_seconds=60, llm_stop_grace_seconds=0.3)) as rt:
            _ingest(rt, 3)
            worker = Worker(rt, poll_seconds=30)
            loop = threading.Thread(target=worker.run, daemon=True)
            loop.start()
            assert wait_for(lambda: responder.in_flight == 3, 20)
            worker.stop()
            loop.join(timeout=5)
            assert not loop.is_alive()
            worker.close()
            decisions = rt.store.decisions.list()
            assert len(decisions) == 3
            for decision in decisions:
                row = rt.store.decisions.get(decision.id)
                assert (row.lease_owner, row.error) == (None, None), row
            assert [c["outcome"] for c in rt.store.llm.llm_calls()] == ["abandoned"] * 3
    finally:
        responder.gate.set()


def test_a_leg_past_its_draft_frees_its_lane_for_the_next_decision(
        tmp_path: Path, model: tuple[Model, ScriptedServer]) -> None:
    """A lane is the model's: once a leg has its draft, its routing (reads, checks,
    CPU) runs beside the next decision's planning, within a pool of twice the lanes."""
    responder, server = model
    routed = threading.Event()  # routing waits until the test lets it go
    entered: list[str] = []
    with Runtime(_settings(tmp_path / "home", server, None, planner_concurrency=2)) as rt:
        _ingest(rt, 6)
        route = rt.approvals.route

        def slow_route(*args: Any, **kwargs: Any) -> Any:
            entered.append("route")
            assert routed.wait(timeout=30), "the test never let routing go on"
            return route(*args, **kwargs)

        rt.approvals.route = slow_route  # type: ignore[method-assign]
        try:
            with Worker(rt) as worker:
                first = worker.tick(wait=False)
                assert first.planning == 2
                assert wait_for(lambda: len(entered) == 2, 20)  # both drafts in, routing
                second = worker.tick(wait=False)  # two lanes free: two more decisions
                assert second.planning == 4
                assert wait_for(lambda: len(entered) == 4, 20)
                third = worker.tick(wait=False)  # the pool is full: none more
                assert third.planning == 4 and len(rt.store.decisions.list()) == 4
                routed.set()
                while len(rt.store.decisions.list(status="awaiting_approval")) < 6:
                    worker.tick()
        finally:
            routed.set()
    assert responder.most <= 2
    assert sorted(_llm_calls_by_decision(rt).values()) == [1] * 6


def test_a_leg_that_drafts_again_plans_in_its_lane_again() -> None:
    """A leg drafting a second time (the world changed under its approved plan) counts
    against its worker's lanes while it drafts, and frees its lane again after; outside
    a worker's pool there is no lane and nothing to count."""
    from decisionops.agent.lanes import Lane, drafting, in_lane

    freed: list[bool] = []
    lane = Lane(on_free=lambda: freed.append(True))
    seen: list[bool] = []

    def leg() -> str:
        seen.append(lane.planning)  # a leg starts planning
        with drafting():
            seen.append(lane.planning)
        seen.append(lane.planning)  # past its draft: checking and routing
        with drafting():  # the world changed: drafted again
            seen.append(lane.planning)
        seen.append(lane.planning)
        return "done"

    assert in_lane(lane, leg) == "done"
    assert seen == [True, True, False, True, False]
    assert len(freed) == 2 and not lane.planning
    with drafting():  # no lane: nothing happens
        pass
