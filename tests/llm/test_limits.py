"""Client-side limits of a model endpoint (issue 12): rate limits per minute that every
planning thread shares, a 429's Retry-After honoured by all of them, and a circuit
breaker that sends planners to their fallback at once while an endpoint keeps failing,
visible in the metrics. Clocks and sleeps are fakes; the endpoint is the scripted server
behind the real ``openai`` client."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from decisionops.agent.llm import ChatClient, ClientConfig, LLMTransportError
from decisionops.agent.llm._limits import CircuitBreaker, CircuitOpen, RateLimiter
from decisionops.agent.telemetry import Metrics
from tests.fakes.openai_server import ScriptedServer, call, completion, error
from tests.llm.conftest import API_KEY, Factory, World, baseline_steps, churn, plan_args, request
from tests.llm.test_client import MESSAGES, Meter


class Time:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


def test_requests_per_minute_allow_a_minute_at_once_then_pace() -> None:
    t = Time()
    limits = RateLimiter(requests_per_minute=60, clock=t.clock, sleep=t.sleep)
    for _ in range(60):
        limits.acquire(10)
    assert t.sleeps == []
    limits.acquire(10)
    limits.acquire(10)
    assert t.sleeps == [1.0, 1.0]  # one a second once the minute's share is spent


def test_tokens_per_minute_wait_for_the_estimate() -> None:
    t = Time()
    limits = RateLimiter(tokens_per_minute=1_000, clock=t.clock, sleep=t.sleep)
    limits.acquire(600)
    limits.acquire(600)  # 200 tokens short: 12 s at 1,000 a minute
    assert t.sleeps == [12.0]
    limits.acquire(5_000)  # more than a minute's worth waits for a full bucket, not forever
    assert t.sleeps[-1] == pytest.approx(60.0)


def test_retry_after_pauses_every_caller() -> None:
    t = Time()
    limits = RateLimiter(clock=t.clock, sleep=t.sleep)
    limits.pause(7)
    limits.acquire(1)
    assert t.sleeps == [7.0]
    limits.acquire(1)
    assert t.sleeps == [7.0]


def test_a_429_makes_the_next_callers_wait_too(openai_server: ScriptedServer) -> None:
    t = Time()
    chat = ChatClient(ClientConfig(base_url=openai_server.url, model="gpt-test",
                                   api_key=SecretStr(API_KEY), max_retries=0),
                      sleep=t.sleep, clock=t.clock)
    openai_server.play(error(429, "slow down", headers={"Retry-After": "9"}), completion("two"))
    with pytest.raises(LLMTransportError, match="rate limited"):  # this caller gives up …
        chat.complete(MESSAGES, meter=Meter(), max_tokens=20)
    assert t.sleeps == []
    # … and the next one (another planning thread) waits the Retry-After out first
    assert chat.complete(MESSAGES, meter=Meter(), max_tokens=20).content == "two"
    assert t.sleeps == [9.0]


def test_a_retry_after_over_the_bound_stops_every_caller_not_just_one(
        openai_server: ScriptedServer) -> None:
    # The endpoint asked for 120 s, more than a planner waits (max_retry_after_seconds):
    # the caller that got it falls back, and so does the next one, without calling the
    # endpoint before the 120 s are up; after them, calls go again.
    t = Time()
    chat = ChatClient(ClientConfig(base_url=openai_server.url, model="gpt-test",
                                   api_key=SecretStr(API_KEY), max_retries=2,
                                   max_retry_after_seconds=30),
                      sleep=t.sleep, clock=t.clock)
    openai_server.play(error(429, "slow down", headers={"Retry-After": "120"}), completion("two"))
    with pytest.raises(LLMTransportError, match="Retry-After 120"):
        chat.complete(MESSAGES, meter=Meter(), max_tokens=20)
    with pytest.raises(LLMTransportError, match="asked to wait"):
        chat.complete(MESSAGES, meter=Meter(), max_tokens=20)
    assert len(openai_server.requests) == 1 and t.sleeps == []
    t.now += 121
    assert chat.complete(MESSAGES, meter=Meter(), max_tokens=20).content == "two"


def test_circuit_opens_after_repeated_failures_then_probes() -> None:
    t = Time()
    states: list[str] = []
    breaker = CircuitBreaker(failures=3, cooldown_seconds=30, clock=t.clock,
                             on_change=states.append)
    for _ in range(2):
        breaker.allow()
        breaker.failed()
    breaker.allow()
    breaker.succeeded()  # a success in between resets the count
    for _ in range(3):
        breaker.allow()
        breaker.failed()
    with pytest.raises(CircuitOpen, match="resume in 30 s"):
        breaker.allow()
    t.now += 31
    breaker.allow()  # the probe
    with pytest.raises(CircuitOpen, match="probe"):
        breaker.allow()  # only one probe at a time
    breaker.failed()  # the probe failed: open again for a full cool-down
    with pytest.raises(CircuitOpen):
        breaker.allow()
    t.now += 31
    breaker.allow()
    breaker.succeeded()
    breaker.allow()
    assert states == ["open", "half_open", "open", "half_open", "closed"]
    assert breaker.refused == 3


def test_planners_fall_back_at_once_while_the_circuit_is_open(
        world: World, openai_server: ScriptedServer) -> None:
    from decisionops.agent.llm import LLMOptions, LLMPlanner, ToolLookup

    t = Time()
    metrics = Metrics()
    chat = ChatClient(ClientConfig(base_url=openai_server.url, model="gpt-test",
                                   api_key=SecretStr(API_KEY), max_retries=0,
                                   circuit_failures=2, circuit_cooldown_seconds=60),
                      sleep=t.sleep, clock=t.clock, metrics=metrics)
    planner = LLMPlanner(client=chat, playbooks=world.playbooks, tools=world.tools,
                         policies=world.policies, lookup=ToolLookup(world.tools),
                         store=world.store.llm,
                         options=LLMOptions(mode="tools", cache_ttl_hours=0.0,
                                            daily_spend_cap=None),
                         clock=world.clock, actor="test-planner")
    openai_server.play(error(503, "down"), error(503, "down"))
    drafts = [planner.draft(request(churn(f"c-{i}"), decision=f"dec_{i}")) for i in range(5)]
    assert len(openai_server.requests) == 2  # three drafts did not wait on a dead endpoint
    assert all(d.plan is not None for d in drafts)  # the playbook's plan, as the fallback
    assert [d.record.fallback.split(":")[0] for d in drafts] == (
        ["llm_unavailable"] * 2 + ["llm_circuit_open"] * 3)

    def sample(name: str) -> float | None:
        return metrics.registry.get_sample_value(name, {"model": "gpt-test"})

    assert sample("decisionops_llm_circuit_open") == 1
    assert sample("decisionops_llm_calls_short_circuited_total") == 3
    t.now += 61
    # The cool-down is over: a scrape says the next call probes, before any call is made.
    assert sample("decisionops_llm_circuit_open") == 0.5
    openai_server.play(completion("not a plan"), completion("still not a plan"),
                       completion("never a plan"))
    planner.draft(request(churn("c-probe"), decision="dec_probe"))  # the probe reaches it
    assert sample("decisionops_llm_circuit_open") == 0
    planner.close()


def test_a_probe_that_says_nothing_of_the_endpoint_passes_its_turn_on() -> None:
    """A probe stopped by a budget, or by an error of ours (the meter's database), must
    not leave the circuit waiting for a verdict that never comes."""
    t = Time()
    breaker = CircuitBreaker(failures=1, cooldown_seconds=10, clock=t.clock)
    breaker.allow()
    breaker.settle(False)
    t.now += 11
    breaker.allow()  # the probe …
    breaker.settle(None)  # … ended without reaching the endpoint
    breaker.allow()  # the next call probes instead
    breaker.settle(True)
    assert breaker.state == "closed"


def test_an_error_of_ours_during_a_probe_does_not_jam_the_circuit(
        openai_server: ScriptedServer) -> None:
    t = Time()
    chat = ChatClient(ClientConfig(base_url=openai_server.url, model="gpt-test",
                                   api_key=SecretStr(API_KEY), max_retries=0,
                                   circuit_failures=1, circuit_cooldown_seconds=10),
                      sleep=t.sleep, clock=t.clock)

    class Broken(Meter):
        def after_call(self, attempt: object) -> None:
            raise RuntimeError("the meter's database is away")

    openai_server.play(error(503, "down"), completion("lost"), completion("back"))
    with pytest.raises(LLMTransportError):
        chat.complete(MESSAGES, meter=Meter(), max_tokens=20)
    t.now += 11
    with pytest.raises(RuntimeError):
        chat.complete(MESSAGES, meter=Broken(), max_tokens=20)
    assert chat.complete(MESSAGES, meter=Meter(), max_tokens=20).content == "back"
    assert chat.breaker.state == "closed"


def test_the_daily_cap_counts_the_calls_other_threads_have_in_flight(world: World) -> None:
    from decisionops.agent.llm._errors import BudgetExceeded
    from decisionops.agent.llm._meter import InFlight
    from decisionops.agent.llm._meter import Meter as Budget
    from decisionops.agent.settings import ModelPrice

    price = ModelPrice(input=1_000_000.0, output=1_000_000.0)  # a token costs 1
    shared = InFlight()
    meters = [Budget(world.store.llm, clock=world.clock, decision_id=f"d-{i}", plan_version=1,
                     model="m", price=price, prompt_version="p", token_cap=10**9,
                     daily_spend_cap=250.0, in_flight=shared) for i in range(16)]
    started = 0
    for meter in meters:  # sixteen drafts about to call at once, 100 tokens at worst each
        try:
            meter.before_call(60, 40)
            started += 1
        except BudgetExceeded:
            pass
    assert started == 3  # 0, 100, 200 spent or in flight: the third still fits under 250
    assert shared.cost == 300


def test_a_stopping_worker_starts_no_model_call_and_falls_back_to_nothing(
        world: World, planner: Factory, openai_server: ScriptedServer) -> None:
    # SIGTERM: calls in flight finish, none starts (retries of a hung endpoint made a
    # stop take three timeouts), and a stopped call is not planned by the fallback: the
    # decision's leg ends, and the next worker plans it as it would have been.
    from decisionops.agent.errors import ShuttingDown

    openai_server.play(error(500, "boom"))
    llm = planner(max_retries=2)
    # the first attempt fails; the worker stops during the back-off before the retry
    llm._client._sleep = lambda seconds: llm.stop()
    with pytest.raises(ShuttingDown, match="stopping"):
        llm.draft(request())
    assert len(openai_server.requests) == 1
    llm.warm()  # a worker starting again in this process
    openai_server.play(completion(tool_calls=[call("submit_plan", plan_args(
        baseline_steps(world)))]))
    assert llm.draft(request(decision="dec_llm_2")).record.fallback is None


def test_a_stopping_worker_does_not_wait_for_the_model_call_in_flight(
        world: World, planner: Factory, openai_server: ScriptedServer) -> None:
    # SIGTERM while a call is out: the draft waits llm_stop_grace_seconds for it, then
    # ends (ShuttingDown: the next worker plans the decision), not when the endpoint
    # answers or the call times out (up to llm_timeout_seconds; a supervisor kills a
    # worker 30 s after SIGTERM). The call is on the record of spend as a timeout is:
    # the provider bills it all the same.
    import threading

    from decisionops.agent.errors import ShuttingDown

    openai_server.play(completion(tool_calls=[call("submit_plan", plan_args(
        baseline_steps(world)))], delay=4.0))
    llm = planner(timeout=30.0, max_retries=0, stop_grace=0.3)
    raised: list[BaseException] = []

    def draft() -> None:
        try:
            llm.draft(request())
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=draft)
    thread.start()
    for _ in range(200):  # until the request is out
        if openai_server.requests:
            break
        thread.join(0.02)
    llm.stop()
    thread.join(2.5)  # the grace, and well before the 4 s the endpoint takes
    assert not thread.is_alive()
    assert len(raised) == 1 and isinstance(raised[0], ShuttingDown), raised
    rows = world.store.llm.llm_calls("dec_llm_1")
    assert [r["outcome"] for r in rows] == ["abandoned"]
    assert rows[0]["tokens_in"] > 0 and rows[0]["cost"] > 0
