"""A model's reply is journaled with the request it answered: a draft run again after a
crash (or a stop) that cut it short before its plan was stored replays the replies it
already paid for instead of asking the model again, and asks only what it has not
asked yet. Once the plan version is stored, its replies are dropped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from tests.fakes.openai_server import ScriptedServer, call, completion
from tests.llm.conftest import Factory, World, baseline_steps, plan_args, request
from tests.llm.test_runtime import PREDICTION, _cli, _steps, env  # noqa: F401 - fixture


def test_a_draft_run_again_replays_the_replies_it_already_had(
        world: World, planner: Factory, openai_server: ScriptedServer) -> None:
    steps = baseline_steps(world)
    over = json.loads(json.dumps(steps))
    over[0]["arguments"]["discount_pct"] = 45  # the guard asks for a repair
    openai_server.play(completion(tool_calls=[call("submit_plan", plan_args(over))]),
                       completion(tool_calls=[call("submit_plan", plan_args(steps))]))
    first = planner().draft(request())
    assert first.plan is not None and first.plan.planner == "llm"
    assert len(openai_server.requests) == 2

    # The process died before the plan was stored: a new planner drafts it again.
    again = planner().draft(request())
    assert len(openai_server.requests) == 2  # no new request reached the model
    assert again.plan is not None and again.plan.hash == first.plan.hash
    # The draft's record tells what its plan cost: the calls made before the crash.
    assert (again.record.llm_calls, again.record.tokens_in, again.record.cost) == (
        first.record.llm_calls, first.record.tokens_in, first.record.cost)
    assert first.record.cost > 0
    calls = world.store.llm.llm_calls("dec_llm_1")
    assert [(c["purpose"], c["outcome"]) for c in calls] == [
        ("plan", "ok"), ("repair", "ok"), ("plan", "replayed"), ("repair", "replayed")]
    assert sum(c["cost"] for c in calls[2:]) == 0 and sum(c["tokens_in"] for c in calls[2:]) == 0


def test_a_spend_cap_reached_by_the_calls_a_draft_replays_does_not_stop_the_replay(
        world: World, planner: Factory, openai_server: ScriptedServer) -> None:
    # The reply was paid for before the crash; that payment reached the day's cap. The
    # replay costs nothing: it goes ahead, and only a new call would be refused.
    steps = baseline_steps(world)
    openai_server.play(completion(tool_calls=[call("submit_plan", plan_args(steps))],
                                  usage=(4_000, 1_000)))
    first = planner(daily_spend_cap=0.01).draft(request())
    assert first.record.fallback is None and first.record.cost > 0.01
    again = planner(daily_spend_cap=0.01).draft(request())
    assert again.record.fallback is None and again.plan is not None
    assert again.plan.planner == "llm" and len(openai_server.requests) == 1
    # Another decision is refused by the cap, before any call.
    other = planner(daily_spend_cap=0.01).draft(request(decision="dec_llm_2"))
    assert other.record.fallback.startswith("budget: daily spend cap reached")


def test_the_report_counts_calls_made_not_replays(
        world: World, planner: Factory, openai_server: ScriptedServer) -> None:
    steps = baseline_steps(world)
    openai_server.play(completion(tool_calls=[call("submit_plan", plan_args(steps))]))
    planner().draft(request())
    planner().draft(request())  # replayed
    usage = world.store.llm.llm_usage()
    assert usage["calls"] == 1 and usage["outcomes"] == {"ok": 1, "replayed": 1}


def test_a_request_asked_twice_in_a_draft_replays_each_reply_in_turn(
        world: World, planner: Factory, openai_server: ScriptedServer) -> None:
    # A reply cut off at the token limit is dropped whole: the draft sends the same
    # request again. Run again, the first time replays the cut reply, the second the plan.
    steps = baseline_steps(world)
    cut = json.dumps(plan_args(steps))[:-40]
    openai_server.play(
        completion(tool_calls=[call("submit_plan", cut)], finish_reason="length"),
        completion(tool_calls=[call("submit_plan", plan_args(steps))]))
    first = planner().draft(request())
    bodies = [r["body"] for r in openai_server.requests]
    assert len(bodies) == 2 and bodies[0] == bodies[1]
    again = planner().draft(request())
    assert len(openai_server.requests) == 2
    assert again.plan is not None and first.plan is not None
    assert again.plan.hash == first.plan.hash
    assert again.record.raw_outputs == first.record.raw_outputs


def test_a_request_that_differs_is_asked_and_other_drafts_do_not_replay(
        world: World, planner: Factory, openai_server: ScriptedServer) -> None:
    steps = baseline_steps(world)
    openai_server.play(*[completion(tool_calls=[call("submit_plan", plan_args(steps))])] * 3)
    planner().draft(request())
    assert len(openai_server.requests) == 1
    # Another plan version of the decision (a revise), and another decision: asked anew.
    planner().draft(request(version=2, feedback=("less discount",)))
    planner().draft(request(decision="dec_llm_2"))
    assert len(openai_server.requests) == 3
    # The world the prompt quotes changed (other features): a new request, asked.
    openai_server.play(completion(tool_calls=[call("submit_plan", plan_args(steps))]))
    from tests.llm.conftest import churn
    planner().draft(request(churn(score=0.95)))
    assert len(openai_server.requests) == 4


def test_storing_the_plan_version_drops_its_replies(
        world: World, planner: Factory, openai_server: ScriptedServer) -> None:
    steps = baseline_steps(world)
    openai_server.play(*[completion(tool_calls=[call("submit_plan", plan_args(steps))])] * 2)
    draft = planner().draft(request())
    assert world.store.llm.replies_held("dec_llm_1") == 1
    world.store.llm.drop_replies("dec_llm_1", 1)
    assert world.store.llm.replies_held("dec_llm_1") == 0
    planner().draft(request())  # nothing to replay: asked again
    assert len(openai_server.requests) == 2 and draft.plan is not None


def test_a_worker_killed_after_the_model_answered_does_not_ask_it_again(
        env: dict[str, str], openai_server: ScriptedServer) -> None:  # noqa: F811
    with Runtime(Settings()) as rt:
        rt.ingest([PREDICTION], source="test")
        steps = _steps(rt)
    # One reply only: a second request would find none and fail the draft.
    openai_server.play(completion(tool_calls=[call("submit_plan", plan_args(steps))]))
    killed = subprocess.run(
        [sys.executable, "-m", "decisionops.agent.cli", "run", "--once", "--planner", "llm"],
        env={**os.environ, "DECISIONOPS_CRASH_AT": "after_model_reply",
             "DECISIONOPS_LEASE_SECONDS": "1"},
        capture_output=True, text=True, timeout=120, check=False)
    assert killed.returncode == 86, killed.stdout + killed.stderr
    assert len(openai_server.requests) == 1

    time.sleep(1.2)  # the dead worker's lease lapses
    code, out = _cli("run", "--once", "--planner", "llm")
    assert code == 0, out
    assert len(openai_server.requests) == 1  # the reply it paid for was replayed
    # The pass carried the decision on to its approvers, and says who waits on them.
    assert "carried on 1" in out and "approval request(s) waiting" in out, out
    with Runtime(Settings()) as rt:
        (decision,) = rt.store.decisions.list()
        assert decision.status.value == "awaiting_approval", decision
        plan = rt.store.plans.get(decision.id)
        assert plan.planner == "llm" and [s.id for s in plan.steps] == [s["id"] for s in steps]
        outcomes = [c["outcome"] for c in rt.store.llm.llm_calls(decision.id)]
        assert outcomes == ["ok", "replayed"]
        assert rt.store.llm.replies_held(decision.id) == 0  # the plan is stored: dropped


@pytest.mark.postgres
def test_the_journal_on_postgresql(pg_url: str) -> None:
    from decisionops.agent.store import Store
    from tests.agent.store.test_plans import _decision, _plan, _save

    store = Store.open(pg_url)
    try:
        decision = _decision(store)
        call_of = {"plan_version": 1, "purpose": "plan", "model": "m", "prompt_version": "p",
                   "tokens_in": 10, "tokens_out": 5, "cost": 0.001, "latency_ms": 3.0,
                   "outcome": "ok", "request_hash": "h1"}
        store.llm.record_llm_call(decision_id=decision, **call_of, reply='{"content": "a"}')
        store.llm.record_llm_call(decision_id=decision, **call_of, occurrence=2,
                                  reply='{"content": "b"}')
        # The same reply recorded again: kept once, not an error.
        store.llm.record_llm_call(decision_id=decision, **call_of, reply='{"content": "x"}')
        journal = store.llm.journal(decision, 1)
        assert {key: j.reply for key, j in journal.items()} == {
            ("h1", 1): '{"content": "a"}', ("h1", 2): '{"content": "b"}'}
        assert journal["h1", 1].cost == 0.001 and journal["h1", 1].tokens_in == 10
        assert store.llm.journal(decision, 2) == {}
        assert store.llm.replies_held(decision) == 2
        _save(store, _plan(decision, 100), "drafted", {})  # the version is stored
        assert store.llm.replies_held(decision) == 0
    finally:
        store.close()


def test_a_decision_s_first_draft_does_not_look_for_what_was_spent_or_journaled(
        world: World, planner: Factory, openai_server: ScriptedServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The leg that created the decision drafts its first version: nothing can have been
    # spent or journaled for it, and a planned decision's reads are what the loop pays.
    looked: list[str] = []
    for name in ("journal", "decision_tokens"):
        real = getattr(world.store.llm, name)
        monkeypatch.setattr(world.store.llm, name,
                            lambda *a, _n=name, _r=real, **k: looked.append(_n) or _r(*a, **k))
    steps = baseline_steps(world)
    openai_server.play(*[completion(tool_calls=[call("submit_plan", plan_args(steps))])] * 2)
    first = request()
    planner().draft(first.model_copy(update={"first": True}))
    assert looked == []
    planner().draft(request(decision="dec_llm_2"))  # carried on, say: it looks
    assert sorted(looked) == ["decision_tokens", "journal"]
