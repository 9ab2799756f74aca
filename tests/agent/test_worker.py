"""The continuous loop's worker and housekeeping, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from decisionops.agent.housekeeping import poll_source, prune_checkpoints, sla_sweep
from decisionops.agent.models import Approve, utcnow
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings, SourceConfig
from decisionops.agent.worker import Worker
from tests.graphs.conftest import churn, pending
from tests.support import answer

HEADER = "id,model,kind,entity_type,entity_id,score,value_at_stake,features,observed_at\n"
ROW = ('{id},churn-gbm,churn,account,{account},0.91,{value},'
       '"{{""segment"": ""mid_market""}}",2026-11-20T08:00:00Z\n')


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    return Settings(home=tmp_path / "home", database_url=url, tool_backoff_seconds=0.01)


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    with Runtime(settings, actor="worker-a") as runtime:
        yield runtime


def _accounts(rt: Runtime, n: int) -> list[str]:
    return [a["account_id"] for a in rt.enterprise.rows("accounts")[:n]]


def test_tick_triages_starts_and_applies_answers(rt: Runtime) -> None:
    rt.ingest([churn(f"p-{i}", account=a, value=10_000, segment="mid_market")
               for i, a in enumerate(_accounts(rt, 3))], source="test")
    worker = Worker(rt, poll_seconds=0.01)
    report = worker.tick()
    assert (report.triaged, report.started, report.errors) == (3, 3, [])
    for approval in rt.store.approvals.list(status="pending"):
        answer(rt, approval.id, Approve(), approver_name="raj@sales", apply=False)
    report = worker.tick()
    assert report.resumed == 3
    assert {d.status for d in rt.store.decisions.list()} == {"completed"}
    assert not worker.tick().did_work


def test_sla_reminds_escalates_once_and_expires_by_policy(rt: Runtime) -> None:
    rt.ingest([churn("p-1", account=_accounts(rt, 1)[0], value=10_000, segment="mid_market")],
              source="test")
    Worker(rt).tick()
    (request,) = rt.store.approvals.list(status="pending")
    start = request.requested_at
    span = request.deadline - start
    assert sla_sweep(rt, start + span * 0.1) == {"reminded": 0, "escalated": 0,
                                                        "expired": 0}
    assert sla_sweep(rt, start + span * 0.6)["reminded"] == 1
    assert sla_sweep(rt, start + span * 0.7)["reminded"] == 0  # once only
    assert sla_sweep(rt, start + span * 0.9)["escalated"] == 1
    assert sla_sweep(rt, start + span * 1.01)["expired"] == 1
    assert rt.store.approvals.get(request.id).status == "expired"
    Worker(rt).tick()  # the worker applies the expiry like any answer: rejected by default
    decision = rt.store.decisions.get(request.decision_id)
    assert decision.status == "completed"
    assert sorted(e.tool for e in rt.enterprise.effects()) == [
        "notify.send", "notify.send", "support.open_ticket"]  # two alerts, then the auto part
    events = [e.event for e in rt.store.ledger.entries(request.decision_id)]
    assert {"approval.reminder", "approval.escalation", "approval.expired"} <= set(events)


def test_a_human_answer_wins_over_a_racing_expiry(rt: Runtime) -> None:
    rt.ingest([churn("p-1", account=_accounts(rt, 1)[0], value=10_000, segment="mid_market")],
              source="test")
    Worker(rt).tick()
    (request,) = rt.store.approvals.list(status="pending")
    answer(rt, request.id, Approve(), approver_name="raj@sales", apply=False)
    late = request.deadline + timedelta(hours=1)
    assert sla_sweep(rt, late)["expired"] == 0
    assert rt.store.approvals.get(request.id).status == "approved"


def test_retention_prunes_checkpoints_and_keeps_the_record(rt: Runtime) -> None:
    rt.ingest([churn("p-1", account=_accounts(rt, 1)[0], value=10_000, segment="mid_market")],
              source="test")
    Worker(rt).tick()
    (request,) = rt.store.approvals.list(status="pending")
    answer(rt, request.id, Approve(), approver_name="raj@sales")
    decision_id = request.decision_id
    config = rt.engine.config(decision_id)
    assert rt.graph.get_state(config).values
    # A model's reply journaled for a draft that never stored a version (a decision a
    # person planned after the model failed) goes with the checkpoints.
    rt.store.llm.record_llm_call(decision_id=decision_id, plan_version=9, purpose="plan",
                                 model="m", prompt_version="p", tokens_in=1, tokens_out=1,
                                 cost=0.0, latency_ms=1.0, outcome="ok", request_hash="h",
                                 reply="{}")
    assert prune_checkpoints(rt)["pruned"] == 0  # finished just now: kept
    assert rt.store.llm.replies_held(decision_id) == 1
    later = utcnow() + timedelta(days=rt.settings.retention_days + 1)
    assert prune_checkpoints(rt, later)["pruned"] == 1
    assert not rt.graph.get_state(config).values
    assert rt.store.llm.replies_held(decision_id) == 0
    assert len(rt.store.llm.llm_calls(decision_id)) == 1  # the call's record stays
    assert prune_checkpoints(rt, later)["pruned"] == 0
    assert rt.store.decisions.get(decision_id).status == "completed"
    assert rt.store.plans.get(decision_id).steps
    assert rt.store.ledger.entries(decision_id)


def test_retention_asks_only_for_checkpoints_not_pruned_yet(tmp_path: Path) -> None:
    """Which finished decisions still have checkpoints to prune is asked of those alone
    (a partial index they leave once pruned), not of every decision ever finished."""
    with Runtime(Settings(home=tmp_path / "home", holdout_share=0), actor="w") as rt:
        seen = _selects(rt, "checkpoint_pruned_at IS NULL", lambda: (
            prune_checkpoints(rt, utcnow() + timedelta(days=rt.settings.retention_days + 1))))
        (plan,) = _plans(rt, seen)
        assert "ix_decisions_unpruned" in plan, plan


def _selects(rt: Runtime, fragment: str, work: object) -> list[tuple[str, object]]:
    """The SELECTs containing ``fragment`` that ``work`` runs, with their parameters."""
    from sqlalchemy import event

    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        if fragment in statement and not executemany \
                and statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(rt.store.engine, "before_cursor_execute", capture)
    try:
        work()  # type: ignore[operator]
    finally:
        event.remove(rt.store.engine, "before_cursor_execute", capture)
    return seen


def _plans(rt: Runtime, seen: list[tuple[str, object]]) -> list[str]:
    """SQLite's query plan of each statement."""
    with rt.store.reading() as conn:
        return [" ".join(str(r[-1]) for r in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + statement, parameters)) for statement, parameters in seen]


def test_directory_source_ingests_and_moves_files(rt: Runtime, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    account = _accounts(rt, 1)[0]
    (drop / "a.csv").write_text(HEADER + ROW.format(id="d-1", account=account, value=9000))
    (drop / "bad.csv").write_text("id,score\nx,notanumber\n")
    source = SourceConfig(name="drop", type="directory", path=drop)
    assert poll_source(rt, source) == {"source:drop": 0}  # first look: maybe not finished
    assert poll_source(rt, source) == {"source:drop": 1}
    assert (drop / "processed" / "a.csv").exists()
    assert (drop / "rejected" / "bad.csv").exists()
    assert "the header lacks" in (drop / "rejected" / "bad.csv.errors.txt").read_text()
    assert poll_source(rt, source) == {"source:drop": 0}


def test_sql_source_reads_past_its_cursor_on_schedule(rt: Runtime, tmp_path: Path) -> None:
    db = tmp_path / "scores.sqlite"
    account = _accounts(rt, 1)[0]
    with sqlite3.connect(db) as conn:
        conn.execute("create table scores (pid text, acct text, p real, arr real, ts text)")
        conn.execute("insert into scores values ('s-1', ?, 0.9, 9000, '2026-11-20T08:00:00Z')",
                     (account,))
    source = SourceConfig(
        name="scores", type="sql", url=f"sqlite:///{db}", query="select * from scores",
        cursor_column="ts", schedule="*/5 * * * *",
        mapping={"id": "pid", "entity_id": "acct", "score": "p", "value_at_stake": "arr",
                 "observed_at": "ts", "defaults": {"kind": "churn", "model": "churn-gbm",
                                                   "entity_type": "account"}})
    # Clear of a five-minute boundary: one second later the source is not due yet.
    now = utcnow().replace(minute=1, second=0, microsecond=0)
    assert poll_source(rt, source, now) == {"source:scores": 1}
    with sqlite3.connect(db) as conn:
        conn.execute("insert into scores values ('s-2', ?, 0.8, 9000, '2026-11-21T08:00:00Z')",
                     (account,))
    assert poll_source(rt, source, now + timedelta(seconds=1)) == {"source:scores": 0}  # not due
    assert poll_source(rt, source, now + timedelta(minutes=6)) == {"source:scores": 1}
    assert rt.store.ops.source_state("scores")["cursor"] == "2026-11-21T08:00:00Z"


def _scores_source(db: Path, cursor: str = "ts", query: str = "select * from scores",
                   name: str = "scores") -> SourceConfig:
    return SourceConfig(
        name=name, type="sql", url=f"sqlite:///{db}", query=query, cursor_column=cursor,
        mapping={"id": "pid", "entity_id": "acct", "score": "p", "value_at_stake": "arr",
                 "observed_at": "ts", "defaults": {"kind": "churn", "model": "churn-gbm",
                                                   "entity_type": "account"}})


def test_a_sql_source_loses_no_row_that_shares_its_cursor_value(rt: Runtime, tmp_path: Path
                                                                 ) -> None:
    # Found in a black-box trial: the source read "cursor > stored" 10,000 rows at a time
    # and kept the last row's value, so rows sharing that value beyond the page, or
    # committed later with it, were never read.
    db = tmp_path / "scores.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("create table scores (pid text, acct text, p real, arr real, ts text)")
        conn.executemany("insert into scores values (?, 'ACC-1', 0.1, 10, ?)",
                         [(f"b-{i:05d}", "2026-07-01T00:00:00Z") for i in range(10_005)])
    source = _scores_source(db)
    assert poll_source(rt, source) == {"source:scores": 10_005}
    with sqlite3.connect(db) as conn:  # committed late, with the cursor value already read
        conn.execute("insert into scores values ('late', 'ACC-1', 0.1, 10, "
                     "'2026-07-01T00:00:00Z')")
    assert poll_source(rt, source) == {"source:scores": 1}
    assert poll_source(rt, source) == {"source:scores": 0}
    assert rt.store.predictions.get("late").id == "late"


def test_a_sql_source_compares_its_cursor_as_the_number_it_is(rt: Runtime, tmp_path: Path
                                                              ) -> None:
    # Found in a black-box trial: an integer cursor computed in a view was stored as text
    # and bound as text; SQLite orders any integer before any text, so after the first
    # poll nothing was ever read again.
    db = tmp_path / "scores.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("create table scores (pid text, acct text, p real, arr real, ts text, "
                     "seq integer)")
        conn.execute("create view scores_v as select *, seq + 0 as seqx from scores")
        conn.executemany("insert into scores values (?, 'ACC-1', 0.1, 10, "
                         "'2026-07-01T00:00:00Z', ?)", [(f"s-{i}", i) for i in range(1, 10)])
    source = _scores_source(db, cursor="seqx", query="select * from scores_v")
    assert poll_source(rt, source) == {"source:scores": 9}
    with sqlite3.connect(db) as conn:
        conn.executemany("insert into scores values (?, 'ACC-1', 0.1, 10, "
                         "'2026-07-01T00:00:00Z', ?)", [(f"s-{i}", i) for i in (10, 11, 12)])
    assert poll_source(rt, source) == {"source:scores": 3}


def test_an_unreachable_sql_source_is_its_own_error_and_the_others_still_run(
        rt: Runtime, tmp_path: Path) -> None:
    # Found in a black-box trial: a source whose database could not be opened crashed
    # `run --once` with a traceback; the loop said "database unavailable" (its store's
    # words) and retried, and no source after it was ever polled.
    missing = SourceConfig(name="broken", type="sql", url=f"sqlite:///{tmp_path}/no/such.db",
                           query="select * from scores", cursor_column="ts",
                           mapping=_scores_source(tmp_path).mapping)
    assert poll_source(rt, missing) == {"source:broken": 0}
    error = rt.store.ops.source_state("broken")["last_error"]
    assert error.startswith("sources.broken: could not read the source's database"), error


def test_two_workers_never_start_one_decision_twice(pg_url: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", database_url=pg_url)
    with Runtime(settings, actor="worker-a") as a, Runtime(settings, actor="worker-b") as b:
        accounts = _accounts(a, 40)
        a.ingest([churn(f"p-{i}", account=acc, value=10_000, segment="mid_market")
                  for i, acc in enumerate(accounts)], source="test")
        workers = [Worker(a, batch=5), Worker(b, batch=5)]
        reports = []

        def drain(worker: Worker) -> None:
            while True:  # a tick starts one batch; tick until there is no new work
                report = worker.tick()
                reports.append(report)
                if not report.started:
                    return

        threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(r.started for r in reports) == 40
        assert all(not r.errors for r in reports), [r.errors for r in reports]
        assert len(a.store.decisions.list(limit=100)) == 40
        assert len(pending(a, a.store.decisions.list(limit=1)[0].id)) == 1


def test_a_housekeeping_pass_that_fails_is_reported_and_the_rest_still_run(rt: Runtime) -> None:
    """A pass that fails on bad configuration or data (here: a lookup that names an
    unknown function) does not end the worker: the tick reports it and the other passes
    run."""
    from decisionops.agent.errors import NotFoundError

    def broken(_: Runtime) -> dict[str, int]:
        raise NotFoundError("unknown function 'finance'", field="function")

    report = Worker(rt, housekeeping=[broken, lambda _: {"after": 1}]).tick()
    assert any("unknown function 'finance'" in e for e in report.errors)
    assert report.housekeeping == {"after": 1}


def test_answers_of_held_decisions_do_not_crowd_out_the_others(rt: Runtime) -> None:
    """A batch's worth of answered decisions under an entity hold, answered first, does
    not keep a worker from applying the answers of decisions that are not held."""
    accounts = _accounts(rt, 3)
    rt.ingest([churn(f"p-{i}", account=a, value=10_000, segment="mid_market")
               for i, a in enumerate(accounts)], source="test")
    assert Worker(rt).tick().started == 3
    worker = Worker(rt, batch=2, poll_seconds=0.01)
    held = accounts[:2]
    for account in held:
        rt.approvals.hold(account, until=utcnow() + timedelta(hours=1), reason="audit",
                          actor="ops")
    by_account = {d.entity_id: d.id for d in rt.store.decisions.list()}
    for account in [*held, accounts[2]]:  # the held ones answered first (oldest answers)
        (request,) = rt.store.approvals.list(decision_id=by_account[account], status="pending")
        answer(rt, request.id, Approve(), approver_name="raj@sales", apply=False)
    worker.tick()
    assert rt.store.decisions.get(by_account[accounts[2]]).status == "completed"
    assert {rt.store.decisions.get(by_account[a]).status for a in held} == {"awaiting_approval"}


def test_the_answers_lane_walks_the_unapplied_index_however_long_the_history(
        tmp_path: Path) -> None:
    """Every tick asks which decisions have answers to apply. Applied answers (the great
    majority, growing with every decision) leave the index it walks, so the question
    costs the answers waiting, not the history (found by bench/scale.py: a full scan of
    108,000 approvals, 39 ms a tick and growing, on PostgreSQL)."""
    with Runtime(Settings(home=tmp_path / "home", holdout_share=0), actor="w") as rt:
        rt.ingest([churn(f"u-{i}", account=a, value=40_000)
                   for i, a in enumerate(_accounts(rt, 3))], source="test")
        worker = Worker(rt, poll_seconds=0.01)
        worker.tick()
        for approval in rt.store.approvals.list(status="pending"):
            name = rt.policies.get(approval.function).approvers[0]
            answer(rt, approval.id, Approve(), approver_name=name, apply=False)
        seen = _selects(rt, "applied_at IS NULL", lambda: (worker.tick(), worker.tick()))
        assert {d.status for d in rt.store.decisions.list()} == {"completed"}
        assert seen
        for (statement, _), plan in zip(seen, _plans(rt, seen), strict=True):
            assert "ix_approvals_unapplied" in plan, (statement, plan)


def test_the_queries_for_work_not_started_walk_their_partial_indexes(tmp_path: Path) -> None:
    """Which actionable predictions have no decision yet (a worker's claim, the queue
    depth gauge, the archive's live floor) is asked of the open work only: a prediction
    leaves the index once its decision is created, so the question does not grow with
    the history (found by bench/scale.py: the claim scanned all 100,000 predictions,
    221 ms a tick on PostgreSQL, and the drain slowed from 34 to 16 decisions/s)."""
    with Runtime(Settings(home=tmp_path / "home", holdout_share=0), actor="w") as rt:
        accounts = _accounts(rt, 4)
        rt.ingest([churn(f"s-{i}", account=a, value=40_000) for i, a in enumerate(accounts)]
                  + [churn("s-low", account=accounts[0], value=10)], source="test")
        worker = Worker(rt, poll_seconds=0.01)

        def work() -> None:
            worker.tick()
            assert rt.store.predictions.queue_depth() == 0
            rt.store.ledger.archive(utcnow())

        seen = _selects(rt, "started_at IS NULL", work)
        assert len(rt.store.decisions.list()) == 4
        assert len(seen) >= 3, seen
        for (statement, _), plan in zip(seen, _plans(rt, seen), strict=True):
            assert "ix_predictions_unstarted" in plan, (statement, plan)


def _lapse(rt: Runtime, decision_id: str) -> None:
    """The leg's lease lapses (as it would after ``lease_seconds``)."""
    from sqlalchemy import update

    from decisionops.agent.store import _tables as t
    with rt.store.engine.begin() as conn:
        conn.execute(update(t.decisions).where(t.decisions.c.id == decision_id)
                     .values(lease_until=utcnow() - timedelta(seconds=1)))


@contextmanager
def _one_churn(settings: Settings, max_leg_failures: int) -> Iterator[tuple[Runtime, Worker]]:
    """A runtime allowing ``max_leg_failures`` failed legs in a row, one churn
    prediction ingested, and a worker."""
    settings = settings.model_copy(update={"max_leg_failures": max_leg_failures})
    with Runtime(settings, actor="worker-a") as rt:
        rt.ingest([churn("p-1", account=_accounts(rt, 1)[0], segment="mid_market")],
                  source="test")
        yield rt, Worker(rt, poll_seconds=0.01)


def test_a_leg_that_fails_every_time_is_held_for_an_operator_not_retried_forever(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # Found reading the loop: a leg that fails deterministically (a bug, a tool result the
    # store cannot take) was retried after every lease, forever, and nothing said so but
    # the decision's error. After ``max_leg_failures`` in a row the loop puts a hold on
    # the decision (recorded), gives the lease back and stops trying; releasing the hold
    # lets it try again.
    with _one_churn(settings, 3) as (rt, worker):
        def broken(*_a: object, **_k: object) -> None:
            raise RuntimeError("boom in routing")

        monkeypatch.setattr(rt.approvals, "route", broken)
        report = worker.tick()
        assert report.errors == ["a leg failed: RuntimeError: boom in routing"]
        (decision,) = rt.store.decisions.list()
        for failures in (2, 3):
            assert rt.store.holds.list() == []
            _lapse(rt, decision.id)
            report = worker.tick()
            assert report.errors == ["a leg failed: RuntimeError: boom in routing"], failures
        (hold,) = rt.store.holds.list()
        assert (hold.target_type, hold.target) == ("decision", decision.id)
        assert "3 legs in a row failed" in hold.reason and "boom in routing" in hold.reason
        decision = rt.store.decisions.get(decision.id)
        assert decision.lease_owner is None and decision.status.value == "planning"
        assert "held" in (decision.error or "") and f"holds release {decision.id}" in decision.error
        events = [e.event for e in rt.store.ledger.entries(decision.id)]
        assert "hold.placed" in events
        _lapse(rt, decision.id)
        assert not worker.tick().did_work  # held: nobody tries it
        monkeypatch.undo()
        rt.approvals.release(decision.id, actor="ops")
        report = worker.tick()
        assert report.recovered == 1 and report.errors == [], report.summary()
        decision = rt.store.decisions.get(decision.id)
        assert decision.status.value == "awaiting_approval" and decision.leg_failures == 0


def test_a_leg_that_succeeds_clears_the_count_of_failed_legs(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    with _one_churn(settings, 2) as (rt, worker):
        with monkeypatch.context() as patch:
            patch.setattr(rt.approvals, "route",
                          lambda *a, **k: (_ for _ in ()).throw(RuntimeError("once")))
            assert len(worker.tick().errors) == 1
        (decision,) = rt.store.decisions.list()
        assert rt.store.decisions.get(decision.id).leg_failures == 1
        _lapse(rt, decision.id)
        assert worker.tick().errors == []
        assert rt.store.decisions.get(decision.id).leg_failures == 0
        assert rt.store.holds.list() == []


def test_a_stopping_worker_gives_back_the_decisions_it_claimed_and_did_not_start(
        rt: Runtime) -> None:
    # Found in a black-box trial: after SIGTERM, claimed decisions stayed leased to the
    # exited worker until their leases lapsed (two minutes by default).
    rt.ingest([churn(f"p-{i}", account=a, value=10_000, segment="mid_market")
               for i, a in enumerate(_accounts(rt, 3))], source="test")
    worker = Worker(rt, poll_seconds=0.01)
    start = rt.engine.start

    def start_then_stop(claim: object) -> object:
        result = start(claim)
        worker.stopping.set()  # SIGTERM arrives during the first leg
        return result

    rt.engine.start = start_then_stop  # type: ignore[method-assign]
    assert worker.tick().started == 1
    leased = [d for d in rt.store.decisions.list() if d.lease_owner is not None]
    assert leased == []
    rt.engine.start = start  # type: ignore[method-assign]
    assert Worker(rt, poll_seconds=0.01).tick().recovered == 2
