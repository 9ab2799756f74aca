"""A wired runtime on fresh SQLite files, and helpers to drive one decision."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from decisionops.agent.models import Prediction
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from decisionops.graphs import StepResult
from tests.support import answer, approver, pending, start_decisions

__all__ = ["answer", "churn", "failure", "pending", "start", "steps"]


@pytest.fixture(params=["sqlite", "postgres"])
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    """A runtime on each backend: SQLite files, or a fresh PostgreSQL database for the
    store and the LangGraph checkpoints (the reference enterprise stays SQLite)."""
    database_url = (request.getfixturevalue("pg_url") if request.param == "postgres"
                    else None)
    settings = Settings(home=tmp_path / "home", tool_backoff_seconds=0.01, max_replans=2,
                        database_url=database_url)
    with Runtime(settings, actor="test-worker") as runtime:
        runtime.enterprise.seed()
        for policy in runtime.policies.functions.values():
            for name in policy.approvers:
                approver(runtime, name)  # registered approvers answer, as on every channel
        yield runtime


def churn(pid: str = "churn-test-1", *, account: str = "ACC-10004", score: float = 0.9,
          value: float = 40_000, observed_at: str = "2026-11-20T08:00:00Z",
          **features: Any) -> Prediction:
    return Prediction(id=pid, model="churn-gbm", model_version="t", kind="churn",
                      entity_type="account", entity_id=account, score=score,
                      value_at_stake=value,
                      features={"segment": "enterprise", "plan": "scale", **features},
                      observed_at=observed_at)


def failure(pid: str = "failure-test-1", *, asset: str, site: str, part: str,
            score: float = 0.8) -> Prediction:
    return Prediction(id=pid, model="asset-failure-lstm", kind="failure", entity_type="asset",
                      entity_id=asset, score=score, value_at_stake=50_000,
                      features={"site": site, "asset_class": "pump", "spare_part_sku": part,
                                "remaining_useful_life_hours": 100},
                      observed_at="2026-11-20T08:00:00Z")


def start(rt: Runtime, prediction: Prediction) -> StepResult:
    rt.ingest([prediction], source="test")
    rt.triage_pending()
    (result,) = start_decisions(rt)
    return result


def steps(rt: Runtime, decision_id: str) -> dict[str, str]:
    version = rt.store.decisions.get(decision_id).plan_version
    return {s["step_id"]: s["status"] for s in rt.store.plans.steps(decision_id, version)}
