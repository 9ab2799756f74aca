"""``build_planner``: the configured planner from ``Settings`` (used by the runtime and
the eval runner). ``playbook`` needs nothing; ``llm`` and ``hybrid`` need an endpoint
and a model, and get a ``ChatClient``, a read-only ``Lookup`` and the store."""

from __future__ import annotations

import time
from collections.abc import Callable

from decisionops.agent.errors import ConfigError
from decisionops.agent.llm._client import ChatClient, ClientConfig, check_endpoint
from decisionops.agent.llm._lookup import ToolLookup
from decisionops.agent.llm._planner import HybridPlanner, LLMOptions, LLMPlanner
from decisionops.agent.llm._ports import LLMStore, Lookup
from decisionops.agent.planner import Planner, PlaybookPlanner
from decisionops.agent.playbooks import PlaybookBook
from decisionops.agent.policy import Policies
from decisionops.agent.ports import Clock, ToolPort
from decisionops.agent.settings import Settings
from decisionops.agent.telemetry import Metrics

__all__ = ["build_planner", "check_planner_settings", "options_from"]


def check_planner_settings(settings: Settings) -> None:
    """``ConfigError`` naming the field when the planner ``settings.planner`` names could
    not be built (no endpoint, no model, an endpoint tests may not call); a command that
    will plan says so at its start, before it does anything."""
    if settings.planner == "playbook":
        return
    if not settings.llm_base_url:
        raise ConfigError(f"llm_base_url: the {settings.planner} planner needs an "
                          "OpenAI-compatible endpoint: set DECISIONOPS_LLM_BASE_URL",
                          field="llm_base_url")
    if not settings.llm_model:
        raise ConfigError(f"llm_model: the {settings.planner} planner needs a model name: set "
                          "DECISIONOPS_LLM_MODEL", field="llm_model")
    check_endpoint(settings.llm_base_url)


def options_from(settings: Settings) -> LLMOptions:
    return LLMOptions(
        mode=settings.llm_mode, max_repairs=settings.llm_max_repairs,
        max_bad_replies=settings.llm_max_retries,
        max_lookup_rounds=settings.llm_max_lookup_rounds,
        max_output_tokens=settings.llm_max_output_tokens,
        token_cap=settings.llm_token_cap_per_decision,
        daily_spend_cap=settings.llm_daily_spend_cap, prices=dict(settings.llm_prices),
        fallback=settings.llm_fallback, cache_ttl_hours=settings.plan_cache_ttl_hours,
        cache_top_features=settings.plan_cache_top_features,
        max_extra_steps=settings.hybrid_max_extra_steps,
        max_growth=settings.hybrid_max_growth)


def build_planner(settings: Settings, *, playbooks: PlaybookBook, tools: ToolPort,
                  policies: Policies, store: LLMStore, lookup: Lookup | None = None,
                  actor: str = "planner", clock: Clock | None = None,
                  sleep: Callable[[float], None] = time.sleep,
                  metrics: Metrics | None = None) -> Planner:
    """The planner ``settings.planner`` names; a missing endpoint setting is a
    ``ConfigError`` naming the field."""
    if settings.planner == "playbook":
        return PlaybookPlanner(playbooks)
    check_planner_settings(settings)
    client = ChatClient(ClientConfig(
        base_url=settings.llm_base_url, model=settings.llm_model, api_key=settings.llm_api_key,
        timeout_seconds=settings.llm_timeout_seconds, max_retries=settings.llm_max_retries,
        backoff_seconds=settings.llm_backoff_seconds,
        max_retry_after_seconds=settings.llm_max_retry_after_seconds,
        requests_per_minute=settings.llm_requests_per_minute,
        tokens_per_minute=settings.llm_tokens_per_minute,
        circuit_failures=settings.llm_circuit_failures,
        circuit_cooldown_seconds=settings.llm_circuit_cooldown_seconds,
        capture_content=settings.otel_capture_content,
        stop_grace_seconds=settings.llm_stop_grace_seconds),
        sleep=sleep, metrics=metrics)
    cls = HybridPlanner if settings.planner == "hybrid" else LLMPlanner
    return cls(client=client, playbooks=playbooks, tools=tools, policies=policies,
               lookup=lookup or ToolLookup(tools), store=store, options=options_from(settings),
               clock=clock, actor=actor)
