"""R1 and F8: the per-decision token cap and the daily spend cap stop further calls (at
most one call over), fall back to the playbook, and say so in the record and the ledger.
Failed calls are recorded and charged."""

from __future__ import annotations

from datetime import timedelta

from tests.fakes.openai_server import ScriptedServer, call, completion, error
from tests.llm.conftest import Factory, World, baseline_steps, plan_args, request


def test_token_cap_stops_after_the_call_that_reached_it(world: World, planner: Factory,
                                                        openai_server: ScriptedServer) -> None:
    over = baseline_steps(world)
    over[0]["arguments"]["discount_pct"] = 45  # refused: would need a repair call
    openai_server.play(completion(tool_calls=[call("submit_plan", plan_args(over))],
                                  usage=(4_000, 1_500)))
    draft = planner(token_cap=5_000).draft(request())
    assert draft.plan is not None and draft.plan.planner == "playbook"
    assert draft.record.fallback.startswith("budget: token cap per decision reached: 5500 of 5000")
    assert draft.record.llm_calls == 1  # the overshoot is the one call that crossed the cap
    entry = next(e for e in world.store.ledger.entries("dec_llm_1")
                 if e.event == "planner.fallback")
    assert entry.body["cause"] == "budget" and entry.body["tokens"] == 5_500


def test_token_cap_counts_earlier_versions_of_the_decision(world: World, planner: Factory,
                                                           openai_server: ScriptedServer) -> None:
    world.store.llm.record_llm_call(decision_id="dec_llm_1", plan_version=1, purpose="plan",
                                model="gpt-test", prompt_version="p", tokens_in=9_000,
                                tokens_out=1_000, cost=0.01, latency_ms=5, outcome="ok")
    draft = planner(token_cap=10_000).draft(request(version=2, feedback=("less discount",)))
    assert draft.record.fallback.startswith("budget: token cap per decision reached")
    assert openai_server.requests == []


def test_daily_spend_cap_falls_back_before_any_call(world: World, planner: Factory,
                                                    openai_server: ScriptedServer) -> None:
    world.store.llm.record_llm_call(decision_id="dec_other", plan_version=1, purpose="plan",
                                model="gpt-test", prompt_version="p", tokens_in=1, tokens_out=1,
                                cost=5.0, latency_ms=5, outcome="ok", at=world.clock.now())
    draft = planner(daily_spend_cap=5.0).draft(request())
    assert draft.plan is not None and draft.plan.planner == "playbook"
    assert draft.record.fallback.startswith("budget: daily spend cap reached: 5.0000 spent, of 5 ")
    assert openai_server.requests == []


def test_spend_of_an_earlier_day_does_not_count(world: World, planner: Factory,
                                                openai_server: ScriptedServer) -> None:
    world.store.llm.record_llm_call(decision_id="dec_other", plan_version=1, purpose="plan",
                                model="gpt-test", prompt_version="p", tokens_in=1, tokens_out=1,
                                cost=5.0, latency_ms=5, outcome="ok", at=world.clock.now())
    world.clock.advance(days=1)  # the planner's day starts after the recorded spend
    world.clock.at += timedelta(hours=1)
    openai_server.play(completion(tool_calls=[call("submit_plan",
                                                   plan_args(baseline_steps(world)))]))
    draft = planner(daily_spend_cap=5.0).draft(request())
    assert draft.record.fallback is None and draft.plan.planner == "llm"


def test_spend_cap_stops_mid_draft_and_an_error_status_is_not_charged(
        world: World, planner: Factory, openai_server: ScriptedServer) -> None:
    openai_server.play(error(500, "boom"), completion(tool_calls=[call(
        "crm__get_account", {"account_id": "ACC-10001"})], usage=(400_000, 50_000)))
    draft = planner(daily_spend_cap=1.0, token_cap=10_000_000).draft(request())
    assert draft.record.fallback.startswith("budget: daily spend cap reached")
    rows = world.store.llm.llm_calls("dec_llm_1")
    assert [r["outcome"] for r in rows] == ["server_error", "ok"]
    # a 5xx is answered unbilled: an outage does not use up the day's cap
    assert (rows[0]["tokens_in"], rows[0]["cost"]) == (0, 0)
    assert rows[1]["cost"] == (400_000 * 2.0 + 50_000 * 8.0) / 1e6
    assert draft.record.cost == round(rows[0]["cost"] + rows[1]["cost"], 8)
    assert round(world.store.llm.spend_on(world.clock.now().date()), 8) == draft.record.cost


def test_the_day_s_spend_is_a_running_total_kept_with_each_call(world: World) -> None:
    """The cap is checked before every call of every draft: it reads one row, the day's
    running total written with each call, not a sum over every call of the day (which
    grows with the day's work)."""
    from decisionops.agent.llm import spend_today

    day_one = world.clock.now()
    for cost in (0.25, 0.5):
        world.store.llm.record_llm_call(
            decision_id="dec_a", plan_version=1, purpose="plan", model="gpt-test",
            prompt_version="p", tokens_in=10, tokens_out=5, cost=cost, latency_ms=5,
            outcome="ok", at=day_one)
    world.clock.advance(days=1)
    world.store.llm.record_llm_call(
        decision_id="dec_b", plan_version=1, purpose="plan", model="gpt-test",
        prompt_version="p", tokens_in=10, tokens_out=5, cost=2.0, latency_ms=5,
        outcome="server_error", at=world.clock.now())
    assert world.store.llm.spend_on(day_one.date()) == 0.75
    assert world.store.llm.spend_on(world.clock.now().date()) == 2.0
    assert spend_today(world.store.llm, world.clock.now()) == 2.0
    assert world.store.llm.spend_on((world.clock.now() + timedelta(days=1)).date()) == 0.0
