"""Prometheus metrics over HTTP."""

from __future__ import annotations

import pytest

from tests.api.conftest import Service


def test_metrics_are_served_in_prometheus_format(svc: Service) -> None:
    decision = svc.decide()
    response = svc.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "decisionops_predictions_ingested_total" in text
    assert 'decisionops_approvals_pending{function="finance"} 1.0' in text
    assert "decisionops_queue_depth 0.0" in text
    assert decision not in text  # counts and gauges, no identifiers


def test_metrics_carry_the_default_process_collectors_and_the_genai_histograms(svc: Service
                                                                               ) -> None:
    text = svc.client.get("/metrics").text
    for family in ("process_resident_memory_bytes", "process_cpu_seconds_total", "python_info",
                   "python_gc_objects_collected_total",
                   "# TYPE gen_ai_client_token_usage histogram",
                   "# TYPE gen_ai_client_operation_duration_seconds histogram",
                   "# TYPE decisionops_tool_call_duration_seconds histogram"):
        assert family in text, family


def test_readyz_says_not_ready_when_the_store_cannot_be_written(
        svc: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    """(trial 32 #2: on a read-only volume /readyz answered "ready" while every answer
    failed.) A SQLite store whose file or folder this process may not write is not
    ready, and says why."""
    import os

    assert svc.client.get("/readyz").status_code == 200
    real = os.access
    store = svc.rt.store.engine.url.database
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: (
        False if mode == os.W_OK and str(path) in (store, os.path.dirname(store))
        else real(path, mode, **kw)))
    response = svc.client.get("/readyz")
    assert response.status_code == 503
    assert "read-only" in response.json()["error"]["message"]
