"""Impact preview: what each step would change is read when the plan is routed, stored
with its request, bound to the answer by its hash, and read again before the first step
runs; a world that changed beyond the tool's tolerance sends the plan back to its
approvers instead of running it. On both backends."""

from __future__ import annotations

from typing import Any

import pytest

from decisionops.agent.errors import ConflictError
from decisionops.agent.models import Approve, Step
from decisionops.agent.preview import drift, preview_steps
from decisionops.agent.runtime import Runtime
from decisionops.agent.store import ledger
from tests.graphs.conftest import churn, start
from tests.support import answer, approver, pending


def _show(rt: Runtime, decision_id: str) -> str:
    """``decisions show`` as a person reads it, on the runtime's data."""
    from typer.testing import CliRunner

    from decisionops.agent.cli import app
    env = {"DECISIONOPS_HOME": str(rt.settings.home), "COLUMNS": "200"}
    if rt.settings.database_url:
        env["DECISIONOPS_DATABASE_URL"] = rt.settings.database_url
    return CliRunner().invoke(app, ["decisions", "show", decision_id], env=env).output


def _credits(rt: Runtime, account: str) -> list[Any]:
    return [e for e in rt.enterprise.effects("finance.issue_credit")
            if e.arguments["account_id"] == account]


def test_the_reference_enterprise_previews_what_each_effect_would_change(rt: Runtime) -> None:
    steps = [
        Step(id="c", function="finance", tool="finance.issue_credit",
             arguments={"account_id": "ACC-10004", "amount": 120, "currency": "EUR",
                        "reason": "goodwill"}),
        Step(id="o", function="sales", tool="crm.create_retention_offer",
             arguments={"account_id": "ACC-10004", "offer_type": "discount",
                        "discount_pct": 10, "duration_months": 6}),
        Step(id="t", function="supply_chain", tool="erp.create_stock_transfer",
             arguments={"sku": "SKU-11253", "from_site": "DC-HAMBURG", "to_site": "DC-MILAN",
                        "quantity": 10}),
        Step(id="n", function="sales", tool="notify.send",
             arguments={"channel": "email", "to": "a@example.com", "subject": "s", "body": "b"}),
    ]
    previews = preview_steps(rt.tools, steps)
    assert set(previews) == {"c", "o", "t"}  # notify.send declares none
    credit = previews["c"]["result"]
    assert credit["before"]["credits_issued"] == 0 and credit["after"]["credits_issued"] == 120
    assert previews["o"]["result"]["after"]["proposed_offers"] == (
        previews["o"]["result"]["before"]["proposed_offers"] + 1)
    transfer = previews["t"]["result"]
    assert transfer["after"]["source_available"] == transfer["before"]["source_available"] - 10
    assert rt.enterprise.effects() == []  # a preview changes nothing


def test_drift_is_beyond_the_tolerance_only() -> None:
    from decisionops.agent.ports import PreviewSpec
    spec = PreviewSpec(tool="x", watch=("before.stock", "before.site"), tolerance=0.1)
    stored = {"result": {"before": {"stock": 100, "site": "A"}}}
    assert drift(spec, stored, {"result": {"before": {"stock": 95, "site": "A"}}}) is None
    moved = drift(spec, stored, {"result": {"before": {"stock": 80, "site": "A"}}})
    assert moved == "before.stock was 100, is 80 (tolerance 10%)"
    assert "before.site was A, is B" in drift(spec, stored,
                                               {"result": {"before": {"stock": 100, "site": "B"}}})
    assert drift(spec, {"error": "down"}, {"result": {}}) is None  # not checked


def test_an_answer_binds_to_the_preview_it_saw(rt: Runtime) -> None:
    decision = start(rt, churn("pv-1")).decision_id
    finance = rt.store.approvals.get(pending(rt, decision)["finance"]["id"])
    assert finance.request.previews["goodwill_credit"]["tool"] == "finance.preview_credit"
    seen = finance.request.preview_hash
    assert len(seen) == 64
    with pytest.raises(ConflictError, match="preview_hash"):
        rt.approvals.answer(finance.id, Approve(), by=approver(rt, "dana@finance"),
                            preview_hash="0" * 64)
    assert rt.store.approvals.get(finance.id).status.value == "pending"  # nothing recorded
    refused = [e for e in rt.store.ledger.search(event="approval.refused")]
    assert refused and refused[0].body["reason"] == "stale_preview"
    rt.approvals.answer(finance.id, Approve(), by=approver(rt, "dana@finance"),
                        preview_hash=seen)
    assert rt.store.approvals.get(finance.id).status.value == "approved"


def test_a_change_recorded_before_the_next_version_is_drafted_says_it_is_to_come(
        rt: Runtime) -> None:
    """(trial 27: a worker stopped right after recording the change; `decisions show`
    said "routed again" where no version 2 existed yet.)"""
    decision = start(rt, churn("pv-cut", account="ACC-10006")).decision_id
    rt.tools.call("finance.issue_credit", {"account_id": "ACC-10006", "amount": 50,
                                           "currency": "EUR", "reason": "manual"},
                  idempotency_key="manual-credit-cut")
    plan = rt.store.plans.get(decision)
    assert rt.approvals.world_check(plan, ["finance"], fence=None, actor="test",
                                    max_replans=2).again  # recorded; the leg stops here
    shown = " ".join(_show(rt, decision).split())  # as read, however the lines wrap
    assert "the world changed before v1 ran (to be drafted and routed again as v2 when " \
        "the loop carries the decision on)" in shown, shown


def test_a_world_that_changed_sends_the_plan_back_and_it_runs_once_approved_again(
        rt: Runtime) -> None:
    decision = start(rt, churn("pv-2", account="ACC-10005")).decision_id
    requests = pending(rt, decision)
    # Someone issues a credit to the same account while the request waits.
    rt.tools.call("finance.issue_credit", {"account_id": "ACC-10005", "amount": 50,
                                           "currency": "EUR", "reason": "manual"},
                  idempotency_key="manual-credit-1")
    answer(rt, requests["sales"]["id"], Approve(), approver_name="raj@sales")
    result = answer(rt, requests["finance"]["id"], Approve(), approver_name="dana@finance")
    assert result.status == "awaiting_approval"  # back to its approvers
    assert len(_credits(rt, "ACC-10005")) == 1  # only the manual one: nothing of the plan ran
    assert [e.tool for e in rt.enterprise.effects()] == ["finance.issue_credit"]
    (changed,) = rt.store.ledger.search(event="preview.changed")
    assert changed.decision_id == decision
    assert "before.credits_issued was 0.0, is 50.0" in changed.body["changed"]["finance"]
    assert (changed.body["then"], changed.body["plan_version"]) == ("routed again", 1)
    shown = _show(rt, decision)
    assert "preview v1 finance:goodwill_credit: ACC-10005: issued credits 0.00" in shown
    assert "the world changed before v1 ran (routed again)" in shown

    again = pending(rt, decision)
    assert set(again) == {"sales", "finance"}
    assert again["finance"]["plan_version"] == 2
    fresh = rt.store.approvals.get(again["finance"]["id"]).request.previews["goodwill_credit"]
    assert fresh["result"]["before"]["credits_issued"] == 50.0  # what the approver sees now
    answer(rt, again["sales"]["id"], Approve(), approver_name="raj@sales")
    result = answer(rt, again["finance"]["id"], Approve(), approver_name="dana@finance")
    assert result.status == "completed"
    assert len(_credits(rt, "ACC-10005")) == 2  # the plan's credit, once
    assert len(rt.enterprise.effects("crm.create_retention_offer")) == 1
    assert ledger.verify(rt.store.engine).ok


def _approve_as_the_world_changes(rt: Runtime, decision: str, account: str) -> Any:
    """Each plan version, up to the replan bound and one past it: a manual credit to
    ``account`` lands after routing, then sales and finance approve; the last answer."""
    for n in range(rt.settings.max_replans + 1):
        requests = pending(rt, decision)
        rt.tools.call("finance.issue_credit", {"account_id": account, "amount": 10,
                                               "currency": "EUR", "reason": "manual"},
                      idempotency_key=f"manual-{n}")
        answer(rt, requests["sales"]["id"], Approve(), approver_name="raj@sales")
        result = answer(rt, requests["finance"]["id"], Approve(), approver_name="dana@finance")
    return result


def test_past_the_replan_bound_the_changed_part_is_skipped_and_the_rest_runs(
        rt: Runtime) -> None:
    decision = start(rt, churn("pv-3", account="ACC-10006")).decision_id
    result = _approve_as_the_world_changes(rt, decision, "ACC-10006")
    assert result.status == "completed"
    changes = rt.store.ledger.search(event="preview.changed")
    assert [c.body["then"] for c in reversed(changes)] == (
        ["routed again"] * rt.settings.max_replans + ["skipped"])
    assert len(_credits(rt, "ACC-10006")) == rt.settings.max_replans + 1  # the manual ones
    assert len(rt.enterprise.effects("crm.create_retention_offer")) == 1
    steps = {s["step_id"]: s for s in rt.store.plans.steps(decision, rt.store.decisions.get(
        decision).plan_version)}
    assert steps["goodwill_credit"]["status"] == "skipped"
    assert "the world changed since approval" in steps["goodwill_credit"]["detail"]


@pytest.mark.parametrize("world", ["changed back", "still changed"])
def test_a_leg_cut_off_after_the_world_changed_keeps_what_it_recorded(
        rt: Runtime, monkeypatch: pytest.MonkeyPatch, world: str) -> None:
    """execute recorded "the world changed since v1 was routed: routed again", and the
    worker died before the leg was checkpointed. The leg runs again from its last
    checkpoint: it does what the ledger says it did (v1 goes back to its approvers) even
    when the world has changed back meanwhile, and says so once."""
    from datetime import timedelta

    from sqlalchemy import update

    import decisionops.graphs.nodes.execute as execute_node
    from decisionops.agent.models import utcnow
    from decisionops.agent.store import _tables as t

    decision = start(rt, churn("pv-4", account="ACC-10007")).decision_id
    requests = pending(rt, decision)
    manual = rt.tools.call("finance.issue_credit", {"account_id": "ACC-10007", "amount": 50,
                                                    "currency": "EUR", "reason": "manual"},
                           idempotency_key="manual-credit-4")

    def crash(point: str) -> None:
        if point == "after_preview_changed":
            raise RuntimeError("crashed after recording the change")
    monkeypatch.setattr(execute_node, "crash_point", crash)
    answer(rt, requests["sales"]["id"], Approve(), approver_name="raj@sales")
    with pytest.raises(RuntimeError, match="crashed after recording"):
        answer(rt, requests["finance"]["id"], Approve(), approver_name="dana@finance")
    monkeypatch.undo()
    if world == "changed back":
        rt.tools.call("finance.void_credit", {"credit_id": manual.result["credit_id"],
                                              "reason": "entered in error"},
                      idempotency_key="void-manual-credit-4")
    with rt.store.transaction() as conn:  # the crashed worker's lease has lapsed
        conn.execute(update(t.decisions).values(lease_until=utcnow() - timedelta(seconds=1)))

    rt.run_once()
    changes = rt.store.ledger.search(event="preview.changed")
    assert [(c.body["plan_version"], c.body["then"]) for c in changes] == [(1, "routed again")]
    again = pending(rt, decision)
    assert {r["plan_version"] for r in again.values()} == {2}
    assert rt.enterprise.effects("crm.create_retention_offer") == []  # v1 never ran
    answer(rt, again["sales"]["id"], Approve(), approver_name="raj@sales")
    result = answer(rt, again["finance"]["id"], Approve(), approver_name="dana@finance")
    assert result is not None and result.status == "completed"
    assert len(rt.enterprise.effects("crm.create_retention_offer")) == 1
    assert ledger.verify(rt.store.engine).ok


def test_an_all_or_nothing_plan_whose_part_the_world_changed_under_runs_nothing(
        rt: Runtime) -> None:
    # The same as above, the plan all or nothing: past the replan bound the changed
    # part is skipped, and with it every other part; the decision ends rejected.
    name = "churn-retention"
    rt.playbooks.playbooks[name] = rt.playbooks.playbooks[name].model_copy(
        update={"all_or_nothing": True})
    decision = start(rt, churn("pv-4", account="ACC-10006")).decision_id
    result = _approve_as_the_world_changes(rt, decision, "ACC-10006")
    assert result.status == "rejected"
    assert rt.enterprise.effects("crm.create_retention_offer") == []
    assert len(_credits(rt, "ACC-10006")) == rt.settings.max_replans + 1  # the manual ones
    steps = rt.store.plans.steps(decision, rt.store.decisions.get(decision).plan_version)
    assert {s["status"] for s in steps} == {"skipped"}
    assert all("all or nothing: finance's part does not run (the world changed"
               in s["detail"] for s in steps)


def test_show_says_what_is_under_way_and_who_holds_it(rt: Runtime) -> None:
    """(trial 27: after a worker died mid-execution, `decisions show` listed its
    auto-approved, started steps as "proposed" and said nothing of the worker.)"""
    from datetime import timedelta

    from sqlalchemy import update

    from decisionops.agent.models import utcnow
    from decisionops.agent.store import _tables as t

    decision = start(rt, churn("pv-show", account="ACC-10007")).decision_id
    asked = pending(rt, decision)
    answer(rt, asked["sales"]["id"], Approve(), approver_name="raj@sales", apply=False)
    with rt.store.engine.begin() as conn:  # as a worker that stopped mid-leg left it
        conn.execute(update(t.decisions).where(t.decisions.c.id == decision).values(
            status="executing", lease_owner="worker:gone", lease_until=utcnow()
            + timedelta(minutes=2)))
    shown = " ".join(_show(rt, decision).split())  # as read, however the lines wrap
    assert "crm.create_retention_offer → approved" in shown, shown
    assert "in the hands of worker:gone until" in shown
    assert "when its lease has lapsed" in shown
    with rt.store.engine.begin() as conn:
        conn.execute(update(t.decisions).where(t.decisions.c.id == decision).values(
            lease_until=utcnow() - timedelta(seconds=1)))
    assert "its lease has lapsed: the loop's next pass carries it on" in " ".join(
        _show(rt, decision).split())


def test_a_started_execution_is_not_shown_as_executed(rt: Runtime) -> None:
    """(trial 29: after a crash before the tool call, the side-by-side view showed the
    step's arguments as executed; a started execution is a write-ahead record of a call
    that may not have been made.)"""
    from dataclasses import replace

    from decisionops.agent.approvals import argument_trail
    from decisionops.agent.models import ExecutionStatus

    decision = start(rt, churn("pv-started", account="ACC-10009")).decision_id
    asked = pending(rt, decision)
    answer(rt, asked["sales"]["id"], Approve(), approver_name="raj@sales")
    answer(rt, asked["finance"]["id"], Approve(), approver_name="dana@finance")
    plan = rt.store.plans.get(decision)
    done = rt.store.executions.list(decision)
    assert done and all(e.status is ExecutionStatus.SUCCEEDED for e in done)
    trail = argument_trail(plan, rt.store.approvals.list(decision_id=decision), [
        replace(e, status=ExecutionStatus.STARTED, receipt=None) for e in done])
    assert all(s["executed"] is None for s in trail), trail
    assert {s["execution"] for s in trail if s["step_id"] in {e.step_id for e in done}} == \
        {"started"}
    shown = argument_trail(plan, rt.store.approvals.list(decision_id=decision), done)
    assert all(s["executed"] is not None for s in shown if s["execution"] == "succeeded")
