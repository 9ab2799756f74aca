"""Plan versions in the store: a non-deterministic planner's draft is stored before the
guard runs (``drafted``), then accepted or refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from decisionops.agent.errors import ConflictError
from decisionops.agent.models import Plan, Prediction, Step, TriageAction, TriageVerdict
from decisionops.agent.store import Store


def _decision(store: Store) -> str:
    prediction = Prediction(id="p-plans", model="m", kind="churn", entity_type="account",
                            entity_id="ACC-PLANS", score=0.9, value_at_stake=10_000,
                            observed_at=datetime(2026, 11, 20, tzinfo=UTC))
    store.predictions.ingest([prediction], source="test", actor="test")
    store.predictions.record_triage([TriageVerdict(
        prediction_id=prediction.id, action=TriageAction.ACT, reason="act",
        playbook="churn-retention")], actor="test")
    (claim,) = store.decisions.claim_new(owner="w", lease_seconds=60, limit=1)
    return claim.decision_id


def _plan(decision_id: str, credit: int) -> Plan:
    return Plan(decision_id=decision_id, planner="llm", playbook="churn-retention", steps=(
        Step(id="offer", function="sales", tool="crm.create_offer",
             arguments={"account_id": "ACC-PLANS", "discount_pct": 10}),
        Step(id="credit", function="finance", tool="billing.issue_credit",
             arguments={"account_id": "ACC-PLANS", "amount": credit}, depends_on=("offer",))))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open(f"sqlite:///{tmp_path / 'plans.db'}")
    yield store
    store.close()


def _save(store: Store, plan: Plan, verdict: str, record: dict[str, object]) -> bool:
    with store.decision_tx(plan.decision_id, fence=None, actor="test") as tx:
        return store.plans.save(tx, plan, verdict=verdict, record=record)


def test_a_draft_the_guard_accepts_unchanged_is_accepted_in_place(store: Store) -> None:
    decision_id = _decision(store)
    draft = _plan(decision_id, 500)
    assert _save(store, draft, "drafted", {"planner": "llm", "calls": 1})
    drafted = store.plans.row(decision_id, 1)
    assert drafted is not None
    assert _save(store, draft, "accepted", {"planner": "llm", "calls": 1, "guard": "ok"})
    accepted = store.plans.row(decision_id, 1)
    assert accepted is not None
    # the same version, drafted when it was drafted; only its verdict and record move on
    assert (accepted["hash"], accepted["created_at"]) == (drafted["hash"], drafted["created_at"])
    assert (accepted["verdict"], accepted["meta"]) == ("accepted", {"planner": "llm", "calls": 1,
                                                                    "guard": "ok"})
    assert sorted(s["step_id"] for s in store.plans.steps(decision_id, 1)) == ["credit", "offer"]
    events = [(e.event, e.plan_hash) for e in store.ledger.entries(decision_id)
              if e.event.startswith("plan.")]
    assert events == [("plan.drafted", draft.hash), ("plan.accepted", draft.hash)]
    assert store.decisions.get(decision_id).plan_hash == draft.hash
    # idempotent, and an accepted version is never replaced
    assert not _save(store, draft, "accepted", {"planner": "llm"})
    with pytest.raises(ConflictError):
        _save(store, _plan(decision_id, 900), "accepted", {})


def test_a_draft_the_guard_changed_is_replaced_by_its_guarded_form(store: Store) -> None:
    decision_id = _decision(store)
    _save(store, _plan(decision_id, 5_000), "drafted", {"planner": "llm"})
    guarded = _plan(decision_id, 500)  # e.g. the guard clamped an argument to its bound
    assert _save(store, guarded, "accepted", {"planner": "llm", "guard": "clamped"})
    stored = store.plans.row(decision_id, 1)
    assert stored is not None and (stored["hash"], stored["verdict"]) == (guarded.hash, "accepted")
    assert store.plans.get(decision_id, 1) == guarded
    assert store.decisions.get(decision_id).plan_hash == guarded.hash
