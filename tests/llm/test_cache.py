"""The plan cache: matching predictions reuse an accepted LLM plan's structure with their
own arguments, without a call; misses, expiry, feedback and unusable entries call."""

from __future__ import annotations

import copy

import pytest

from decisionops.agent.llm._cache import Unfit, adapt, driver_phrases, entry_key
from decisionops.agent.models import Prediction
from tests.fakes.openai_server import ScriptedServer, call, completion
from tests.llm.conftest import Factory, World, baseline_steps, churn, plan_args, request


def _llm_plan(world: World, prediction=None) -> list[dict]:  # type: ignore[no-untyped-def]
    steps = copy.deepcopy(baseline_steps(world, prediction))
    steps[0]["arguments"]["discount_pct"] = 15  # the model's own choice (playbook: 20)
    steps[0]["arguments"]["note"] = f"Offer for {steps[0]['arguments']['account_id']}"
    return steps


def test_hit_reuses_the_structure_with_the_new_entity(world: World, planner: Factory,
                                                      openai_server: ScriptedServer) -> None:
    openai_server.play(completion(tool_calls=[call("submit_plan", plan_args(_llm_plan(world)))]))
    p = planner(cache_ttl_hours=24)
    first = p.draft(request())
    assert not first.record.cache_hit and first.record.llm_calls == 1
    other = churn("churn-llm-2", account="ACC-10003", score=0.8, value=70_000)
    second = p.draft(request(other, decision="dec_llm_2"))
    assert second.record.cache_hit and second.record.llm_calls == 0
    assert len(openai_server.requests) == 1
    offer = second.plan.step("retention_offer").arguments
    assert offer["account_id"] == "ACC-10003" and offer["note"] == "Offer for ACC-10003"
    # The model said 15 where the playbook said 20; the playbook now says 10 -> 0.75 times 10.
    assert offer["discount_pct"] == 8 and offer["duration_months"] == 6
    credit = second.plan.step("goodwill_credit").arguments
    assert credit["account_id"] == "ACC-10003" and credit["amount"] == 250  # re-rendered
    assert second.plan.decision_id == "dec_llm_2" and second.plan.planner == "llm"
    assert "structure reused from decision dec_llm_1" in second.record.notes[-1]
    assert world.store.llm.cache_stats() == {"entries": 1, "hits": 1}


def test_misses(world: World, planner: Factory, openai_server: ScriptedServer) -> None:
    p = planner(cache_ttl_hours=24)
    openai_server.play(completion(tool_calls=[call("submit_plan", plan_args(_llm_plan(world)))]))
    p.draft(request())
    other_segment = churn("c2", account="ACC-10002", segment="enterprise")
    smaller = churn("c3", account="ACC-10003", value=5_000)  # no credit step: other structure
    for number, prediction in enumerate((other_segment, smaller), 2):
        openai_server.play(completion(tool_calls=[call(
            "submit_plan", plan_args(_llm_plan(world, prediction)))]))
        draft = p.draft(request(prediction, decision=f"dec_llm_{number}"))
        assert not draft.record.cache_hit and draft.record.llm_calls == 1
    # Feedback always reaches the model, even when an entry matches.
    openai_server.play(completion(tool_calls=[call("submit_plan", plan_args(_llm_plan(world)))]))
    revised = p.draft(request(churn("c4"), decision="dec_llm_4", version=2,
                              feedback=("smaller discount",)))
    assert not revised.record.cache_hit
    # Expired: older than the TTL.
    world.clock.advance(hours=25)
    openai_server.play(completion(tool_calls=[call("submit_plan", plan_args(_llm_plan(world)))]))
    expired = p.draft(request(churn("c5"), decision="dec_llm_5"))
    assert not expired.record.cache_hit and len(openai_server.requests) == 5


def test_an_entry_that_does_not_fit_is_a_miss(world: World, planner: Factory,
                                              openai_server: ScriptedServer) -> None:
    steps = _llm_plan(world)
    openai_server.play(completion(tool_calls=[call("submit_plan", plan_args(steps))]))
    p = planner(cache_ttl_hours=24)
    p.draft(request())
    # A low score: the playbook says 10 → 15; fine. Pin a hand-made entry that cannot fit:
    entry = world.store.llm.cache_get([entry_key(p._signature(request(), _baseline(world)), [])],
                                  newer_than=world.clock.now().replace(year=2000))
    body = entry["body"]
    # Twice the playbook's value, which for the next prediction is over the limit of 30.
    body["plan"]["steps"][0]["arguments"]["discount_pct"] = 40
    world.store.llm.cache_put(entry["signature"], kind="churn", playbook="churn-retention",
                          planner="llm", body=body, source_decision_id="dec_llm_1")
    openai_server.play(completion(tool_calls=[call("submit_plan", plan_args(
        _llm_plan(world, churn("c2", account="ACC-10003"))))]))
    draft = p.draft(request(churn("c2", account="ACC-10003"), decision="dec_llm_2"))
    assert not draft.record.cache_hit and draft.record.llm_calls == 1
    assert any("adapted plan was refused" in n for n in draft.record.notes)


def _baseline(world: World):  # type: ignore[no-untyped-def]
    prediction = churn()
    return world.playbooks.for_prediction(prediction).draft(prediction, decision_id="dec_llm_1")


def test_a_hit_needs_no_budget_and_novel_plans_are_not_cached(
        world: World, planner: Factory, openai_server: ScriptedServer) -> None:
    openai_server.play(completion(tool_calls=[call("submit_plan", plan_args(_llm_plan(world)))]))
    p = planner(cache_ttl_hours=24)
    p.draft(request())
    world.store.llm.record_llm_call(decision_id="dec_other", plan_version=1, purpose="plan",
                                model="gpt-test", prompt_version="p", tokens_in=1, tokens_out=1,
                                cost=50.0, latency_ms=1, outcome="ok", at=world.clock.now())
    capped = planner(cache_ttl_hours=24, daily_spend_cap=10.0)
    hit = capped.draft(request(churn("c2", account="ACC-10003"), decision="dec_llm_2"))
    assert hit.record.cache_hit and hit.record.fallback is None
    # A plan with a step the playbook does not have (risk high) is not reused.
    prediction = churn("c3", account="ACC-10004", segment="enterprise")
    novel = [*_llm_plan(world, prediction), {
        "id": "tell_am", "function": "sales", "tool": "notify.send",
        "arguments": {"channel": "email", "to": "mei.lin@northwind.example", "subject": "s",
                      "body": "b"}, "depends_on": [], "rationale": "r", "expected_cost": 0,
        "expected_value": 0}]
    openai_server.play(completion(tool_calls=[call("submit_plan", plan_args(novel))]))
    draft = p.draft(request(prediction, decision="dec_llm_3"))
    assert draft.plan.planner == "llm" and draft.record.fallback is None
    assert world.store.llm.cache_stats()["entries"] == 1


def _support_driven(pid: str, account: str) -> Prediction:
    return churn(pid, account=account).model_copy(update={"explanation": {
        "support_tickets_90d": 0.9, "login_trend_30d": -0.3, "seat_utilization": 0.2}})


def test_drivers_are_matched_by_what_the_plan_says(world: World, planner: Factory,
                                                   openai_server: ScriptedServer) -> None:
    # The first prediction is driven by support tickets and a price increase; the model
    # words its offer note for the price increase.
    steps = _llm_plan(world)
    steps[0]["arguments"]["note"] = "Offset the recent price increase for this account"
    openai_server.play(completion(tool_calls=[call("submit_plan", plan_args(steps))]))
    p = planner(cache_ttl_hours=24)
    p.draft(request())
    entry = world.store.llm.cache_get(
        [entry_key(p._signature(request(), _baseline(world)), ["price_increase_pct"])],
        newer_than=world.clock.now().replace(year=2000))
    assert entry is not None and entry["body"]["drivers"] == ["price_increase_pct"]
    # Same segment and playbook branch, but the price increase is not among its drivers:
    # that note would not fit it, so the model is asked again.
    other = _support_driven("c2", "ACC-10003")
    openai_server.play(completion(tool_calls=[call("submit_plan", plan_args(
        _llm_plan(world, other)))]))
    miss = p.draft(request(other, decision="dec_llm_2"))
    assert not miss.record.cache_hit and miss.record.llm_calls == 1
    # Its plan names no driver (the note names the entity only): it fits any prediction
    # of the signature, such as a third support-driven one, without a call.
    third = _support_driven("c3", "ACC-10004")
    hit = p.draft(request(third, decision="dec_llm_3"))
    assert hit.record.cache_hit and len(openai_server.requests) == 2
    assert hit.plan.step("retention_offer").arguments["note"] == "Offer for ACC-10004"
    assert world.store.llm.cache_stats() == {"entries": 2, "hits": 1}
    # Adapting re-checks the drivers, whatever key an entry was found under.
    with pytest.raises(Unfit, match="price_increase_pct"):
        adapt(entry["body"], third, None, decision_id="dec_llm_4", version=1)


def test_driver_phrases() -> None:
    assert driver_phrases("price_increase_pct") == {"price_increase_pct", "price increase"}
    assert "bearing temp" in driver_phrases("bearing_temp_delta_c")
    assert "login trend" in driver_phrases("login_trend_30d")
    assert driver_phrases("nps") == set()  # too short to find in prose safely
