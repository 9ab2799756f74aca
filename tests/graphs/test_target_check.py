"""Check before asking: a plan's targets are looked up (read-only) before routing; an
unknown entity sends the decision to a person, and no approver is asked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from langgraph.runtime import Runtime as LangGraphRuntime
from sqlalchemy import func, select

from decisionops.agent.models import Approve, Prediction
from decisionops.agent.ports import ToolPort, ToolReceipt, ToolSpec
from decisionops.agent.runtime import Runtime
from decisionops.agent.store import _tables as t
from decisionops.graphs.nodes.check import check
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


def test_a_credit_in_another_currency_than_the_account_s_ends_needs_human(
        rt: Runtime) -> None:
    # Found in a black-box trial: a churn prediction in USD for an account billed in EUR
    # drafted a USD credit; finance policy approved it, the retention offer ran, then the
    # credit failed ("billed in EUR, not USD") and the decision failed half done. What
    # the lookup reads must agree with what the step says about it.
    account = next(a for a in rt.enterprise.rows("accounts") if a["currency"] == "EUR")
    prediction = churn(account=account["account_id"]).model_copy(update={"currency": "USD"})
    result = start(rt, prediction)
    decision = rt.store.decisions.get(result.decision_id)
    assert decision.status == "needs_human", decision
    assert (f"step goodwill_credit says currency USD; {account['account_id']} has currency "
            "EUR (crm.get_account)") in decision.error, decision.error
    assert _approval_rows(rt, result.decision_id) == 0
    assert rt.enterprise.effects() == []


def test_a_transfer_beyond_the_source_s_available_stock_ends_needs_human(
        rt: Runtime) -> None:
    # Found in a black-box trial: a transfer of 4,000 from a site with 3 available was
    # approved, the purchase order ran, the transfer failed and the decision failed.
    stock = min(rt.enterprise.rows("inventory"), key=lambda r: r["on_hand"] - r["reserved"])
    available = stock["on_hand"] - stock["reserved"]
    other = next(s["site_id"] for s in rt.enterprise.rows("sites")
                 if s["site_id"] != stock["site"])
    prediction = Prediction(
        id="so-far", model="demand", kind="stockout", entity_type="sku_site",
        entity_id=f"{stock['sku']}@{other}", score=0.95, value_at_stake=20_000,
        observed_at="2026-11-20T08:00:00Z",
        features={"sku": stock["sku"], "site": other, "surplus_site": stock["site"],
                  "shortfall_units": available + 40, "forecast_units": 100, "on_hand": 10})
    result = start(rt, prediction)
    decision = rt.store.decisions.get(result.decision_id)
    assert decision.status == "needs_human", decision
    assert (f"step transfer asks quantity {available + 40}; {stock['sku']}, {stock['site']} "
            f"has available {available} (erp.get_stock)") in decision.error, decision.error
    assert _approval_rows(rt, result.decision_id) == 0
    assert rt.enterprise.effects() == []


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


class _EveryoneExists:
    """A tool port whose lookups all succeed (the entity appeared meanwhile)."""

    def __init__(self, tools: ToolPort) -> None:
        self._tools = tools

    def spec(self, name: str) -> ToolSpec:
        return self._tools.spec(name)

    def call(self, name: str, arguments: Mapping[str, Any], *, idempotency_key: str
             ) -> ToolReceipt:
        return ToolReceipt(tool=name, idempotency_key=idempotency_key, result={})


def test_a_replayed_leg_keeps_the_stored_refusal(rt: Runtime) -> None:
    result = start(rt, churn("churn-replay", account="ACC-99999"))
    stored = rt.store.plans.row(result.decision_id, 1)
    decision = rt.store.decisions.get(result.decision_id)
    ctx = replace(rt._context(decision.fence), tools=_EveryoneExists(rt.tools), fresh=False)
    state = {"decision_id": result.decision_id, "plan": stored["body"],
             "prediction": rt.store.predictions.get(decision.prediction_id).model_dump(
                 mode="json")}
    command = check(state, LangGraphRuntime(context=ctx))
    assert command.goto == "record"
    assert command.update["outcome"] == "needs_human"
    assert command.update["error"] == decision.error
