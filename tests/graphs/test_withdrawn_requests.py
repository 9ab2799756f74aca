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
    # The decision's side-by-side view says the others' parts were withdrawn (not
    # "superseded", which reads as replaced by a newer plan version).
    from decisionops.agent.approvals import argument_trail

    trail = argument_trail(rt.store.plans.get(decision), rt.store.approvals.list(
        decision_id=decision), rt.store.executions.list(decision))
    by_function = {s["function"]: s["approval"] for s in trail}
    assert by_function[first] == "rejected"
    assert {by_function[f] for f in others} == {"withdrawn"}


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


def test_two_answers_that_each_end_the_version_at_once_queue_not_deadlock(
        rt: Runtime) -> None:
    """(review: each would lock its own request, then wait on the other's to withdraw it;
    on PostgreSQL one was aborted as a deadlock, an internal error to its approver)"""
    import threading

    from decisionops.agent.approvals import Approver

    assets = rt.enterprise.rows("assets")
    part = rt.enterprise.rows("skus")[0]["sku"]
    for n in range(4):  # each on its own asset (the failure playbook's cooldown: 14 days)
        asset = assets[n]
        decision = start(rt, failure(f"race-{n}", asset=asset["asset_id"], site=asset["site"],
                                     part=part)).decision_id
        requests = pending(rt, decision)
        racers = sorted(requests)[:2]
        barrier = threading.Barrier(2)
        outcomes: dict[str, str] = {}

        def reject(function: str, approval_id: str, barrier: threading.Barrier = barrier,
                   outcomes: dict[str, str] = outcomes) -> None:
            user = rt.store.users.get(_person(rt, function))
            assert user is not None
            by = Approver(name=user["name"], role=user["role"],
                          functions=tuple(user["functions"]), channel="api")
            barrier.wait()
            try:
                rt.approvals.answer(approval_id, Reject(reason="race"), by=by)
                outcomes[function] = "recorded"
            except ConflictError as exc:
                outcomes[function] = exc.details.get("reason", "conflict")
            except Exception as exc:  # a deadlock: the failure this test is about
                outcomes[function] = f"{type(exc).__name__}: {exc}"

        threads = [threading.Thread(target=reject, args=(f, requests[f]["id"]))
                   for f in racers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes.values()) == ["recorded", "withdrawn"], outcomes
        rt.run_once()
        assert rt.store.decisions.get(decision).status == "rejected"


def test_ledger_verify_names_a_withdrawal_made_up_or_undone_in_the_database(
        rt: Runtime) -> None:
    """(review: a pending request set to withdrawn in the database skipped its function's
    steps, and a withdrawn one set back to pending, both verified)"""
    from sqlalchemy import update

    from decisionops.agent.store import _tables as t
    from decisionops.agent.store import ledger

    revised = start(rt, churn("w-1", account="ACC-10004")).decision_id
    first = pending(rt, revised)
    answer(rt, first["sales"]["id"], Revise(feedback="15% discount"), approver_name="raj@sales")
    waiting = start(rt, churn("w-2", account="ACC-10005")).decision_id
    asked = pending(rt, waiting)
    assert ledger.verify(rt.store.engine).ok
    with rt.store.transaction() as conn:
        conn.execute(update(t.approvals).where(t.approvals.c.id == asked["finance"]["id"])
                     .values(status="superseded", answer={"type": "withdrawn",
                                                          "reason": "made up"}))
        conn.execute(update(t.approvals).where(t.approvals.c.id == first["finance"]["id"])
                     .values(status="pending", answer=None))
    found = {(d.id, d.field, d.row, d.ledger)
             for d in ledger.verify(rt.store.engine).disagreements}
    assert found == {(asked["finance"]["id"], "status", "superseded (withdrawn)", "pending"),
                     (first["finance"]["id"], "status", "pending", "superseded (withdrawn)")}


def test_no_reminder_goes_out_for_a_request_withdrawn_since_the_sweep_read_it(
        rt: Runtime) -> None:
    """(review: the SLA sweep reads the due requests first; one withdrawn by an earlier
    expiry in the same sweep was still reminded and escalated)"""
    decision = start(rt, churn("w-3", account="ACC-10006")).decision_id
    asked = pending(rt, decision)
    read = rt.store.approvals.get(asked["finance"]["id"])  # as the sweep read it
    answer(rt, asked["sales"]["id"], Revise(feedback="15% discount"), approver_name="raj@sales")
    assert not rt.store.approvals.claim_alert(read, "reminder", detail="due", actor="sla")
    fresh = pending(rt, decision)["finance"]
    assert rt.store.approvals.claim_alert(rt.store.approvals.get(fresh["id"]), "reminder",
                                          detail="due", actor="sla")


def test_a_request_closed_without_a_withdrawal_is_not_fed_as_an_answer(rt: Runtime) -> None:
    """A request superseded only as its decision finished has no answer to give: the
    engine reads withdrawn ones of the current version as answers, never those (one fed
    would fail every leg of the decision)."""
    from sqlalchemy import update

    from decisionops.agent.store import _tables as t

    decision = start(rt, churn("w-9", account="ACC-10007")).decision_id
    asked = pending(rt, decision)
    with rt.store.transaction() as conn:
        conn.execute(update(t.approvals).where(t.approvals.c.id == asked["sales"]["id"])
                     .values(status="superseded"))
    answer(rt, asked["finance"]["id"], Approve(), approver_name="dana@finance")
    row = rt.store.decisions.get(decision)
    assert (row.status, row.error) == ("awaiting_approval", None)
