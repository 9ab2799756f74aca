"""LangGraph accepts several misuses silently; the engine refuses each one, loudly,
before anything is invoked, and leaves the decision as it was."""

from __future__ import annotations

import pytest

from agent.errors import ConflictError
from agent.models import Approve, decision_id_for
from agent.runtime import Runtime
from tests.graphs.conftest import churn, pending, start

ANSWER = {"answer": {"type": "approve", "comment": ""}, "approver": "dana@finance"}


def _checkpoint_id(rt: Runtime, decision_id: str) -> str:
    return rt.graph.get_state(rt.engine.config(decision_id)).config["configurable"][
        "checkpoint_id"]


def test_resuming_an_unknown_interrupt_id_is_refused(rt: Runtime) -> None:
    decision = start(rt, churn()).decision_id
    before = _checkpoint_id(rt, decision)
    with pytest.raises(ConflictError, match=r"interrupt ids not pending.*not-an-id"):
        rt.engine.resume_interrupts(decision, {"not-an-id": ANSWER})
    assert _checkpoint_id(rt, decision) == before
    assert set(pending(rt, decision)) == {"sales", "finance"}


def test_resuming_by_the_right_interrupt_id_works(rt: Runtime) -> None:
    decision = start(rt, churn()).decision_id
    finance = pending(rt, decision)["finance"]
    result = rt.engine.resume_interrupts(decision, {finance["interrupt_id"]: ANSWER})
    assert result.status == "awaiting_approval"
    snapshot = rt.graph.get_state(rt.engine.config(decision))
    assert [i.id for i in snapshot.interrupts] == [pending(rt, decision)["sales"]["interrupt_id"]]


def test_resuming_a_finished_decision_is_refused(rt: Runtime) -> None:
    decision = start(rt, churn()).decision_id
    requests = pending(rt, decision)
    interrupt_ids = {r["interrupt_id"] for r in requests.values()}
    for function, request in requests.items():
        rt.answer(request["id"], Approve(), approver=rt.policies.get(function).approvers[0])
    assert rt.store.decision(decision)["status"] == "completed"
    effects = len(rt.enterprise.effects())
    with pytest.raises(ConflictError, match="already finished"):
        rt.engine.resume_interrupts(decision, {i: ANSWER for i in interrupt_ids})
    with pytest.raises(ConflictError, match="no answered approvals"):
        rt.engine.resume(decision)
    assert len(rt.enterprise.effects()) == effects


def test_new_input_on_a_waiting_decision_is_refused(rt: Runtime) -> None:
    prediction = churn()
    decision = start(rt, prediction).decision_id
    before = _checkpoint_id(rt, decision)
    with pytest.raises(ConflictError, match="waiting for approvals"):
        rt.engine.start(prediction.id)
    assert _checkpoint_id(rt, decision) == before
    assert set(pending(rt, decision)) == {"sales", "finance"}


def test_starting_a_finished_decision_again_is_refused(rt: Runtime) -> None:
    prediction = churn(value=10_000, segment="mid_market")
    decision = start(rt, prediction).decision_id
    rt.answer(pending(rt, decision)["sales"]["id"], Approve(), approver="raj@sales")
    with pytest.raises(ConflictError, match="already finished"):
        rt.engine.start(prediction.id)


def test_resume_of_a_decision_that_never_started_is_refused(rt: Runtime) -> None:
    with pytest.raises(ConflictError, match="never started"):
        rt.engine.resume_interrupts("dec_nope", {"x": ANSWER})


def test_an_empty_resume_is_refused(rt: Runtime) -> None:
    decision = start(rt, churn()).decision_id
    with pytest.raises(ConflictError, match="no answers"):
        rt.engine.resume_interrupts(decision, {})


def test_duplicate_ingest_is_a_no_op(rt: Runtime) -> None:
    prediction = churn()
    first = rt.ingest([prediction], source="a")
    second = rt.ingest([prediction, prediction], source="b")
    assert (first.new, second.new, second.duplicates) == ([prediction.id], [],
                                                          [prediction.id, prediction.id])
    rt.triage_pending()
    rt.start_actionable()
    rt.ingest([prediction], source="c")
    assert rt.triage_pending().verdicts == []
    assert rt.start_actionable().started == []
    assert len(rt.store.decisions()) == 1
    assert rt.store.decision(decision_id_for(prediction.id))["status"] == "awaiting_approval"


def test_second_prediction_for_the_same_entity_is_dropped_by_cooldown(rt: Runtime) -> None:
    start(rt, churn("a"))
    rt.ingest([churn("b")], source="test")
    (verdict,) = rt.triage_pending().verdicts
    assert verdict.reason == "cooldown"


def test_only_actionable_predictions_start(rt: Runtime) -> None:
    low = churn("low", score=0.1)
    rt.ingest([low], source="test")
    rt.triage_pending()
    with pytest.raises(ConflictError, match="below_threshold"):
        rt.engine.start(low.id)


def test_a_worker_that_lost_its_lease_can_neither_act_nor_checkpoint(rt: Runtime) -> None:
    import time

    from langgraph.types import Command

    from agent.errors import LeaseLost

    decision = start(rt, churn()).decision_id
    requests = pending(rt, decision)
    for function, request in requests.items():
        rt.answer(request["id"], Approve(), approver=rt.policies.get(function).approvers[0],
                  apply=False)
    before = _checkpoint_id(rt, decision)
    stale = rt.store.claim(decision, "paused-worker", lease_seconds=0.05)
    time.sleep(0.1)  # its lease lapses while it is paused; another worker takes over
    rt.store.claim(decision, "other-worker", lease_seconds=60)
    resume = {r["interrupt_id"]: {"answer": {"type": "approve", "comment": ""},
                                  "approver": rt.policies.get(f).approvers[0],
                                  "approved_arguments": rt.store.approval(r["id"])[
                                      "approved_arguments"]}
              for f, r in requests.items()}
    with pytest.raises(LeaseLost):
        rt.engine._invoke(decision, Command(resume=resume), leg="resume", fence=stale)
    assert _checkpoint_id(rt, decision) == before
    assert rt.enterprise.effects() == []
