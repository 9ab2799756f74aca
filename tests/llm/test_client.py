"""The endpoint client through the real ``openai`` client against the scripted server:
bounded retries, Retry-After, timeouts, refusals, unreadable bodies, the loopback guard."""

from __future__ import annotations

import time

import pytest
from pydantic import SecretStr

from decisionops.agent.errors import ConfigError
from decisionops.agent.llm import (
    Attempt,
    ChatClient,
    ClientConfig,
    LLMModeUnsupported,
    LLMRequestRefused,
    LLMTransportError,
    check_endpoint,
)
from tests.fakes.openai_server import ScriptedServer, call, completion, error, raw
from tests.llm.conftest import API_KEY

MESSAGES = [{"role": "user", "content": "hello"}]


class Meter:
    def __init__(self) -> None:
        self.attempts: list[Attempt] = []

    def before_call(self, tokens_in: int = 0, max_tokens: int = 0) -> None:
        pass

    def after_call(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)

    def replay(self, request: str) -> str | None:
        return None  # no journal: every request is sent


def client(server: ScriptedServer, sleeps: list[float], **config: object) -> ChatClient:
    """A client whose sleeps are recorded, not slept; its clock moves by them."""
    values = {"timeout_seconds": 2.0, "max_retries": 2, "backoff_seconds": 0.5,
              "max_retry_after_seconds": 30.0, **config}
    return ChatClient(ClientConfig(base_url=server.url, model="gpt-test",
                                   api_key=SecretStr(API_KEY), **values),  # type: ignore[arg-type]
                      sleep=sleeps.append, clock=lambda: 1000.0 + sum(sleeps))


def test_429_retry_after_is_honoured_and_each_attempt_metered(openai_server: ScriptedServer
                                                              ) -> None:
    openai_server.play(error(429, "slow down", headers={"Retry-After": "7"}),
                       error(503, "overloaded"), completion("hi", usage=(11, 3)))
    sleeps: list[float] = []
    meter = Meter()
    reply = client(openai_server, sleeps).complete(MESSAGES, meter=meter, max_tokens=50)
    assert reply.content == "hi" and (reply.tokens_in, reply.tokens_out) == (11, 3)
    assert sleeps == [7.0, 1.0]  # Retry-After, then exponential backoff (0.5 * 2)
    assert [a.outcome for a in meter.attempts] == ["rate_limited", "server_error", "ok"]


def test_retry_after_beyond_the_bound_gives_up_without_waiting(openai_server: ScriptedServer
                                                               ) -> None:
    openai_server.play(error(429, "come back later", headers={"Retry-After": "120"}))
    sleeps: list[float] = []
    with pytest.raises(LLMTransportError, match="over the bound of 30 s"):
        client(openai_server, sleeps).complete(MESSAGES, meter=Meter(), max_tokens=50)
    assert sleeps == []


def test_5xx_is_retried_a_bounded_number_of_times(openai_server: ScriptedServer) -> None:
    openai_server.play(*[error(500, "boom")] * 3)
    meter = Meter()
    with pytest.raises(LLMTransportError, match="server error 500 after 3 attempt"):
        client(openai_server, []).complete(MESSAGES, meter=meter, max_tokens=50)
    assert len(meter.attempts) == 3


def test_timeout_is_cut_and_retried(openai_server: ScriptedServer) -> None:
    openai_server.play(completion("late", delay=0.6), completion("in time"))
    meter = Meter()
    started = time.monotonic()
    reply = client(openai_server, [], timeout_seconds=0.2).complete(MESSAGES, meter=meter,
                                                                     max_tokens=50)
    assert reply.content == "in time"
    assert [a.outcome for a in meter.attempts] == ["timeout", "ok"]
    assert meter.attempts[0].tokens_in > 0  # a timed-out call is charged its prompt
    assert time.monotonic() - started < 2


def test_400_not_supported_names_the_mode(openai_server: ScriptedServer) -> None:
    openai_server.play(error(400, "response_format json_schema is not supported by this model"))
    with pytest.raises(LLMModeUnsupported) as info:
        client(openai_server, []).complete(MESSAGES, meter=Meter(), max_tokens=50, mode="json")
    assert info.value.mode == "json"


def test_refusal_is_not_retried_and_never_shows_the_key(openai_server: ScriptedServer) -> None:
    openai_server.play(error(401, f"invalid api key {API_KEY}"))
    with pytest.raises(LLMRequestRefused) as info:
        client(openai_server, []).complete(MESSAGES, meter=Meter(), max_tokens=50)
    assert API_KEY not in str(info.value) and "***" in str(info.value)
    assert openai_server.requests[0]["authorization"]  # the key travels in the header only
    assert API_KEY not in str(openai_server.requests[0]["body"])


def test_unreadable_body_is_retried_then_fails(openai_server: ScriptedServer) -> None:
    openai_server.play(raw(200, "<html>proxy error</html>"), raw(200, "{not json"))
    meter = Meter()
    with pytest.raises(LLMTransportError, match="unreadable"):
        client(openai_server, [], max_retries=1).complete(MESSAGES, meter=meter, max_tokens=50)
    assert [a.outcome for a in meter.attempts] == ["bad_response", "bad_response"]


@pytest.mark.parametrize("url", ["http://203.0.113.7/v1", "https://llm.example.com/v1"])
def test_real_endpoints_are_refused_under_tests(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_endpoint(url)
    assert str(info.value).startswith("llm_base_url: ")


def test_loopback_and_bad_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_endpoint("http://localhost:8000/v1")
    assert check_endpoint("http://[::1]:8000/v1")
    with pytest.raises(ConfigError, match="http"):
        check_endpoint("file:///etc/passwd")
    monkeypatch.delenv("DECISIONOPS_FORBID_REAL_LLM")
    assert check_endpoint("https://api.example.com/v1")  # allowed outside tests


def test_the_request_goes_on_the_wire_as_built(openai_server: ScriptedServer) -> None:
    """The body is posted as the client built it (plain JSON, not re-walked by the SDK's
    typed parameters): every field the endpoint needs arrives unchanged, and the reply's
    tool calls come back parsed."""
    tools = [{"type": "function", "function": {
        "name": "submit_plan", "description": "the plan",
        "parameters": {"type": "object", "properties": {"steps": {"type": "array"}},
                       "required": ["steps"]}}}]
    messages = [{"role": "system", "content": "plan"},
                {"role": "user", "content": "account ACC-7 \u2014 churn 0.91"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function",
                     "function": {"name": "crm.get_account", "arguments": "{\"id\": \"ACC-7\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "{\"tier\": \"gold\"}"}]
    openai_server.play(completion(tool_calls=[call("submit_plan", {"steps": []}, id="p1")]))
    reply = client(openai_server, []).complete(
        messages, meter=Meter(), max_tokens=321, tools=tools,
        tool_choice={"type": "function", "function": {"name": "submit_plan"}})
    sent = openai_server.requests[0]
    assert sent["path"].endswith("/chat/completions")
    assert sent["body"] == {
        "model": "gpt-test", "messages": messages, "max_tokens": 321, "temperature": 0,
        "tools": tools, "tool_choice": {"type": "function", "function": {"name": "submit_plan"}},
        "parallel_tool_calls": True}
    assert [(c.id, c.name, c.arguments) for c in reply.tool_calls] == [
        ("p1", "submit_plan", "{\"steps\": []}")]


@pytest.mark.parametrize("usage", [
    {"prompt_tokens": -50_000_000, "completion_tokens": -50_000_000, "total_tokens": 0},
    {"prompt_tokens": "lots", "completion_tokens": 10, "total_tokens": 10},
    {"prompt_tokens": 1.5e300, "completion_tokens": None, "total_tokens": None},
    {"prompt_tokens": True, "completion_tokens": [3], "total_tokens": 4}])
def test_token_counts_an_endpoint_cannot_have_meant_are_estimated(
        openai_server: ScriptedServer, usage: dict) -> None:
    """(trial 30 #2, #3: negative counts from an endpoint lowered the day's spend below
    zero and lifted the spend cap; a count of "lots" failed the planning leg five times,
    each paid call recorded nowhere.) A count that is not a whole number of tokens, or
    is negative or beyond any request, is replaced by the client's estimate, as a
    missing one is: the call is metered and the reply used."""
    import json

    body = {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-test",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "hi"}}],
            "usage": usage}
    openai_server.play(raw(200, json.dumps(body), headers={"content-type": "application/json"}))
    meter = Meter()
    reply = client(openai_server, []).complete(MESSAGES, meter=meter, max_tokens=50)
    assert reply.content == "hi"
    [attempt] = meter.attempts
    assert attempt.outcome == "ok"
    assert 0 < attempt.tokens_in < 1000 and 0 < attempt.tokens_out < 1000, attempt
    assert (reply.tokens_in, reply.tokens_out) == (attempt.tokens_in, attempt.tokens_out)


def test_a_retry_after_of_years_pauses_the_endpoint_for_a_bounded_time(
        openai_server: ScriptedServer) -> None:
    """(trial 30 #4: one 429 with Retry-After 1,000,000,000 turned the LLM planner off
    for the life of the process.) The pause is bounded (``LONGEST_PAUSE_SECONDS``), and
    the calls it stops are counted where the circuit's are."""
    from decisionops.agent.llm._client import LONGEST_PAUSE_SECONDS
    from decisionops.agent.telemetry import Metrics

    now = [1000.0]
    metrics = Metrics()
    chat = ChatClient(ClientConfig(base_url=openai_server.url, model="gpt-test",
                                   api_key=SecretStr(API_KEY), max_retries=2,
                                   max_retry_after_seconds=30),
                      sleep=lambda s: None, clock=lambda: now[0], metrics=metrics)
    openai_server.play(error(429, "slow down", headers={"Retry-After": "1000000000"}),
                       completion("back"))
    with pytest.raises(LLMTransportError, match="Retry-After"):
        chat.complete(MESSAGES, meter=Meter(), max_tokens=20)
    with pytest.raises(LLMTransportError, match="asked to wait"):
        chat.complete(MESSAGES, meter=Meter(), max_tokens=20)
    refused = metrics.registry.get_sample_value(
        "decisionops_llm_calls_short_circuited_total", {"model": "gpt-test"})
    assert refused == 1
    now[0] += LONGEST_PAUSE_SECONDS + 1
    assert chat.complete(MESSAGES, meter=Meter(), max_tokens=20).content == "back"
    assert len(openai_server.requests) == 2
