"""One in-memory span exporter per test process.

OpenTelemetry allows one tracer provider per process, so the test modules that read
spans share this one, installed the way a deployment's ``configure_tracing`` would."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

__all__ = ["memory_exporter"]

_EXPORTER = InMemorySpanExporter()
_installed: list[TracerProvider] = []


def memory_exporter() -> InMemorySpanExporter:
    """The process's in-memory exporter, cleared; installs the provider on first use."""
    if not _installed:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
        assert trace.get_tracer_provider() is provider, "another test set a tracer provider"
        _installed.append(provider)
    _EXPORTER.clear()
    return _EXPORTER
