"""Recording of LLM and tool calls by the OpenTelemetry GenAI semantic conventions.

``chat_call`` wraps one chat completion (all its HTTP attempts): a CLIENT span named
``chat {model}`` with ``gen_ai.operation.name``, ``gen_ai.provider.name`` (and the older
``gen_ai.system``), request and response model, usage and finish reasons, plus the
``gen_ai.client.token.usage`` and ``gen_ai.client.operation.duration`` histograms
(Prometheus names: ``gen_ai_client_token_usage``, ``gen_ai_client_operation_duration_seconds``).
Prompt and completion text go into the span (``gen_ai.input.messages`` /
``gen_ai.output.messages``) only when ``capture_content`` is set.

``tool_call`` wraps one tool invocation: an ``execute_tool {tool}`` span whose
``gen_ai.tool.call.id`` is a hash of the idempotency key (never the arguments), and the
``decisionops_tool_call_duration_seconds`` histogram per tool.

What does not live here: providers and exporters (``telemetry.configure_tracing``), the
HTTP client and its retries (``agent.llm._client``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from decisionops.agent.hashing import digest
from decisionops.agent.telemetry import tracer

if TYPE_CHECKING:
    from decisionops.agent.telemetry import Metrics

__all__ = ["ChatRecord", "chat_call", "provider_name", "tool_call"]


def provider_name(base_url: str) -> str:
    """The ``gen_ai.provider.name`` of an OpenAI-compatible endpoint (the wire protocol's
    vendor when nothing more specific is known, as the conventions suggest)."""
    host = (urlsplit(base_url).hostname or "").lower()
    if host.endswith(".openai.azure.com"):
        return "azure.ai.openai"
    return "openai"


@dataclass
class ChatRecord:
    """What the call learned, filled in by the client before the span ends."""

    response_model: str | None = None
    response_id: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None
    output_text: str | None = None
    output_tool_calls: list[str] = field(default_factory=list)


@contextmanager
def chat_call(*, base_url: str, model: str, max_tokens: int, temperature: float,
              messages: Sequence[Mapping[str, Any]], capture_content: bool,
              metrics: Metrics | None) -> Iterator[ChatRecord]:
    provider = provider_name(base_url)
    parts = urlsplit(base_url)
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": provider,
        "gen_ai.system": provider, "gen_ai.request.model": model,
        "gen_ai.request.max_tokens": max_tokens, "gen_ai.request.temperature": temperature,
        "server.address": parts.hostname or "",
        "server.port": parts.port or (443 if parts.scheme == "https" else 80)}
    if capture_content:
        attributes["gen_ai.input.messages"] = _input_messages(messages)
    record = ChatRecord()
    started = time.monotonic()
    error_type = ""
    with tracer().start_as_current_span(f"chat {model}", kind=SpanKind.CLIENT,
                                        attributes=attributes, record_exception=False,
                                        set_status_on_exception=False) as span:
        try:
            yield record
        except BaseException as exc:
            error_type = type(exc).__name__
            span.set_attribute("error.type", error_type)
            span.set_status(Status(StatusCode.ERROR, error_type))
            raise
        finally:
            _finish(span, record, capture_content)
            if metrics is not None:
                labels = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": provider,
                          "gen_ai_request_model": model,
                          "gen_ai_response_model": record.response_model or ""}
                metrics.gen_ai_duration.labels(error_type=error_type, **labels).observe(
                    time.monotonic() - started)
                for kind, count in (("input", record.input_tokens),
                                    ("output", record.output_tokens)):
                    if count is not None:
                        metrics.gen_ai_tokens.labels(gen_ai_token_type=kind, **labels).observe(count)


def _finish(span: Span, record: ChatRecord, capture_content: bool) -> None:
    if record.response_model:
        span.set_attribute("gen_ai.response.model", record.response_model)
    if record.response_id:
        span.set_attribute("gen_ai.response.id", record.response_id)
    if record.finish_reasons:
        span.set_attribute("gen_ai.response.finish_reasons", record.finish_reasons)
    if record.input_tokens is not None:
        span.set_attribute("gen_ai.usage.input_tokens", record.input_tokens)
    if record.output_tokens is not None:
        span.set_attribute("gen_ai.usage.output_tokens", record.output_tokens)
    if capture_content and (record.output_text is not None or record.output_tool_calls):
        parts: list[dict[str, Any]] = []
        if record.output_text is not None:
            parts.append({"type": "text", "content": record.output_text})
        parts.extend({"type": "tool_call", "name": name} for name in record.output_tool_calls)
        reason = record.finish_reasons[0] if record.finish_reasons else None
        span.set_attribute("gen_ai.output.messages", json.dumps(
            [{"role": "assistant", "parts": parts, "finish_reason": reason}], ensure_ascii=False))


def _input_messages(messages: Sequence[Mapping[str, Any]]) -> str:
    out = []
    for message in messages:
        content = message.get("content")
        text = content if isinstance(content, str) else json.dumps(content, default=str)
        out.append({"role": message.get("role"), "parts": [{"type": "text", "content": text}]})
    return json.dumps(out, ensure_ascii=False)


@contextmanager
def tool_call(*, tool: str, idempotency_key: str, attributes: Mapping[str, Any],
              metrics: Metrics | None) -> Iterator[Span]:
    """An ``execute_tool`` span (the caller's ``attributes`` hold hashes only) and the
    tool's latency; exceptions mark the span and pass through."""
    started = time.monotonic()
    with tracer().start_as_current_span(
            f"execute_tool {tool}", kind=SpanKind.INTERNAL, record_exception=False,
            set_status_on_exception=False,
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool,
                        "gen_ai.tool.type": "function",
                        "gen_ai.tool.call.id": digest(idempotency_key)[:32], **attributes}) as span:
        try:
            yield span
        except BaseException as exc:
            span.set_attribute("error.type", type(exc).__name__)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            if metrics is not None:
                metrics.tool_latency.labels(tool).observe(time.monotonic() - started)
