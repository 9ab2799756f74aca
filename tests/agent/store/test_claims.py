"""Claiming new decisions from several workers at once (catalog C1) on PostgreSQL, where
READ COMMITTED lets a claimer see a prediction as unclaimed after another worker has
committed its decision: losing that race must skip the prediction, never crash."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from decisionops.agent.models import Prediction, TriageAction, TriageVerdict
from decisionops.agent.store import Store

N = 600


def _ready(store: Store) -> None:
    predictions = [Prediction(id=f"claim-{i}", model="m", kind="churn", entity_type="account",
                              entity_id=f"ACC-{i}", score=0.9, value_at_stake=10_000,
                              observed_at=datetime(2026, 11, 20, tzinfo=UTC))
                   for i in range(N)]
    store.predictions.ingest(predictions, source="test", actor="test")
    store.predictions.record_triage([TriageVerdict(prediction_id=p.id, action=TriageAction.ACT,
                                       reason="act", playbook="churn-retention")
                         for p in predictions], actor="test")


@pytest.mark.postgres
def test_racing_claimers_share_the_work_without_errors(pg_url: str) -> None:
    setup = Store.open(pg_url)
    _ready(setup)
    stores = [Store.open(pg_url, migrate=False) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    claimed: list[str] = []
    errors: list[str] = []

    def claimer(store: Store, index: int) -> None:
        barrier.wait()
        while True:
            try:
                got = store.decisions.claim_new(owner=f"worker-{index}", lease_seconds=60,
                                                limit=3)
            except Exception as exc:  # what a worker would die of
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            if not got:
                return
            claimed.extend(c.decision_id for c in got)

    threads = [threading.Thread(target=claimer, args=(s, i)) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in [setup, *stores]:
        store.close()
    assert errors == []
    assert len(claimed) == len(set(claimed)) == N


@pytest.mark.parametrize("form", ["worker:{host}:{pid}:ab12", "worker-0:{host}:{pid}"])
def test_a_lease_of_a_process_of_this_machine_that_is_gone_is_dead(form: str) -> None:
    import os
    import socket
    import subprocess
    import sys

    from decisionops.agent.store._decisions import dead_here

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    host = socket.gethostname()
    assert dead_here(form.format(host=host, pid=gone.stdout.strip()))
    assert not dead_here(form.format(host=host, pid=os.getpid()))  # alive: this one
    assert not dead_here(form.format(host="elsewhere", pid=gone.stdout.strip()))
    assert not dead_here("test-worker") and not dead_here(None)


@pytest.mark.postgres
def test_two_planners_caching_one_plan_at_once_do_not_collide(pg_url: str) -> None:
    """Concurrent planning: two drafts with one cache signature store it at the same time.
    The second writer waits on the first one's row and then replaces it; it does not fail
    on the primary key (which failed the decision's leg)."""
    import psycopg
    from sqlalchemy import insert, text

    from decisionops.agent.store import _tables as t

    store = Store.open(pg_url)
    entry = {"kind": "churn", "playbook": "churn-retention", "planner": "llm",
             "body": {"steps": []}, "source_decision_id": "dec-a"}
    errors: list[BaseException] = []
    with store.transaction() as first:
        first.execute(insert(t.plan_cache).values(signature="sig", created_at=datetime.now(UTC),
                                                  hits=0, **entry))

        def second() -> None:
            try:
                store.llm.cache_put("sig", **{**entry, "source_decision_id": "dec-b"})
            except BaseException as exc:  # the test reports it
                errors.append(exc)

        racer = threading.Thread(target=second)
        racer.start()
        conninfo = store.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False)
        with psycopg.connect(conninfo, autocommit=True) as watch:
            for _ in range(200):  # until the second writer waits on the first one's row
                if watch.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type "
                                 "= 'Lock' AND datname = current_database()").fetchone()[0]:
                    break
                threading.Event().wait(0.05)
            else:
                pytest.fail("the second writer never waited on the first")
    racer.join(timeout=30)
    assert errors == []
    with store.reading() as conn:
        rows = conn.execute(text("SELECT source_decision_id FROM plan_cache")).all()
    assert [r[0] for r in rows] == ["dec-b"]
    store.close()
