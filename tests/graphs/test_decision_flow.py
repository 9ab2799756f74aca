"""The decision graph end to end on real SQLite files and the reference enterprise:
parallel approvals, reject, edit, revise, and the executor's guarantees."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from decisionops.agent.errors import ConflictError, PermissionDenied, ToolArgumentsError
from decisionops.agent.models import ApprovalRequest, Approve, Edit, Reject, Revise
from decisionops.agent.runtime import Runtime
from decisionops.agent.store import _tables as t
from decisionops.agent.store.ledger import verify as verify_chain
from decisionops.agent.worker import Worker
from tests.graphs.conftest import churn, failure, pending, start, steps
from tests.support import answer


def _ledger_size(rt: Runtime) -> int:
    with rt.store.reading() as conn:
        return conn.scalar(select(func.count()).select_from(t.ledger))


def test_policy_splits_plan_into_auto_approved_and_human_parts(rt: Runtime) -> None:
    result = start(rt, churn())
    assert result.status == "awaiting_approval"
    assert set(pending(rt, result.decision_id)) == {"sales", "finance"}
    auto = rt.store.approvals.list(decision_id=result.decision_id, status="auto_approved")
    assert [a.function for a in auto] == ["support"]
    assert rt.enterprise.effects() == []  # nothing runs before every function answered


def test_requests_are_stored_by_reference_to_the_plan_and_read_back_whole(rt: Runtime
                                                                          ) -> None:
    result = start(rt, churn())
    plan = rt.store.plans.get(result.decision_id)
    finance = pending(rt, result.decision_id)["finance"]
    with rt.store.reading() as conn:
        stored = conn.scalar(select(t.approvals.c.request).where(t.approvals.c.id == finance["id"]))
    # Ids, approvers and what the steps would change (read at routing) only: the plan
    # holds the steps, the row the policy's reason.
    previews = stored.pop("previews")
    assert stored == {"steps": ["goodwill_credit"], "approvers": ["dana@finance", "omar@finance"]}
    assert previews["goodwill_credit"]["tool"] == "finance.preview_credit"
    assert previews["goodwill_credit"]["result"]["after"]["credits_issued"] == 200.0
    request = ApprovalRequest.model_validate(finance["request"])
    assert request.steps == tuple(s for s in plan.steps if s.function == "finance")
    assert (request.approval_id, request.plan_hash) == (finance["id"], plan.hash)
    assert request.other_steps == tuple(f"{s.function}:{s.id}" for s in plan.steps
                                        if s.function != "finance")
    assert request.reason == finance["reason"] and request.reason
    listings = [rt.store.approvals.get(finance["id"]).to_dict(),
                *rt.store.approvals.inbox(["finance"]),
                *(row.to_dict() for row, _ in rt.store.approvals.pending_with_alerts())]
    for listing in listings:
        if listing["id"] == finance["id"]:
            assert listing["request"] == finance["request"]
    # A request stored whole (as before) is returned as it is.
    whole = {**finance["request"], "reason": "stored whole"}
    with rt.store.transaction() as conn:
        conn.execute(update(t.approvals).where(t.approvals.c.id == finance["id"])
                     .values(request=whole))
    assert rt.store.approvals.get(finance["id"]).request.model_dump(mode="json") == whole


def _transactions(rt: Runtime, decision_id: str) -> list[list[str]]:
    """The decision's ledger events grouped by the transaction that wrote them: one
    append per transaction, so consecutive sequence numbers under one timestamp."""
    groups: list[list[str]] = []
    previous = None
    for entry in rt.store.ledger.entries(decision_id):
        if previous is not None and (entry.seq, entry.at) == (previous.seq + 1, previous.at):
            groups[-1].append(entry.event)
        else:
            groups.append([entry.event])
        previous = entry
    return groups


def test_route_stores_the_accepted_plan_with_its_routing_in_one_transaction(rt: Runtime
                                                                            ) -> None:
    decision = start(rt, churn()).decision_id
    # The requests people must answer are stored in the same transaction as the routing:
    # a decision never waits on requests that were not stored.
    assert ["plan.accepted", "approval.auto_approved", "approval.requested",
            "approval.requested", "decision.awaiting_approval"] in _transactions(rt, decision)
    stored = rt.store.plans.row(decision, 1)
    assert stored is not None and stored["verdict"] == "accepted"


def test_the_last_results_are_stored_with_the_terminal_state(rt: Runtime) -> None:
    decision = start(rt, churn()).decision_id
    for function, request in pending(rt, decision).items():
        answer(rt, request["id"], Approve(), approver_name=rt.policies.get(function).approvers[0])
    transactions = _transactions(rt, decision)
    assert transactions[-1] == ["execution.finished", "decision.completed"]
    assert ["decision.executing", "execution.started"] in transactions
    finished, completed = rt.store.ledger.entries(decision)[-2:]
    assert completed.plan_hash == finished.plan_hash == rt.store.plans.get(decision).hash
    last_wave = rt.store.ledger.entries(decision)[-2].body["calls"]
    assert {c["status"] for c in last_wave} == {"succeeded"}
    executions = rt.store.executions.list(decision)
    assert {e.step_id for e in executions} >= {c["step_id"] for c in last_wave}
    assert {e.status for e in executions} == {"succeeded"}
    assert set(steps(rt, decision).values()) == {"succeeded"}
    assert verify_chain(rt.store.engine).ok


@pytest.mark.parametrize("order", [("sales", "finance"), ("finance", "sales")])
def test_two_functions_approve_independently_in_either_order(rt: Runtime,
                                                             order: tuple[str, str]) -> None:
    decision = start(rt, churn()).decision_id
    requests = pending(rt, decision)
    first, second = order
    after_first = answer(rt, requests[first]["id"], Approve(),
                            approver_name=rt.policies.get(first).approvers[0])
    assert after_first.status == "awaiting_approval"
    assert after_first.pending_approvals == [requests[second]["id"]]
    assert rt.enterprise.effects() == []
    done = answer(rt, requests[second]["id"], Approve(),
                     approver_name=rt.policies.get(second).approvers[0])
    assert done.status == "completed"
    assert set(steps(rt, decision).values()) == {"succeeded"}
    tools = sorted(e.tool for e in rt.enterprise.effects())
    assert tools == ["crm.create_retention_offer", "crm.create_task", "finance.issue_credit",
                     "support.open_ticket"]


def test_the_graph_is_resumed_once_every_function_it_waits_on_has_answered(rt: Runtime
                                                                           ) -> None:
    """join needs every function's answer, so an answer while others are pending is kept
    in the store, not fed to the graph: no leg, no checkpoint, no claim; the last answer
    resumes every interrupt in one leg."""
    decision = start(rt, churn()).decision_id
    requests = pending(rt, decision)
    assert set(requests) == {"sales", "finance"}
    checkpoints = len(list(rt.checkpointer.list(rt.engine.config(decision))))
    fence = rt.store.decisions.get(decision).fence
    first = answer(rt, requests["sales"]["id"], Approve(),
                   approver_name=rt.policies.get("sales").approvers[0], apply=False)
    assert first.status == "approved"
    assert decision not in rt.store.approvals.decisions_with_answers()
    report = Worker(rt).tick()
    assert (report.resumed, report.recovered, report.errors) == (0, 0, [])
    assert rt.store.decisions.get(decision).fence == fence  # not even claimed
    assert len(list(rt.checkpointer.list(rt.engine.config(decision)))) == checkpoints
    assert len(rt.engine.graph.get_state(rt.engine.config(decision)).interrupts) == 2

    answer(rt, requests["finance"]["id"], Approve(),
           approver_name=rt.policies.get("finance").approvers[0], apply=False)
    assert decision in rt.store.approvals.decisions_with_answers()
    report = Worker(rt).tick()
    assert report.resumed == 1 and report.results["resumed"][0].legs == 1
    assert rt.store.decisions.get(decision).status == "completed"
    assert all(r.applied_at is not None for r in rt.store.approvals.list(decision_id=decision))


def test_reject_skips_the_functions_steps_and_their_dependents(rt: Runtime) -> None:
    decision = start(rt, churn()).decision_id
    requests = pending(rt, decision)
    answer(rt, requests["finance"]["id"], Approve(), approver_name="dana@finance")
    result = answer(rt, requests["sales"]["id"], Reject(reason="customer already on a deal"),
                       approver_name="raj@sales")
    assert result.status == "completed"
    assert steps(rt, decision) == {"retention_offer": "skipped",
                                   "inform_account_manager": "skipped",
                                   "goodwill_credit": "skipped", "proactive_case": "succeeded"}
    assert [e.tool for e in rt.enterprise.effects()] == ["support.open_ticket"]
    skipped = [e for e in rt.store.ledger.entries(decision) if e.event == "execution.skipped"]
    assert {e.body["step_id"] for e in skipped} == {"retention_offer", "inform_account_manager",
                                                    "goodwill_credit"}


def test_all_functions_rejecting_ends_the_decision_rejected(rt: Runtime) -> None:
    prediction = churn(value=10_000, segment="mid_market")  # no credit step; sales and support
    decision = start(rt, prediction).decision_id
    (sales,) = pending(rt, decision).values()
    result = answer(rt, sales["id"], Reject(reason="no"), approver_name="raj@sales")
    assert result.status == "completed"
    assert [e.tool for e in rt.enterprise.effects()] == ["support.open_ticket"]


def test_an_all_or_nothing_plan_runs_nothing_when_a_function_rejects_its_part(
        rt: Runtime) -> None:
    # Equipment failure is all or nothing (downtime without the work order helps no
    # one): maintenance rejecting the work order stops the downtime and the spare part
    # too, however operations and supply chain answered, and the decision is rejected.
    asset = rt.enterprise.rows("assets")[0]
    part = rt.enterprise.rows("skus")[0]["sku"]
    decision = start(rt, failure(asset=asset["asset_id"], site=asset["site"], part=part)
                     ).decision_id
    requests = pending(rt, decision)
    assert set(requests) == {"maintenance", "operations", "supply_chain"}
    # The others approve first (a reject first withdraws their requests instead:
    # test_withdrawn_requests).
    for function, request in sorted(requests.items(), key=lambda f: f[0] == "maintenance"):
        approver = rt.policies.get(function).approvers[0]
        answer(rt, request["id"], Reject(reason="not this asset") if function == "maintenance"
               else Approve(), approver_name=approver)
    assert rt.store.decisions.get(decision).status == "rejected"
    assert rt.enterprise.effects() == []
    assert set(steps(rt, decision).values()) == {"skipped"}
    skipped = {e.body["step_id"]: e.body["reason"] for e in rt.store.ledger.entries(decision)
               if e.event == "execution.skipped"}
    assert set(skipped) == {"work_order", "downtime", "spare_part"}
    assert all("all or nothing" in why and "maintenance" in why for why in skipped.values())


def test_edit_is_revalidated_and_is_what_executes(rt: Runtime) -> None:
    decision = start(rt, churn()).decision_id
    requests = pending(rt, decision)
    answer(rt, requests["finance"]["id"], Edit(arguments={"goodwill_credit": {"amount": 150}}),
              approver_name="dana@finance")
    answer(rt, requests["sales"]["id"], Approve(), approver_name="raj@sales")
    (credit,) = rt.enterprise.effects("finance.issue_credit")
    assert credit.arguments["amount"] == 150
    executed = {e.step_id: e for e in rt.store.executions.list(decision)}
    assert executed["goodwill_credit"].arguments["amount"] == 150
    assert rt.enterprise.rows("credits")[0]["amount"] == 150
    # Stored: the edited arguments; the others refer to the plan and are read back from it.
    plan = rt.store.plans.get(decision)
    with rt.store.reading() as conn:
        stored = dict(conn.execute(select(t.executions.c.step_id, t.executions.c.arguments)
                                   .where(t.executions.c.decision_id == decision)).all())
        step_copies = conn.scalars(select(t.plan_steps.c.arguments)
                                   .where(t.plan_steps.c.decision_id == decision)).all()
    assert stored["goodwill_credit"]["amount"] == 150 and stored["retention_offer"] is None
    assert executed["retention_offer"].arguments == plan.step("retention_offer").arguments
    assert step_copies and set(step_copies) == {None}
    assert {s["step_id"]: s["arguments"] for s in rt.store.plans.steps(decision, plan.version)
            } == {s.id: s.arguments for s in plan.steps}


@pytest.mark.parametrize(("change", "field"), [
    ({"goodwill_credit": {"amount": 900}}, "arguments.goodwill_credit.amount"),
    ({"goodwill_credit": {"amount": "lots"}}, "arguments.goodwill_credit.amount"),
    ({"goodwill_credit": {"currency": "USD"}}, "arguments.goodwill_credit.currency"),
    ({"goodwill_credit": {"account_id": "ACC-10005"}}, "arguments.goodwill_credit.account_id"),
    ({"goodwill_credit": {"surprise": 1}}, "arguments.goodwill_credit.surprise"),
    ({"retention_offer": {"discount_pct": 5}}, "arguments.retention_offer"),
])
def test_bad_edit_is_refused_naming_the_field_and_changes_nothing(
        rt: Runtime, change: dict, field: str) -> None:
    decision = start(rt, churn()).decision_id
    request = pending(rt, decision)["finance"]
    before = _ledger_size(rt)
    with pytest.raises(Exception) as err:
        answer(rt, request["id"], Edit(arguments=change), approver_name="dana@finance")
    assert getattr(err.value, "field", None) == field
    assert err.value.exit_code == 2
    assert rt.store.approvals.get(request["id"]).status == "pending"
    assert _ledger_size(rt) == before


def test_edit_beyond_limit_is_a_tool_arguments_error(rt: Runtime) -> None:
    decision = start(rt, churn()).decision_id
    request = pending(rt, decision)["finance"]
    with pytest.raises(ToolArgumentsError, match="900 is over the limit of 500"):
        answer(rt, request["id"], Edit(arguments={"goodwill_credit": {"amount": 900}}),
                  approver_name="dana@finance")


def test_only_the_functions_approvers_may_answer_and_only_once(rt: Runtime) -> None:
    decision = start(rt, churn()).decision_id
    request = pending(rt, decision)["finance"]
    with pytest.raises(PermissionDenied):
        answer(rt, request["id"], Approve(), approver_name="raj@sales")
    answer(rt, request["id"], Approve(), approver_name="dana@finance")
    # Another approver is told who answered first, not that they answered twice.
    with pytest.raises(ConflictError, match=r"already answered by dana@finance \(approved\); "
                                            r"an answer is used once, the first one stands"):
        answer(rt, request["id"], Reject(reason="changed my mind"), approver_name="omar@finance")
    # ... and the one who answered, in the same words (trial 27: two wordings)
    with pytest.raises(ConflictError, match=r"already answered by dana@finance \(approved\); "
                                            r"an answer is used once, the first one stands"):
        answer(rt, request["id"], Approve(), approver_name="dana@finance")


def test_revise_redrafts_and_asks_every_function_again_within_the_bound(rt: Runtime) -> None:
    decision = start(rt, churn()).decision_id
    for version in (1, 2):
        requests = pending(rt, decision)
        assert {r["plan_version"] for r in requests.values()} == {version}
        answer(rt, requests["finance"]["id"], Approve(), approver_name="dana@finance")
        result = answer(rt, requests["sales"]["id"], Revise(feedback=f"a {16 - version}% discount"),
                           approver_name="raj@sales")
        assert result.status == "awaiting_approval"
    # max_replans=2: plan v3 is the last; a third revise is refused, saying so (it
    # would count as a rejection the approver never gave), and the request waits on.
    requests = pending(rt, decision)
    assert {r["plan_version"] for r in requests.values()} == {3}
    answer(rt, requests["finance"]["id"], Approve(), approver_name="dana@finance")
    with pytest.raises(ConflictError, match=r"last plan version .*max_replans 2.*approve, "
                                            r"edit or reject"):
        answer(rt, requests["sales"]["id"], Revise(feedback="again"), approver_name="raj@sales")
    assert rt.store.approvals.get(requests["sales"]["id"]).status == "pending"
    result = answer(rt, requests["sales"]["id"], Reject(reason="no deal then"),
                    approver_name="raj@sales")
    assert result.status == "completed"
    assert steps(rt, decision)["retention_offer"] == "skipped"
    old = rt.store.approvals.list(decision_id=decision, status="approved")
    assert {a.plan_version for a in old} == {1, 2, 3}


def test_retryable_tool_errors_are_retried_with_the_same_key(rt: Runtime) -> None:
    rt.enterprise.inject_fault("support.open_ticket", "fail_retryable", times=2)
    decision = start(rt, churn(value=10_000, segment="mid_market")).decision_id
    answer(rt, pending(rt, decision)["sales"]["id"], Approve(), approver_name="raj@sales")
    (ticket,) = [e for e in rt.store.executions.list(decision) if e.step_id == "proactive_case"]
    assert (ticket.status, ticket.attempts) == ("succeeded", 3)
    assert len(rt.enterprise.effects("support.open_ticket")) == 1


def test_a_tool_down_past_its_retries_loses_no_approved_step(rt: Runtime) -> None:
    """(trial 18, HIGH: a tool server down for a few seconds failed the approved decision
    for good, "retries exhausted", and nothing was left to run the step.) Retries that
    run out on a retryable error end the leg, not the step: its write-ahead record stays
    open, the loop carries the decision on once the lease lapses, and the call is made
    again with its key, each leg with its own retries, until the tool answers."""
    from datetime import timedelta

    from decisionops.agent.models import utcnow

    rt.enterprise.inject_fault("support.open_ticket", "fail_retryable", times=4)
    decision = start(rt, churn(value=10_000, segment="mid_market")).decision_id
    answer(rt, pending(rt, decision)["sales"]["id"], Approve(), approver_name="raj@sales",
           apply=False)
    report = Worker(rt).tick()
    assert [e for e in report.errors if "retries exhausted" in e], report.errors
    row = rt.store.decisions.get(decision)
    assert row.status == "executing", row.status
    assert "tried again once the lease lapses (1 of 5" in (row.error or "")
    (ticket,) = [e for e in rt.store.executions.list(decision) if e.step_id == "proactive_case"]
    assert (ticket.status, ticket.attempts) == ("started", 3)
    assert rt.enterprise.effects("support.open_ticket") == []
    with rt.store.engine.begin() as conn:  # the lease lapses
        conn.execute(update(t.decisions).values(lease_until=utcnow() - timedelta(seconds=1)))
    report = Worker(rt).tick()
    assert report.errors == [] and report.resumed + report.recovered == 1, report.summary()
    (ticket,) = [e for e in rt.store.executions.list(decision) if e.step_id == "proactive_case"]
    assert (ticket.status, ticket.attempts) == ("succeeded", 5)
    assert len(rt.enterprise.effects("support.open_ticket")) == 1
    finished = rt.store.decisions.get(decision)
    # its failed legs are behind it: no count of failures in a row left on it
    assert (finished.status, finished.leg_failures) == ("completed", 0)
    assert verify_chain(rt.store.engine).ok


def test_commit_then_dropped_connection_yields_one_effect(rt: Runtime) -> None:
    rt.enterprise.inject_fault("crm.create_retention_offer", "commit_then_fail", times=1)
    decision = start(rt, churn(value=10_000, segment="mid_market")).decision_id
    answer(rt, pending(rt, decision)["sales"]["id"], Approve(), approver_name="raj@sales")
    offer = [e for e in rt.store.executions.list(decision) if e.step_id == "retention_offer"][0]
    assert offer.status == "succeeded"
    assert offer.attempts == 2
    assert offer.receipt["_replayed"] is True
    assert len(rt.enterprise.effects("crm.create_retention_offer")) == 1
    assert len(rt.enterprise.rows("retention_offers")) == 1


def test_a_call_that_committed_then_failed_is_reconciled_from_the_tools_record(
        rt: Runtime) -> None:
    # Every attempt commits, then reports a failure: the retries run out.
    rt.enterprise.inject_fault("crm.create_retention_offer", "commit_then_fail", times=10)
    decision = start(rt, churn(value=10_000, segment="mid_market")).decision_id
    answer(rt, pending(rt, decision)["sales"]["id"], Approve(), approver_name="raj@sales")
    offer = [e for e in rt.store.executions.list(decision) if e.step_id == "retention_offer"][0]
    assert offer.status == "succeeded"
    assert offer.receipt["_reconciled"] is True
    assert len(rt.enterprise.effects("crm.create_retention_offer")) == 1
    assert rt.store.decisions.get(decision).status == "completed"
    assert steps(rt, decision)["inform_account_manager"] == "succeeded"


def test_an_all_or_nothing_plan_compensates_a_call_that_committed_then_failed(
        rt: Runtime) -> None:
    asset = rt.enterprise.rows("assets")[0]
    part = rt.enterprise.rows("skus")[0]["sku"]
    rt.enterprise.inject_fault("maintenance.create_work_order", "commit_then_fail", times=10)
    rt.enterprise.inject_fault("erp.create_purchase_order", "fail_permanent", times=1)
    decision = start(rt, failure(asset=asset["asset_id"], site=asset["site"], part=part)
                     ).decision_id
    for function, request in pending(rt, decision).items():
        answer(rt, request["id"], Approve(), approver_name=rt.policies.get(function).approvers[0])
    assert rt.store.decisions.get(decision).status == "compensated"
    assert [w["status"] for w in rt.enterprise.rows("work_orders")] == ["cancelled"]
    assert len(rt.enterprise.effects("maintenance.create_work_order")) == 1


def test_permanent_failure_skips_dependents_without_compensation(rt: Runtime) -> None:
    rt.enterprise.inject_fault("crm.create_retention_offer", "fail_permanent", times=1)
    decision = start(rt, churn()).decision_id
    requests = pending(rt, decision)
    answer(rt, requests["finance"]["id"], Approve(), approver_name="dana@finance")
    result = answer(rt, requests["sales"]["id"], Approve(), approver_name="raj@sales")
    assert result.status == "failed"
    assert steps(rt, decision) == {"retention_offer": "failed", "goodwill_credit": "skipped",
                                   "inform_account_manager": "skipped",
                                   "proactive_case": "succeeded"}


def test_all_or_nothing_plan_compensates_completed_steps(rt: Runtime) -> None:
    asset = rt.enterprise.rows("assets")[0]
    part = rt.enterprise.rows("skus")[0]["sku"]
    rt.enterprise.inject_fault("erp.create_purchase_order", "fail_permanent", times=1)
    decision = start(rt, failure(asset=asset["asset_id"], site=asset["site"], part=part)
                     ).decision_id
    for function, request in pending(rt, decision).items():
        answer(rt, request["id"], Approve(), approver_name=rt.policies.get(function).approvers[0])
    assert rt.store.decisions.get(decision).status == "compensated"
    assert steps(rt, decision) == {"work_order": "compensated", "downtime": "compensated",
                                   "spare_part": "failed"}
    assert [w["status"] for w in rt.enterprise.rows("work_orders")] == ["cancelled"]
    assert [d["status"] for d in rt.enterprise.rows("downtimes")] == ["cancelled"]


def test_arguments_changed_after_approval_are_refused(rt: Runtime) -> None:
    decision = start(rt, churn()).decision_id
    requests = pending(rt, decision)
    answer(rt, requests["finance"]["id"], Approve(), approver_name="dana@finance", apply=False)
    # Someone with database access raises the approved amount behind the approver's back.
    row = rt.store.approvals.get(requests["finance"]["id"])
    with rt.store.transaction() as conn:
        tampered = {s.id: dict(s.arguments) for s in row.request.steps}
        tampered["goodwill_credit"] = {**tampered["goodwill_credit"], "amount": 499}
        conn.execute(update(t.approvals).where(t.approvals.c.id == row.id).values(
            status="edited", approved_arguments=tampered,
            answer={"type": "edit", "arguments": {"goodwill_credit": {"amount": 499}},
                    "comment": ""}))
    result = answer(rt, requests["sales"]["id"], Approve(), approver_name="raj@sales")
    assert result.status == "failed"
    assert rt.enterprise.effects("finance.issue_credit") == []
    credit = [e for e in rt.store.executions.list(decision) if e.step_id == "goodwill_credit"][0]
    assert "recorded as approved in the ledger" in credit.error


def test_a_call_whose_effect_is_unknown_keeps_its_share_and_is_made_again_with_its_key(
        rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """A credit that committed, then failed, when the tool cannot be asked whether it
    took effect: the step is not failed (trial 18: an outage lost approved work); what
    it may have paid counts against finance's totals while it is open, and the next leg
    makes the call again with its key: the finance system answers from its record, one
    credit."""
    from datetime import timedelta

    from decisionops.agent.errors import ToolCallError
    from decisionops.agent.models import utcnow

    def unreachable(*_: object, **__: object) -> None:
        raise ToolCallError("finance system unreachable", retryable=True)
    rt.enterprise.inject_fault("finance.issue_credit", "commit_then_fail", times=3)
    with monkeypatch.context() as patch:
        patch.setattr(rt.tools, "recall", unreachable)
        decision = start(rt, churn()).decision_id
        for function, request in pending(rt, decision).items():
            answer(rt, request["id"], Approve(),
                   approver_name=rt.policies.get(function).approvers[0], apply=False)
        report = Worker(rt).tick()
    assert [e for e in report.errors if "retries exhausted" in e], report.errors
    credit = [e for e in rt.store.executions.list(decision) if e.tool == "finance.issue_credit"][0]
    assert credit.status == "started"
    assert rt.store.decisions.get(decision).status == "executing"
    assert len(rt.enterprise.effects("finance.issue_credit")) == 1  # it did pay
    used = rt.store.executions.used(tool="finance.issue_credit", measure="amount", target=None,
                                    since=None)
    assert used == credit.arguments["amount"]
    with rt.store.engine.begin() as conn:  # the lease lapses
        conn.execute(update(t.decisions).values(lease_until=utcnow() - timedelta(seconds=1)))
    report = Worker(rt).tick()
    assert report.errors == [], report.errors
    credit = [e for e in rt.store.executions.list(decision) if e.tool == "finance.issue_credit"][0]
    assert credit.status == "succeeded" and credit.receipt["_replayed"] is True
    assert len(rt.enterprise.effects("finance.issue_credit")) == 1
    assert rt.store.decisions.get(decision).status == "completed"
    assert rt.store.executions.used(tool="finance.issue_credit", measure="amount", target=None,
                                    since=None) == credit.arguments["amount"]


def test_a_call_that_failed_without_effect_gives_its_share_back(rt: Runtime) -> None:
    """A credit the finance system refused (no effect) stops counting against finance's
    totals, whichever wave of the plan it was in."""
    rt.enterprise.inject_fault("finance.issue_credit", "fail_permanent", times=1)
    decision = start(rt, churn()).decision_id
    for function, request in pending(rt, decision).items():
        answer(rt, request["id"], Approve(), approver_name=rt.policies.get(function).approvers[0])
    credit = [e for e in rt.store.executions.list(decision) if e.tool == "finance.issue_credit"][0]
    assert credit.status == "failed"
    assert rt.enterprise.effects("finance.issue_credit") == []
    assert rt.store.executions.used(tool="finance.issue_credit", measure="amount", target=None,
                                    since=None) == 0


def test_the_inbox_page_cut_keeps_the_bigger_request_due_in_the_same_hour(rt: Runtime) -> None:
    """The inbox ranks by the hour a request is due, then by the value at stake. A page
    cut by exact deadline first dropped a bigger request due later in the hour of the
    cut (and a request without a deadline, which SQLite sorts first, took a place of one
    due soon)."""
    from datetime import datetime, timedelta

    from decisionops.agent.models import utcnow

    ids = {}
    for n, (account, value) in enumerate((("ACC-10001", 30_000), ("ACC-10002", 31_000),
                                          ("ACC-10003", 90_000), ("ACC-10005", 50_000))):
        decision = start(rt, churn(f"inbox-cut-{n}", account=account, value=value)).decision_id
        ids[value] = pending(rt, decision)["finance"]["id"]
    hour = (utcnow() + timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    due: dict[int, datetime | None] = {30_000: hour + timedelta(minutes=5),
                                       31_000: hour + timedelta(minutes=10),
                                       90_000: hour + timedelta(minutes=50), 50_000: None}
    with rt.store.transaction() as conn:
        for value, deadline in due.items():
            conn.execute(update(t.approvals).where(t.approvals.c.id == ids[value])
                         .values(deadline=deadline))
    page = [r["id"] for r in rt.store.approvals.inbox(["finance"], limit=2)]
    assert page == [ids[90_000], ids[31_000]]
    whole = [r["id"] for r in rt.store.approvals.inbox(["finance"], limit=10)]
    assert whole == [ids[90_000], ids[31_000], ids[30_000], ids[50_000]]
