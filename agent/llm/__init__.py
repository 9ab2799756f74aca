"""LLM planners: ``llm`` (a model drafts the plan, the playbook guides it) and ``hybrid``
(a model adapts the playbook's plan within strict bounds), over any OpenAI-compatible
chat-completions endpoint through the ``openai`` client.

Public surface::

    build_planner(settings, playbooks=, tools=, policies=, store=, lookup=)  -> Planner
    LLMPlanner, HybridPlanner, LLMOptions      the planners and their knobs
    ChatClient, ClientConfig, check_endpoint   the endpoint (bounded retries, loopback guard)
    ToolLookup, Lookup, LLMStore               what the planners read and write
    check_bounds                               the playbook bounds (documented in _bounds)
    LLMFailure and subclasses                  why a draft fell back

Modules: ``_client`` (HTTP and retries), ``_dialog`` (one conversation), ``_output``
(the plan schema and parsing), ``_bounds``, ``_cache``, ``_meter`` (tokens, cost,
caps), ``_prompting`` (messages from ``prompts/``), ``_planner``, ``_factory``.
This package never imports ``tools`` or ``graphs``.
"""

from decisionops.agent.llm._bounds import BoundsReport, check_bounds
from decisionops.agent.llm._client import Attempt, ChatClient, ClientConfig, Reply, ToolCall, check_endpoint
from decisionops.agent.llm._errors import (
    BudgetExceeded,
    GuardExhausted,
    LLMFailure,
    LLMModeUnsupported,
    LLMOutputError,
    LLMRequestRefused,
    LLMTransportError,
)
from decisionops.agent.llm._factory import build_planner, check_planner_settings, options_from
from decisionops.agent.llm._lookup import DEFAULT_LOOKUPS, ToolLookup
from decisionops.agent.llm._meter import cost_of, spend_today
from decisionops.agent.llm._planner import HybridPlanner, LLMOptions, LLMPlanner
from decisionops.agent.llm._ports import LLMStore, Lookup

__all__ = [
    "DEFAULT_LOOKUPS",
    "Attempt",
    "BoundsReport",
    "BudgetExceeded",
    "ChatClient",
    "ClientConfig",
    "GuardExhausted",
    "HybridPlanner",
    "LLMFailure",
    "LLMModeUnsupported",
    "LLMOptions",
    "LLMOutputError",
    "LLMPlanner",
    "LLMRequestRefused",
    "LLMStore",
    "LLMTransportError",
    "Lookup",
    "Reply",
    "ToolCall",
    "ToolLookup",
    "build_planner",
    "check_bounds",
    "check_endpoint",
    "check_planner_settings",
    "cost_of",
    "options_from",
    "spend_today",
]
