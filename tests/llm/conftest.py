"""LLM planner tests: a migrated store per test (copied from a template), the seeded
reference enterprise shared read-only, the scripted OpenAI server, and a factory for
planners wired to them (real ``openai`` client over loopback HTTP)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from decisionops.agent.llm import ChatClient, ClientConfig, HybridPlanner, LLMOptions, LLMPlanner, ToolLookup
from decisionops.agent.models import Prediction
from decisionops.agent.planner import PlanRequest
from decisionops.agent.playbooks import PlaybookBook, load_playbooks
from decisionops.agent.policy import Policies, load_policies
from decisionops.agent.settings import ModelPrice
from decisionops.agent.store import Store
from decisionops.tools.enterprise import Enterprise
from decisionops.tools.registry import ToolRegistry, build_reference_registry
from tests.fakes.openai_server import ScriptedServer, openai_server  # noqa: F401 - fixture

API_KEY = "sk-canary-4f1d2c9e-never-log-me"


@dataclass
class Clock:
    at: datetime = field(default_factory=lambda: datetime(2026, 11, 20, 9, 0, tzinfo=UTC))

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@dataclass
class World:
    store: Store
    tools: ToolRegistry
    policies: Policies
    playbooks: PlaybookBook
    clock: Clock
    sleeps: list[float]


@pytest.fixture(scope="session")
def _templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Enterprise]]:
    folder = tmp_path_factory.mktemp("llm-templates")
    Store.open(f"sqlite:///{folder / 'store.sqlite'}").close()
    enterprise = Enterprise(f"sqlite:///{folder / 'enterprise.sqlite'}")
    enterprise.create()
    enterprise.seed()
    yield folder / "store.sqlite", enterprise
    enterprise.close()


@pytest.fixture
def world(_templates: tuple[Path, Enterprise], tmp_path: Path) -> Iterator[World]:
    template, enterprise = _templates
    shutil.copy(template, tmp_path / "store.sqlite")
    store = Store.open(f"sqlite:///{tmp_path / 'store.sqlite'}")
    yield World(store=store, tools=build_reference_registry(enterprise),
                policies=load_policies(), playbooks=load_playbooks(), clock=Clock(), sleeps=[])
    store.close()


Factory = Callable[..., LLMPlanner]


@pytest.fixture
def planner(world: World, openai_server: ScriptedServer) -> Iterator[Factory]:  # noqa: F811
    """``planner(hybrid=False, timeout=2.0, max_retries=2, **options)``."""
    made: list[LLMPlanner] = []

    def make(*, hybrid: bool = False, timeout: float = 2.0, max_retries: int = 2,
             max_retry_after: float = 30.0, lookup: Any = None, stop_grace: float = 10.0,
             **options: Any) -> LLMPlanner:
        client = ChatClient(ClientConfig(
            base_url=openai_server.url, model="gpt-test", api_key=SecretStr(API_KEY),
            timeout_seconds=timeout, max_retries=max_retries, backoff_seconds=0.25,
            max_retry_after_seconds=max_retry_after, stop_grace_seconds=stop_grace),
            sleep=world.sleeps.append)
        defaults: dict[str, Any] = {
            "mode": "tools", "max_bad_replies": max_retries, "cache_ttl_hours": 0.0,
            "prices": {"gpt-test": ModelPrice(input=2.0, output=8.0)},
            "daily_spend_cap": None}
        cls = HybridPlanner if hybrid else LLMPlanner
        made.append(cls(client=client, playbooks=world.playbooks, tools=world.tools,
                        policies=world.policies, lookup=lookup or ToolLookup(world.tools),
                        store=world.store.llm, options=LLMOptions(**{**defaults, **options}),
                        clock=world.clock, actor="test-planner"))
        return made[-1]

    yield make
    for p in made:
        p.close()


def churn(pid: str = "churn-llm-1", *, account: str = "ACC-10001", score: float = 0.9,
          value: float = 40_000, segment: str = "mid_market", **features: Any) -> Prediction:
    return Prediction(id=pid, model="churn-gbm", model_version="t", kind="churn",
                      entity_type="account", entity_id=account, score=score,
                      value_at_stake=value, explanation={"support_tickets_90d": 0.9,
                                                         "price_increase_pct": 0.4},
                      features={"segment": segment, "plan": "scale", **features},
                      observed_at="2026-11-20T08:00:00Z")


def request(prediction: Prediction | None = None, *, decision: str = "dec_llm_1",
            version: int = 1, feedback: tuple[str, ...] = ()) -> PlanRequest:
    return PlanRequest(decision_id=decision, prediction=prediction or churn(), playbook=None,
                       version=version, feedback=feedback)


def baseline_steps(world: World, prediction: Prediction | None = None) -> list[dict[str, Any]]:
    """The playbook's plan as the model would write it (all fields present)."""
    prediction = prediction or churn()
    plan = world.playbooks.for_prediction(prediction).draft(prediction, decision_id="x")
    return [{"id": s.id, "function": s.function, "tool": s.tool, "arguments": dict(s.arguments),
             "depends_on": list(s.depends_on), "rationale": "playbook step",
             "expected_cost": s.expected_cost, "expected_value": s.expected_value}
            for s in plan.steps]


def plan_args(steps: list[dict[str, Any]], rationale: str = "The playbook plan fits."
              ) -> dict[str, Any]:
    return {"rationale": rationale, "steps": steps}
