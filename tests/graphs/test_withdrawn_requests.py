"""An answer that ends a plan version withdraws the other functions' requests of it
(trial 14: after one function asked for a revision, or rejected an all-or-nothing plan,
the others' requests stayed pending: an approver was asked to approve a plan already
dead and told "approved", and the revision waited for the slowest function)."""

from __future__ import annotations

import pytest

from decisionops.agent.errors import ConflictError
from decisionops.agent.models import Approve, Reject, Revise
from decisionops.agent.runtime import Runtime
from tests.graphs.conftest import churn, failure, pending, start, steps
from tests.support import answer


def _failure_decision(rt: Runtime) -> str:
    asset = rt.enterprise.rows("assets")[0]
    part = rt.enterprise.rows("skus")[0]["sku"]
    return start(rt, failure(asset=asset["asset_id"], site=asset["site"], part=part)
                 ).decision_id


def _person(rt: Runtime, function: str) -> str:
    return rt.policies.get(function).approvers[0]


def test_a_revise_withdraws_the_other_requests_and_the_plan_is_drafted_at_once(
        rt: Runtime) -> None:
    decision = start(rt, churn()).decision_id
    requests = pending(rt, decision)
    assert set(requests) == {"sales", "finance"}
    result = answer(rt, requests["sales"]["id"], Revise(feedback="make it a 15% discount"),
                    approver_name="raj@sales")
    # Drafted again without waiting for finance, whose v1 request is withdrawn.
    assert rt.store.plans.get(decision).version == 2
    assert result.status == "awaiting_approval"
    withdrawn = rt.store.approvals.get(requests["finance"]["id"])
    assert withdrawn.status.value == "superseded"
    again = pending(rt, decision)
    assert {r["plan_version"] for r in again.values()} == {2}
    # Finance's late answer to v1 is refused, saying why, and changes nothing.
    with pytest.raises(ConflictError) as refused:
        answer(rt, requests["finance"]["id"], Approve(), approver_name="dana@finance")
    assert "was withdrawn" in refused.value.message
    assert "sales asked to revise plan v1" in refused.value.message
    assert rt.store.approvals.get(requests["finance"]["id"]).status.value == "superseded"
    entries = [e for e in rt.store.ledger.entries() if e.event == "approval.withdrawn"]
    assert [e.body["approval_ids"] for e in entries] == [[requests["finance"]["id"]]]
    # The new version completes as any plan does; the ledger's rows agree with it.
    for function, request in again.items():
        answer(rt, request["id"], Approve(), approver_name=_person(rt, function))
    assert rt.store.decisions.get(decision).status == "completed"
    from decisionops.agent.store import ledger

    assert ledger.verify(rt.store.engine).ok


def test_a_reject_of_an_all_or_nothing_plan_ends_it_without_the_others(rt: Runtime) -> None:
    decision = _failure_decision(rt)
    requests = pending(rt, decision)
    assert len(requests) >= 2, requests
    first, *others = sorted(requests)
    answer(rt, requests[first]["id"], Reject(reason="no crew this week"),
           approver_name=_person(rt, first))
    assert rt.store.decisions.get(decision).status == "rejected"
    assert set(steps(rt, decision).values()) <= {"proposed", "skipped"}  # none ran
    assert rt.enterprise.rows("work_orders") == [] and rt.enterprise.rows("downtimes") == []
    for function in others:
        with pytest.raises(ConflictError) as refused:
            answer(rt, requests[function]["id"], Approve(), approver_name=_person(rt, function))
        assert f"{first} rejected plan v1, which runs all or nothing" in refused.value.message


def test_a_reject_of_a_plan_of_independent_parts_leaves_the_others_to_answer(
        rt: Runtime) -> None:
    decision = start(rt, churn()).decision_id
    requests = pending(rt, decision)
    answer(rt, requests["finance"]["id"], Reject(reason="no credit"),
           approver_name="dana@finance")
    assert rt.store.approvals.get(requests["sales"]["id"]).status.value == "pending"
    answer(rt, requests["sales"]["id"], Approve(), approver_name="raj@sales")
    assert steps(rt, decision)["retention_offer"] == "succeeded"
    assert steps(rt, decision)["goodwill_credit"] == "skipped"
