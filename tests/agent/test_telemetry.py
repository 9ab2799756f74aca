"""Spans per decision leg, node and tool call, one trace across the approval wait,
Prometheus metrics, and no secret in any span."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.trace import SpanKind
from prometheus_client import generate_latest

from decisionops.agent.hashing import digest
from decisionops.agent.models import Approve
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from tests.graphs.conftest import churn, pending, start
from tests.otel import memory_exporter
from tests.support import answer

_EXPORTER = memory_exporter()


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    _EXPORTER.clear()
    settings = Settings(home=tmp_path / "home", llm_api_key="sk-canary-0123456789abcdefghij")
    with Runtime(settings, actor="t") as runtime:
        yield runtime


def test_a_decision_is_one_trace_across_the_approval_wait(rt: Runtime) -> None:
    decision = start(rt, churn()).decision_id
    for function, request in pending(rt, decision).items():
        answer(rt, request["id"], Approve(), approver_name=rt.policies.get(function).approvers[0])
    spans = _EXPORTER.get_finished_spans()
    legs = [s for s in spans if s.name.startswith("decision ")]
    # the first answer waits in the store; the last one resumes both interrupts
    assert [s.name for s in legs] == ["decision start", "decision resume"]
    assert len({s.context.trace_id for s in legs}) == 1
    names = {s.name for s in spans}
    assert {"node plan", "node guard", "node route", "node approval", "node join",
            "node execute", "node record", "execute_tool crm.create_retention_offer",
            "execute_tool finance.issue_credit"} <= names
    tool = next(s for s in spans if s.name == "execute_tool finance.issue_credit")
    assert tool.context.trace_id == legs[0].context.trace_id
    assert set(tool.attributes) >= {"decisionops.idempotency_key", "decisionops.arguments_hash"}


def test_no_secret_or_argument_value_in_any_span(rt: Runtime) -> None:
    decision = start(rt, churn()).decision_id
    for function, request in pending(rt, decision).items():
        answer(rt, request["id"], Approve(), approver_name=rt.policies.get(function).approvers[0])
    dump = repr([(s.name, dict(s.attributes or {}), [e.attributes for e in s.events])
                 for s in _EXPORTER.get_finished_spans()])
    assert "sk-canary" not in dump
    leaks = [s.name for s in _EXPORTER.get_finished_spans()
             if "Goodwill credit" in repr((dict(s.attributes or {}), [e.attributes for e in s.events]))]
    assert leaks == []  # argument values stay out; hashes only


def test_metrics_count_work_and_read_gauges_from_the_store(rt: Runtime) -> None:
    decision = start(rt, churn()).decision_id
    text = generate_latest(rt.metrics.registry).decode()
    assert 'decisionops_approvals_pending{function="finance"} 1.0' in text
    assert 'decisionops_predictions_ingested_total{source_kind="test"} 1.0' in text
    for function, request in pending(rt, decision).items():
        answer(rt, request["id"], Approve(), approver_name=rt.policies.get(function).approvers[0])
    text = generate_latest(rt.metrics.registry).decode()
    assert 'decisionops_decisions_finished_total{status="completed"} 1.0' in text
    assert 'decisionops_tool_calls_total{outcome="ok",tool="finance.issue_credit"} 1.0' in text
    assert 'decisionops_approval_latency_seconds_count{function="finance"} 1.0' in text
    assert "decisionops_queue_depth 0.0" in text


def test_tool_calls_follow_the_genai_conventions_without_arguments(rt: Runtime) -> None:
    decision = start(rt, churn()).decision_id
    for function, request in pending(rt, decision).items():
        answer(rt, request["id"], Approve(), approver_name=rt.policies.get(function).approvers[0])
    tool = next(s for s in _EXPORTER.get_finished_spans()
                if s.name == "execute_tool finance.issue_credit")
    attrs = dict(tool.attributes or {})
    assert attrs["gen_ai.operation.name"] == "execute_tool"
    assert attrs["gen_ai.tool.name"] == "finance.issue_credit"
    assert attrs["gen_ai.tool.type"] == "function"
    key = attrs["decisionops.idempotency_key"]
    assert attrs["gen_ai.tool.call.id"] == digest(key)[:32] != key
    assert not any(name.startswith("gen_ai.tool.call.arguments") for name in attrs)
    assert tool.kind == SpanKind.INTERNAL
    text = generate_latest(rt.metrics.registry).decode()
    assert 'decisionops_tool_call_duration_seconds_count{tool="finance.issue_credit"} 1.0' in text


def test_metrics_include_the_default_process_and_platform_collectors(rt: Runtime) -> None:
    text = generate_latest(rt.metrics.registry).decode()
    assert "python_info{" in text
    assert "python_gc_objects_collected_total" in text
    assert "process_resident_memory_bytes" in text  # Linux: read from /proc
