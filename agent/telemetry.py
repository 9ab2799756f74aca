"""Tracing and metrics, configured once at the composition root.

Traces (OpenTelemetry): a span per decision leg (start, resume, recover), per graph node,
per tool call and per LLM call (GenAI semantic conventions). A decision's trace context
is kept in its graph state, so the leg that resumes it after an approval wait (minutes or
days later, in another process) continues the same trace. Exporters by configuration:
``console`` for development, ``otlp`` (HTTP) for a collector, none by default.

Metrics (Prometheus): counters and histograms updated where the work happens, plus gauges
read from the store on scrape (queue depth, decisions by state, pending approvals), the
GenAI client histograms (``gen_ai_client_token_usage``, ``gen_ai_client_operation_duration_seconds``:
the OpenTelemetry ``gen_ai.client.*`` metrics under their Prometheus names), tool latency,
and the default process, platform and garbage-collector collectors. Prometheus rather
than an OpenTelemetry meter: ``/metrics`` is scraped from this one per-process registry,
so a second metrics pipeline would only duplicate it. The GenAI spans live in ``_genai``.

Business code only calls ``tracer()`` and the metric objects; it never creates
providers. Nothing secret goes into a span, log or metric: arguments appear as hashes.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily

__all__ = ["Metrics", "carrier", "configure_tracing", "span", "traced_node", "tracer"]

_PROPAGATOR = TraceContextTextMapPropagator()
_configured = threading.Lock()
_done: set[str] = set()


def configure_tracing(exporter: str | None, *, endpoint: str | None = None,
                      service: str = "decisionops") -> None:
    """Install the global tracer provider once per process (later calls are no-ops)."""
    if not exporter or exporter == "none":
        return
    with _configured:
        if "tracing" in _done:
            return
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
        )

        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        if exporter == "console":
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
        elif exporter == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(
                OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()))
        else:
            raise ValueError(f"otel_exporter: {exporter!r} is not none, console or otlp")
        trace.set_tracer_provider(provider)
        _done.add("tracing")


def tracer() -> trace.Tracer:
    return trace.get_tracer("decisionops")


def carrier() -> dict[str, str]:
    """The current trace context as W3C headers, to store with a decision."""
    out: dict[str, str] = {}
    _PROPAGATOR.inject(out)
    return out


@contextmanager
def span(name: str, *, parent: dict[str, str] | None = None,
         attributes: dict[str, Any] | None = None) -> Iterator[Span]:
    """A span; ``parent`` continues a stored trace context (across an approval wait)."""
    token = None
    if parent:
        token = otel_context.attach(_PROPAGATOR.extract(parent))
    try:
        with tracer().start_as_current_span(name, attributes=attributes or {},
                                            record_exception=False,
                                            set_status_on_exception=False) as current:
            try:
                yield current
            except BaseException as exc:
                if _interrupt(exc):
                    # An approval interrupt is control flow, not an error; its payload
                    # (the proposed arguments) must not be copied into the span.
                    current.set_attribute("decisionops.interrupted", True)
                    raise
                current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                current.set_attribute("exception.type", type(exc).__name__)
                raise
    finally:
        if token is not None:
            otel_context.detach(token)


def _interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is LangGraph's interrupt (``GraphBubbleUp``). Looked up only once
    something raised: a command that never runs a graph (``approvals approve``, ``users
    list``) does not import LangGraph for its spans (about half a second a command); an
    exception raised before LangGraph was imported cannot be one of its interrupts."""
    errors = sys.modules.get("langgraph.errors")
    return errors is not None and isinstance(exc, errors.GraphBubbleUp)


def traced_node(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a graph node so each run of it is a span (the node stays unaware)."""
    @functools.wraps(fn)  # keeps the signature and type hints LangGraph reads
    def node(state: Any, runtime: Any) -> Any:
        decision = state.get("decision_id") if isinstance(state, dict) else None
        with span(f"node {name}", attributes={"decisionops.node": name,
                                              "decisionops.decision_id": decision or ""}):
            return fn(state, runtime)

    return node


class Metrics:
    """The process's Prometheus metrics (one registry per process, not the global one,
    so tests and several runtimes in one process do not collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.predictions = Counter("decisionops_predictions_ingested_total",
                                   "Predictions stored (new ids only)", ["source_kind"],
                                   registry=self.registry)
        self.decisions = Counter("decisionops_decisions_finished_total",
                                 "Decisions that reached a terminal state", ["status"],
                                 registry=self.registry)
        self.approval_latency = Histogram(
            "decisionops_approval_latency_seconds", "Request to answer, per function",
            ["function"], registry=self.registry,
            buckets=(60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 72 * 3600))
        self.tool_calls = Counter("decisionops_tool_calls_total", "Tool calls by outcome",
                                  ["tool", "outcome"], registry=self.registry)
        self.notifications = Counter(
            "decisionops_notifications_total",
            "Approver notification attempts by channel and outcome (sent, retried, failed)",
            ["channel", "outcome"], registry=self.registry)
        self.lease_steals = Counter("decisionops_lease_steals_total",
                                    "Leases taken over from a worker whose lease lapsed",
                                    registry=self.registry)
        self.llm_circuit_open = Gauge(
            "decisionops_llm_circuit_open", "LLM circuit breaker: 0 closed, 0.5 half-open "
            "(the cool-down is over: the next call probes), 1 open (calls fail at once and "
            "planners fall back)", ["model"],
            registry=self.registry)
        self.llm_calls_refused = Counter(
            "decisionops_llm_calls_short_circuited_total",
            "LLM calls not made: the circuit was open, or the endpoint's Retry-After asked "
            "every caller to wait longer than a planner waits", ["model"],
            registry=self.registry)
        self.llm_throttled_seconds = Counter(
            "decisionops_llm_throttled_seconds_total",
            "Seconds LLM calls waited on the client-side rate limits or a Retry-After",
            ["model"], registry=self.registry)
        self.tool_latency = Histogram(
            "decisionops_tool_call_duration_seconds", "Wall time of one tool call attempt",
            ["tool"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        genai = ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model",
                 "gen_ai_response_model"]
        # Bucket boundaries as the GenAI semantic conventions advise.
        self.gen_ai_tokens = Histogram(
            "gen_ai_client_token_usage", "Tokens used per LLM call (gen_ai.client.token.usage)",
            [*genai, "gen_ai_token_type"], registry=self.registry,
            buckets=tuple(4.0 ** n for n in range(14)))
        self.gen_ai_duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "Duration of one LLM call, retries included (gen_ai.client.operation.duration)",
            [*genai, "error_type"], registry=self.registry,
            buckets=tuple(0.01 * 2 ** n for n in range(14)))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._sources: list[Callable[[], dict[str, dict[str, float]]]] = []
        self.registry.register(_StoreGauges(self._sources))

    def watch_store(self, read: Callable[[], dict[str, dict[str, float]]]) -> None:
        """Register a reader of gauges computed on scrape: name → {label: value}."""
        self._sources.append(read)


class _StoreGauges:
    def __init__(self, sources: list[Callable[[], dict[str, dict[str, float]]]]) -> None:
        self._sources = sources

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for read in self._sources:
            for name, values in read().items():
                metric, _, label = name.partition(":")
                family = GaugeMetricFamily(f"decisionops_{metric}", metric.replace("_", " "),
                                           labels=[label] if label else [])
                for key, value in values.items():
                    if label:
                        family.add_metric([key], value)
                    else:
                        family.add_metric([], value)
                yield family

