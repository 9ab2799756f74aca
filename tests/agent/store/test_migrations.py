"""The migrations and the table definitions agree, and the known head is the scripts'."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from decisionops.agent.store import Store
from decisionops.agent.store._engine import HEAD_REVISION, current_revision, head_revision
from decisionops.agent.store._tables import metadata
from tests.support import answer, start_decisions


def test_known_head_is_the_scripts_head() -> None:
    assert head_revision() == HEAD_REVISION


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_migrated_schema_matches_the_table_definitions(request: pytest.FixtureRequest,
                                                       tmp_path: Path, backend: str) -> None:
    url = (request.getfixturevalue("pg_url") if backend == "postgres"
           else f"sqlite:///{tmp_path / 's.sqlite'}")
    store = Store.open(url)
    try:
        assert current_revision(store.engine) == HEAD_REVISION
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_arguments_by_reference_go_back_to_copies_on_downgrade(
        request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> None:
    from alembic import command
    from sqlalchemy import select

    from decisionops.agent.models import Approve, Prediction
    from decisionops.agent.runtime import Runtime
    from decisionops.agent.settings import Settings
    from decisionops.agent.store import _tables as t
    from decisionops.agent.store._engine import _alembic_config

    url = (request.getfixturevalue("pg_url") if backend == "postgres"
           else f"sqlite:///{tmp_path / 's.sqlite'}")
    settings = Settings(home=tmp_path / "home", database_url=url)
    with Runtime(settings, actor="test") as rt:
        rt.enterprise.seed()
        rt.ingest([Prediction(id="p-1", model="churn-gbm", kind="churn", entity_type="account",
                              entity_id="ACC-10004", score=0.9, value_at_stake=5_000,
                              features={"segment": "smb"},
                              observed_at="2026-11-20T08:00:00Z")], source="test")
        rt.triage_pending()
        (result,) = start_decisions(rt)
        for request in rt.store.approvals.list(decision_id=result.decision_id, status="pending"):
            answer(rt, request.id, Approve(),
                   approver_name=rt.policies.get(request.function).approvers[0])
        assert rt.store.decisions.get(result.decision_id).status == "completed"
        plan = rt.store.plans.get(result.decision_id)
        executed = {e.step_id: e.arguments for e in rt.store.executions.list(result.decision_id)}
        assert executed and executed == {s.id: s.arguments for s in plan.steps
                                         if s.id in executed}
        command.downgrade(_alembic_config(rt.store.engine), "0005")
        with rt.store.reading() as conn:
            stored = dict(conn.execute(select(t.executions.c.step_id,
                                              t.executions.c.arguments)).all())
            steps = dict(conn.execute(select(t.plan_steps.c.step_id,
                                             t.plan_steps.c.arguments)).all())
        assert stored == executed
        assert steps == {s.id: s.arguments for s in plan.steps}
        command.upgrade(_alembic_config(rt.store.engine), "head")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_what_the_old_triage_dropped_silently_goes_to_a_person_on_upgrade(
        request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> None:
    """Found by review: a database upgraded from before needs_human kept its silent drops
    (an unknown kind, a missing value at stake) out of every person's sight."""
    from datetime import UTC, datetime

    from alembic import command
    from sqlalchemy import insert, select

    from decisionops.agent.store import _tables as t
    from decisionops.agent.store._engine import _alembic_config

    url = (request.getfixturevalue("pg_url") if backend == "postgres"
           else f"sqlite:///{tmp_path / 's.sqlite'}")
    store = Store.open(url)
    try:
        config = _alembic_config(store.engine)
        command.downgrade(config, "0009_plans")
        old = {  # id: (value_at_stake, reason as the old triage wrote it)
            "p-unknown-kind": (9_000.0, "no_playbook"),
            "p-no-value": (None, "low_expected_value"),
            "p-small-value": (10.0, "low_expected_value"),
            "p-low-score": (50_000.0, "below_threshold"),
        }
        when = datetime(2026, 11, 1, tzinfo=UTC)
        with store.engine.begin() as conn:
            for pid, (value, reason) in old.items():
                conn.execute(insert(t.predictions).values(
                    id=pid, kind="fraud" if reason == "no_playbook" else "churn",
                    entity_type="account", entity_id="ACC-1", model="m", model_version="1",
                    score=0.9, value_at_stake=value, observed_at=when, payload={}, source="test",
                    ingested_at=when, triage_action="drop", triage_reason=reason,
                    triage_detail="old", triaged_at=when))
        command.upgrade(config, "head")
        with store.engine.connect() as conn:
            rows = {r.id: (r.triage_action, r.triage_reason) for r in conn.execute(
                select(t.predictions.c.id, t.predictions.c.triage_action,
                       t.predictions.c.triage_reason))}
        assert rows == {"p-unknown-kind": ("needs_human", "no_playbook"),
                        "p-no-value": ("needs_human", "missing_value"),
                        "p-small-value": ("drop", "low_expected_value"),
                        "p-low-score": ("drop", "below_threshold")}
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_predictions_with_a_decision_are_marked_started_on_upgrade(
        request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> None:
    """0014: a store from before ``started_at`` keeps its open work open and its started
    work started: no prediction is claimed twice, none is left behind."""
    from alembic import command

    from decisionops.agent.models import Prediction
    from decisionops.agent.runtime import Runtime
    from decisionops.agent.settings import Settings
    from decisionops.agent.store._engine import _alembic_config

    url = (request.getfixturevalue("pg_url") if backend == "postgres"
           else f"sqlite:///{tmp_path / 's.sqlite'}")
    settings = Settings(home=tmp_path / "home", database_url=url, holdout_share=0)

    def churn(n: int, account: str) -> Prediction:
        return Prediction(id=f"m-{n}", model="churn-gbm", kind="churn", entity_type="account",
                          entity_id=account, score=0.9, value_at_stake=40_000,
                          observed_at="2026-11-20T08:00:00Z")

    with Runtime(settings, actor="test") as rt:
        rt.enterprise.seed()
        # One prediction with its decision, one waiting; then back to 0013, which has no
        # started_at, and up again.
        rt.ingest([churn(1, "ACC-10004")], source="test")
        rt.triage_pending()
        (first,) = start_decisions(rt)
        rt.ingest([churn(2, "ACC-10005")], source="test")
        rt.triage_pending()
        command.downgrade(_alembic_config(rt.store.engine), "0013_autonomy")
        command.upgrade(_alembic_config(rt.store.engine), "head")
        assert rt.store.predictions.queue_depth() == 1
        (second,) = start_decisions(rt)
        assert second.decision_id != first.decision_id
        assert start_decisions(rt) == [] and rt.store.predictions.queue_depth() == 0


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_each_day_s_llm_spend_is_totalled_on_upgrade(request: pytest.FixtureRequest,
                                                     tmp_path: Path, backend: str) -> None:
    """0015: the running daily totals the spend cap reads start from the calls a store
    recorded before them."""
    from datetime import UTC, date, datetime

    from alembic import command
    from sqlalchemy import insert

    from decisionops.agent.store import _tables as t
    from decisionops.agent.store._engine import _alembic_config

    url = (request.getfixturevalue("pg_url") if backend == "postgres"
           else f"sqlite:///{tmp_path / 's.sqlite'}")
    store = Store.open(url)
    try:
        command.downgrade(_alembic_config(store.engine), "0014_open_work")
        calls = [(datetime(2026, 12, 1, 23, 59, tzinfo=UTC), 1.5),
                 (datetime(2026, 12, 1, 0, 0, tzinfo=UTC), 0.25),
                 (datetime(2026, 12, 2, 0, 0, 1, tzinfo=UTC), 4.0)]
        with store.db.transaction() as conn:
            conn.execute(insert(t.llm_calls), [
                {"decision_id": "d", "plan_version": 1, "purpose": "plan", "model": "m",
                 "tokens_in": 1, "tokens_out": 1, "cost": cost, "outcome": "ok", "at": at}
                for at, cost in calls])
        command.upgrade(_alembic_config(store.engine), "head")
        assert store.llm.spend_on(date(2026, 12, 1)) == 1.75
        assert store.llm.spend_on(date(2026, 12, 2)) == 4.0
        store.llm.record_llm_call(decision_id="d", plan_version=1, purpose="plan", model="m",
                                  prompt_version=None, tokens_in=1, tokens_out=1, cost=1.0,
                                  latency_ms=1, outcome="ok",
                                  at=datetime(2026, 12, 2, 12, tzinfo=UTC))
        assert store.llm.spend_on(date(2026, 12, 2)) == 5.0
    finally:
        store.close()
