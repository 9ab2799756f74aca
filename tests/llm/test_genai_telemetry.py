"""A span per LLM call by the OpenTelemetry GenAI semantic conventions, and the
``gen_ai.client.*`` histograms on the process's metrics, through the real ``openai``
client against the scripted server. Prompt and completion text stay out unless asked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import generate_latest
from pydantic import SecretStr

from decisionops.agent.llm import ChatClient, ClientConfig, LLMRequestRefused
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from decisionops.agent.telemetry import Metrics
from decisionops.evals.scripted import careful_model
from tests.fakes.openai_server import ScriptedServer, call, completion, error
from tests.graphs.conftest import churn, start
from tests.llm.conftest import API_KEY
from tests.otel import memory_exporter

PROMPT = [{"role": "user", "content": "plan for ACC-PRIVATE-7 please"}]


class Meter:
    def before_call(self, tokens_in: int, max_tokens: int) -> None:
        pass

    def after_call(self, attempt: object) -> None:
        pass

    def replay(self, request: str) -> str | None:
        return None  # no journal: every request is sent


def _client(server: ScriptedServer, metrics: Metrics, *, capture: bool = False) -> ChatClient:
    return ChatClient(ClientConfig(base_url=server.url, model="gpt-test", api_key=SecretStr(API_KEY),
                                   timeout_seconds=2.0, max_retries=0, capture_content=capture),
                      sleep=lambda _s: None, metrics=metrics)


def test_a_chat_call_is_one_client_span_with_usage_and_finish_reasons(
        openai_server: ScriptedServer) -> None:
    exporter = memory_exporter()
    metrics = Metrics()
    openai_server.play(completion(None, tool_calls=[call("submit_plan", {"steps": []})],
                                  usage=(120, 30)))
    _client(openai_server, metrics).complete(PROMPT, meter=Meter(), max_tokens=64)
    [chat] = [s for s in exporter.get_finished_spans() if s.name == "chat gpt-test"]
    attrs = dict(chat.attributes or {})
    assert chat.kind == SpanKind.CLIENT
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == attrs["gen_ai.system"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-test"
    assert attrs["gen_ai.response.model"] == "gpt-test"
    assert attrs["gen_ai.request.max_tokens"] == 64
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (120, 30)
    assert tuple(attrs["gen_ai.response.finish_reasons"]) == ("tool_calls",)
    assert attrs["server.address"] == "127.0.0.1" and isinstance(attrs["server.port"], int)
    dump = repr(attrs) + repr([e.attributes for e in chat.events])
    assert "ACC-PRIVATE-7" not in dump and "submit_plan" not in dump and API_KEY not in dump

    text = generate_latest(metrics.registry).decode()
    labels = ('gen_ai_operation_name="chat",gen_ai_provider_name="openai",'
              'gen_ai_request_model="gpt-test",gen_ai_response_model="gpt-test"')
    assert f'gen_ai_client_token_usage_sum{{{labels},gen_ai_token_type="input"}} 120.0' in text
    assert f'gen_ai_client_token_usage_sum{{{labels},gen_ai_token_type="output"}} 30.0' in text
    assert f'gen_ai_client_operation_duration_seconds_count{{error_type="",{labels}}} 1.0' in text


def test_prompt_and_completion_are_recorded_only_when_opted_in(
        openai_server: ScriptedServer) -> None:
    exporter = memory_exporter()
    openai_server.play(completion("a fine plan", usage=(10, 3)))
    _client(openai_server, Metrics(), capture=True).complete(PROMPT, meter=Meter(), max_tokens=64)
    [chat] = [s for s in exporter.get_finished_spans() if s.name == "chat gpt-test"]
    attrs = dict(chat.attributes or {})
    assert json.loads(str(attrs["gen_ai.input.messages"]))[0]["parts"][0]["content"] == \
        PROMPT[0]["content"]
    output = json.loads(str(attrs["gen_ai.output.messages"]))
    assert output[0]["parts"][0]["content"] == "a fine plan"
    assert output[0]["finish_reason"] == "stop"


@pytest.mark.parametrize("status", [400])
def test_a_failed_call_records_its_error_type(openai_server: ScriptedServer, status: int) -> None:
    exporter = memory_exporter()
    metrics = Metrics()
    openai_server.play(error(status, "bad request"))
    with pytest.raises(LLMRequestRefused):
        _client(openai_server, metrics).complete(PROMPT, meter=Meter(), max_tokens=64)
    [chat] = [s for s in exporter.get_finished_spans() if s.name == "chat gpt-test"]
    assert chat.status.status_code == StatusCode.ERROR
    assert chat.attributes["error.type"] == "LLMRequestRefused"
    text = generate_latest(metrics.registry).decode()
    assert 'gen_ai_client_operation_duration_seconds_count{error_type="LLMRequestRefused"' in text


def test_the_llm_planner_in_the_runtime_traces_its_calls_inside_the_decision(
        tmp_path: Path) -> None:
    exporter = memory_exporter()
    with ScriptedServer(responder=careful_model) as server:
        settings = Settings(home=tmp_path / "home", planner="llm", llm_base_url=server.url,
                            llm_model="gpt-test", llm_mode="tools", llm_api_key=API_KEY,
                            plan_cache_ttl_hours=0)
        with Runtime(settings, actor="t") as rt:
            start(rt, churn())
            text = generate_latest(rt.metrics.registry).decode()
    spans = exporter.get_finished_spans()
    [leg] = [s for s in spans if s.name == "decision start"]
    chats = [s for s in spans if s.name == "chat gpt-test"]
    assert chats and all(s.context.trace_id == leg.context.trace_id for s in chats)
    assert all(s.attributes["gen_ai.usage.input_tokens"] > 0 for s in chats)
    assert "gen_ai_client_operation_duration_seconds_count{" in text
    assert API_KEY not in repr([dict(s.attributes or {}) for s in spans])
