"""LangGraph accepts several misuses silently (resuming a finished thread, a resume keyed
by an unknown interrupt id, new input on a waiting thread); the engine never makes them:
it resumes only interrupts it read as pending, matched to answers by approval id, and
starts only threads with no checkpoint. And a worker that lost its lease can neither
act nor checkpoint."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import update

from decisionops.agent.errors import ConflictError, LeaseHeld, LeaseLost
from decisionops.agent.models import Approve, Reject, decision_id_for
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from decisionops.agent.store import Claim
from decisionops.agent.store import _tables as t
from decisionops.agent.worker import wait_for
from tests.graphs.conftest import churn, pending, start
from tests.support import answer, approver, start_decisions


def _checkpoint_id(rt: Runtime, decision_id: str) -> str:
    return rt.graph.get_state(rt.engine.config(decision_id)).config["configurable"][
        "checkpoint_id"]


def test_an_answer_is_fed_to_its_own_interrupt_by_approval_id(rt: Runtime) -> None:
    decision = start(rt, churn()).decision_id
    asked = pending(rt, decision)
    # finance answers first (the second interrupt): nothing is fed while sales is asked
    result = answer(rt, asked["finance"]["id"], Approve(), approver_name="dana@finance")
    assert result.status == "awaiting_approval" and result.legs == 0
    snapshot = rt.graph.get_state(rt.engine.config(decision))
    assert {i.value["approval_id"] for i in snapshot.interrupts} == {
        asked["sales"]["id"], asked["finance"]["id"]}
    assert rt.store.approvals.get(asked["finance"]["id"]).applied_at is None
    result = answer(rt, asked["sales"]["id"], Reject(reason="not this account"),
                    approver_name="raj@sales")
    assert result.legs == 1
    answers = rt.graph.get_state(rt.engine.config(decision)).values["answers"]
    assert {f: a["status"] for f, a in answers.items()} == {
        "sales": "rejected", "finance": "approved", "support": "auto_approved"}
    assert all(rt.store.approvals.get(r["id"]).applied_at is not None for r in asked.values())


def test_advancing_a_waiting_decision_with_nothing_answered_changes_nothing(rt: Runtime) -> None:
    decision = start(rt, churn()).decision_id
    before = _checkpoint_id(rt, decision)
    result = rt.engine.advance(decision)
    assert (result.status, result.legs) == ("awaiting_approval", 0)
    assert _checkpoint_id(rt, decision) == before
    assert set(pending(rt, decision)) == {"sales", "finance"}
    assert rt.store.decisions.get(decision).lease_owner is None


def test_advancing_a_finished_decision_does_nothing(rt: Runtime) -> None:
    decision = start(rt, churn()).decision_id
    for function, request in pending(rt, decision).items():
        answer(rt, request["id"], Approve(), approver_name=rt.policies.get(function).approvers[0])
    assert rt.store.decisions.get(decision).status == "completed"
    effects = len(rt.enterprise.effects())
    before = _checkpoint_id(rt, decision)
    result = rt.engine.advance(decision)
    assert (result.status, result.legs) == ("completed", 0)
    assert len(rt.enterprise.effects()) == effects
    assert _checkpoint_id(rt, decision) == before


def test_starting_a_thread_that_has_started_is_refused(rt: Runtime) -> None:
    prediction = churn()
    decision = start(rt, prediction).decision_id
    before = _checkpoint_id(rt, decision)
    fence = rt.store.decisions.claim(decision, rt.engine.owner, 60)
    claim = Claim(prediction.id, decision, fence, prediction.model_dump(mode="json"),
                  "churn-retention")
    with pytest.raises(ConflictError, match="has started already"):
        rt.engine.start(claim)
    assert _checkpoint_id(rt, decision) == before
    assert set(pending(rt, decision)) == {"sales", "finance"}


def test_duplicate_ingest_is_a_no_op(rt: Runtime) -> None:
    prediction = churn()
    first = rt.ingest([prediction], source="a")
    second = rt.ingest([prediction, prediction], source="b")
    assert (first.new, second.new, second.duplicates) == ([prediction.id], [],
                                                          [prediction.id, prediction.id])
    rt.triage_pending()
    start_decisions(rt)
    rt.ingest([prediction], source="c")
    assert rt.triage_pending().verdicts == []
    assert start_decisions(rt) == []
    assert len(rt.store.decisions.list()) == 1
    assert rt.store.decisions.get(decision_id_for(prediction.id)).status == "awaiting_approval"


def test_second_prediction_for_the_same_entity_is_dropped_by_cooldown(rt: Runtime) -> None:
    start(rt, churn("a"))
    rt.ingest([churn("b", observed_at="2026-11-21T08:00:00Z")], source="test")  # a new reading
    (verdict,) = rt.triage_pending().verdicts
    assert verdict.reason == "cooldown"
    rt.ingest([churn("c")], source="test")  # "a"'s reading again: decided once
    (verdict,) = rt.triage_pending().verdicts
    assert verdict.reason == "superseded"


def test_only_actionable_predictions_start(rt: Runtime) -> None:
    low = churn("low", score=0.1)
    rt.ingest([low], source="test")
    (verdict,) = rt.triage_pending().verdicts
    assert verdict.reason == "below_threshold"
    assert start_decisions(rt) == []
    assert rt.store.decisions.list() == []


def test_a_worker_that_lost_its_lease_can_neither_act_nor_checkpoint(rt: Runtime) -> None:
    decision = start(rt, churn()).decision_id
    for function, request in pending(rt, decision).items():
        answer(rt, request["id"], Approve(), approver_name=rt.policies.get(function).approvers[0],
               apply=False)
    before = _checkpoint_id(rt, decision)
    stale = rt.store.decisions.claim(decision, "paused-worker", lease_seconds=0.05)
    time.sleep(0.1)  # its lease lapses while it is paused; another worker takes over
    rt.store.decisions.claim(decision, "other-worker", lease_seconds=60)
    with pytest.raises(LeaseLost):
        rt.engine._legs(decision, stale, None)  # what the paused worker would do on waking
    assert _checkpoint_id(rt, decision) == before
    assert rt.enterprise.effects() == []
    assert {a.applied_at for a in rt.store.approvals.list(decision_id=decision,
                                                          status="approved")} == {None}


@pytest.mark.parametrize("reply", [Approve(), Reject(reason="not now")])
def test_an_answer_marked_applied_whose_interrupt_still_waits_is_applied(
        rt: Runtime, reply: Approve | Reject) -> None:
    """The checkpoint is the authority on what the graph still waits for: an answer whose
    interrupt is pending is fed to it even when its row says it was applied (a leg whose
    progress was lost after the mark), and the loop finds such a decision although it has
    no pending request and no unapplied answer."""
    decision = start(rt, churn()).decision_id
    requests = pending(rt, decision)
    for function, request in requests.items():
        answer(rt, request["id"], reply, approver_name=rt.policies.get(function).approvers[0],
               apply=False)
    fence = rt.store.decisions.claim(decision, "test", 30)
    with rt.store.decision_tx(decision, fence=fence, actor="test") as tx:
        rt.store.approvals.mark_applied(tx, [r["id"] for r in requests.values()])
    rt.store.decisions.release(decision, fence)
    assert not rt.store.approvals.has_unapplied(decision)

    rt.run_once()
    # support's part is approved by policy: it runs either way; the others only if approved
    assert rt.store.decisions.get(decision).status == "completed"
    plan = rt.store.plans.get(decision)
    ran = {s.function for s in plan.steps
           if s.id in {e.step_id for e in rt.store.executions.list(decision)}}
    assert ran == ({"support", *requests} if isinstance(reply, Approve) else {"support"})


def test_a_lease_cannot_be_taken_while_its_holder_writes_under_it(rt: Runtime) -> None:
    """The fence check of a unit of work holds until it commits: a claim made meanwhile
    waits for the commit (it never lands between the check and the holder's writes,
    which would let a worker that lost its lease commit anyway)."""
    decision = start(rt, churn()).decision_id
    fence = rt.store.decisions.claim(decision, "holder", 0.05)
    time.sleep(0.1)  # the holder's lease has lapsed: anyone may take it, once it commits
    order: list[str] = []

    def steal() -> None:
        try:
            rt.store.decisions.claim(decision, "thief", 30)  # waits for the holder's commit
            order.append("claimed")
        except Exception as exc:  # reported by the assertion below
            order.append(repr(exc))

    thief = threading.Thread(target=steal)
    with rt.store.decision_tx(decision, fence=fence, actor="holder") as tx:
        tx.record("test.write", {})
        thief.start()
        thief.join(timeout=0.5)
        order.append("committing")
    thief.join(timeout=30)
    assert order == ["committing", "claimed"]


def test_a_late_answer_on_a_finished_decision_is_consumed_once(rt: Runtime) -> None:
    """An answer recorded for a decision that has finished (it raced the end) is marked
    consumed the first time a worker looks, instead of being retried every tick."""
    decision = start(rt, churn()).decision_id
    for function, request in pending(rt, decision).items():
        answer(rt, request["id"], Approve(), approver_name=rt.policies.get(function).approvers[0])
    assert rt.store.decisions.get(decision).status == "completed"
    finance = rt.store.approvals.list(decision_id=decision, function="finance")[0]
    with rt.store.transaction() as conn:  # the late answer, as it would have landed
        conn.execute(update(t.approvals).where(t.approvals.c.id == finance.id)
                     .values(applied_at=None))
    assert decision in rt.store.approvals.decisions_with_answers()
    rt.run_once()
    assert decision not in rt.store.approvals.decisions_with_answers()
    assert rt.store.decisions.get(decision).status == "completed"


def test_a_leg_longer_than_the_lease_keeps_its_lease(tmp_path: Path) -> None:
    """A worker whose leg outlasts the lease (a slow tool) renews it while it works, so no
    other worker takes the decision from under it."""
    with _slow_leg(tmp_path, tool_delay=2.5) as (rt, decision, leg, outcome):
        time.sleep(1.6)  # past the lease the leg took
        with pytest.raises(LeaseHeld):
            rt.store.decisions.claim(decision, "other-worker", 1)
        leg.join(timeout=30)
        assert [getattr(o, "status", o) for o in outcome] == ["completed"]


def test_a_leg_that_hangs_stops_renewing_and_is_taken_over(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past a bound (here 2 leases) a leg stops renewing its lease: another worker may take
    the decision, and the hung worker is fenced out when it wakes."""
    from decisionops.graphs import engine

    monkeypatch.setattr(engine._Heartbeat, "_MAX_LEASES", 2)
    with _slow_leg(tmp_path, tool_delay=4.5) as (rt, decision, hung, outcome):
        assert wait_for(lambda: _taken(rt, decision), timeout=4.0)
        hung.join(timeout=30)
        assert [type(o) for o in outcome] == [LeaseLost]


@contextmanager
def _slow_leg(tmp_path: Path, tool_delay: float
              ) -> Iterator[tuple[Runtime, str, threading.Thread, list[object]]]:
    """A runtime with 1 s leases, and a decision whose answered leg runs in a thread for
    ``tool_delay`` seconds (a slow tool); its result or ``LeaseLost`` goes to the list."""
    settings = Settings(home=tmp_path / "home", lease_seconds=1, tool_backoff_seconds=0.01)
    with Runtime(settings, actor="slow-worker") as rt:
        rt.enterprise.seed()
        for policy in rt.policies.functions.values():
            for name in policy.approvers:
                approver(rt, name)
        decision = start(rt, churn()).decision_id
        for function, request in pending(rt, decision).items():
            answer(rt, request["id"], Approve(),
                   approver_name=rt.policies.get(function).approvers[0], apply=False)
        rt.enterprise.inject_fault("crm.create_retention_offer", "delay", delay_s=tool_delay)
        outcome: list[object] = []

        def leg() -> None:
            try:
                outcome.append(rt.engine.advance(decision))
            except LeaseLost as exc:
                outcome.append(exc)
        thread = threading.Thread(target=leg)
        thread.start()
        try:
            yield rt, decision, thread, outcome
        finally:
            thread.join(timeout=30)


def _taken(rt: Runtime, decision_id: str) -> bool:
    try:
        rt.store.decisions.claim(decision_id, "other-worker", 30)
    except LeaseHeld:
        return False
    return True
