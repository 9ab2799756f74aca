"""Check before asking: a plan's targets are looked up (read-only) before routing; an
unknown entity sends the decision to a person, and no approver is asked."""

from __future__ import annotations

from sqlalchemy import func, select

from agent.models import Approve
from agent.runtime import Runtime
from agent.store import _tables as t
from tests.graphs.conftest import churn, failure, pending, start, steps
from tests.support import answer


def _approval_rows(rt: Runtime, decision_id: str) -> int:
    with rt.store.reading() as conn:
        return conn.scalar(select(func.count()).select_from(t.approvals)
                           .where(t.approvals.c.decision_id == decision_id))


def _ledger_events(rt: Runtime, decision_id: str) -> list[str]:
    with rt.store.reading() as conn:
        return list(conn.scalars(select(t.ledger.c.event).where(
            t.ledger.c.decision_id == decision_id).order_by(t.ledger.c.seq)))


def test_an_unknown_account_ends_needs_human_and_asks_no_one(rt: Runtime) -> None:
    result = start(rt, churn(account="ACC-99999"))
    decision = rt.store.decisions.get(result.decision_id)
    assert decision.status == "needs_human"
    assert "unknown account 'ACC-99999'" in decision.error
    assert "crm.get_account" in decision.error and "retention_offer" in decision.error
    assert _approval_rows(rt, result.decision_id) == 0
    assert rt.enterprise.effects() == []
    stored = rt.store.plans.row(result.decision_id, 1)
    assert stored["verdict"] == "refused"
    assert any("ACC-99999" in p for p in stored["problems"])
    events = _ledger_events(rt, result.decision_id)
    assert "plan.refused" in events and "approval.requested" not in events


def test_an_unknown_asset_ends_needs_human_and_asks_no_one(rt: Runtime) -> None:
    part = rt.enterprise.rows("skus")[0]["sku"]
    result = start(rt, failure(asset="AST-NOPE-0001", site="PLANT-GDANSK", part=part))
    decision = rt.store.decisions.get(result.decision_id)
    assert decision.status == "needs_human"
    assert "unknown asset 'AST-NOPE-0001'" in decision.error
    # One lookup for both steps acting on the asset, named in the reason.
    assert "maintenance.get_asset for steps work_order, downtime" in decision.error
    assert _approval_rows(rt, result.decision_id) == 0


def test_an_unknown_sku_in_a_feature_is_caught_too(rt: Runtime) -> None:
    asset = rt.enterprise.rows("assets")[0]
    result = start(rt, failure(asset=asset["asset_id"], site=asset["site"],
                               part="SKU-00000"))
    decision = rt.store.decisions.get(result.decision_id)
    assert decision.status == "needs_human"
    assert "unknown sku 'SKU-00000'" in decision.error
    assert _approval_rows(rt, result.decision_id) == 0


def test_a_known_entity_is_unaffected(rt: Runtime) -> None:
    result = start(rt, churn())
    assert result.status == "awaiting_approval"
    requests = pending(rt, result.decision_id)
    assert set(requests) == {"sales", "finance"}
    answer(rt, requests["finance"]["id"], Approve(), approver_name="dana@finance")
    answer(rt, requests["sales"]["id"], Approve(), approver_name="raj@sales")
    assert set(steps(rt, result.decision_id).values()) == {"succeeded"}


def test_a_lookup_that_cannot_answer_now_does_not_hold_the_plan_back(rt: Runtime) -> None:
    rt.enterprise.inject_fault("crm.get_account", "fail_retryable", times=1)
    result = start(rt, churn())
    assert result.status == "awaiting_approval"
    assert set(pending(rt, result.decision_id)) == {"sales", "finance"}
