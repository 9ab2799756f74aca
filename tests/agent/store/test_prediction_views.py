"""Every prediction accounted for, on both backends: each listed with its outcome and
reason (a decision that needs a human shows as needs_human with the decision's reason),
filters, and the queue's conditional write."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from decisionops.agent.errors import ConflictError, NotFoundError
from decisionops.agent.models import DecisionStatus, Prediction, TriageAction, TriageVerdict
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from decisionops.agent.store import _tables as t

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def predict(pid: str, kind: str, entity: str, score: float, value: float | None = 40_000,
            hours: int = 0) -> Prediction:
    return Prediction(id=pid, model="m", kind=kind, entity_type="account", entity_id=entity,
                      score=score, value_at_stake=value, observed_at=T0 + timedelta(hours=hours))


@pytest.fixture(params=["sqlite", "postgres"])
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    settings = Settings(home=tmp_path / "home", database_url=url, holdout_share=0.0,
                        kind_aliases={"customer_attrition": "churn"})
    with Runtime(settings, actor="triager") as runtime:
        yield runtime


def test_each_prediction_has_an_outcome_and_a_reason(rt: Runtime) -> None:
    rt.ingest([predict("p-act", "churn", "ACC-10001", 0.9),
               predict("p-low", "churn", "ACC-10002", 0.1, hours=1),
               predict("p-novalue", "churn", "ACC-10003", 0.9, value=None, hours=2),
               predict("p-fraud", "fraud", "ACC-10004", 0.96, hours=3),
               predict("p-alias", "customer_attrition", "ACC-10005", 0.9, hours=4),
               predict("p-wait", "churn", "ACC-10006", 0.9, hours=5)], source="test")
    views = rt.store.prediction_views
    assert views.get("p-wait").outcome == "pending"
    rt.triage_pending()
    by_id = {v.id: v for v in views.list(limit=100)}
    assert {i: (v.outcome, v.reason) for i, v in by_id.items()} == {
        "p-act": ("act", "act"), "p-low": ("drop", "below_threshold"),
        "p-novalue": ("needs_human", "missing_value"), "p-fraud": ("needs_human", "no_playbook"),
        "p-alias": ("act", "act"), "p-wait": ("act", "act")}
    assert "'fraud'" in (by_id["p-fraud"].detail or "")
    assert (by_id["p-alias"].kind, by_id["p-alias"].kind_as_received) == (
        "churn", "customer_attrition")
    assert by_id["p-act"].kind_as_received is None
    assert [v.id for v in views.list(outcome="needs_human", limit=10, oldest_first=True)] == [
        "p-novalue", "p-fraud"]
    assert [v.id for v in views.list(kind="fraud")] == ["p-fraud"]
    assert [v.id for v in views.list(entity_id="ACC-10002")] == ["p-low"]
    assert len(views.list(limit=2)) == 2
    assert views.count("needs_human") == 2
    with pytest.raises(NotFoundError):
        views.get("nope")


def test_a_decision_that_needs_a_human_shows_as_needs_human_with_its_reason(rt: Runtime) -> None:
    rt.ingest([predict("p-1", "churn", "ACC-10001", 0.9),
               predict("p-2", "churn", "ACC-10002", 0.9, hours=1)], source="test")
    rt.triage_pending()
    claims = rt.store.decisions.claim_new(owner="w", lease_seconds=60)
    assert len(claims) == 2
    with rt.store.transaction() as conn:  # what routing records for an unknown entity
        conn.execute(update(t.decisions).where(t.decisions.c.prediction_id == "p-1").values(
            status=DecisionStatus.NEEDS_HUMAN.value, error="entity ACC-10001 is unknown"))
    one, two = rt.store.prediction_views.get("p-1"), rt.store.prediction_views.get("p-2")
    assert (one.outcome, one.reason, one.detail) == (
        "needs_human", "decision_needs_human", "entity ACC-10001 is unknown")
    assert (one.decision_id, one.decision_status) == (claims[0].decision_id, "needs_human")
    assert (one.triage_action, one.triage_reason) == ("act", "act")
    assert (two.outcome, two.decision_status) == ("act", "planning")
    assert [v.id for v in rt.store.prediction_views.list(outcome="needs_human")] == ["p-1"]


def test_settle_is_conditional_on_the_verdict_it_read(rt: Runtime) -> None:
    rt.ingest([predict("p-1", "fraud", "ACC-10001", 0.9)], source="test")
    rt.triage_pending()
    views = rt.store.prediction_views
    seen = views.get("p-1")
    before = len(rt.store.ledger.entries())
    drop = TriageVerdict(prediction_id="p-1", action=TriageAction.DROP, reason="dismissed",
                         detail="dismissed by ops: test")
    views.settle(seen, drop, actor="ops", event="prediction.dismissed", body={})
    entries = rt.store.ledger.entries()
    assert len(entries) == before + 1
    assert (entries[-1].actor, entries[-1].event, entries[-1].body["prediction_id"]) == (
        "ops", "prediction.dismissed", "p-1")
    with pytest.raises(ConflictError):  # a second answer on what it read is refused
        views.settle(seen, drop, actor="other", event="prediction.dismissed", body={})
    assert len(rt.store.ledger.entries()) == before + 1
    assert (views.get("p-1").outcome, views.get("p-1").detail) == ("drop", "dismissed by ops: test")
