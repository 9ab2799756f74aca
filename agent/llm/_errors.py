"""Errors of the LLM planners. They extend ``agent.errors``::

    RuntimeFailure
    └── LLMFailure                the model gave no usable plan; the planner falls back
        ├── LLMTransportError     timeout, connection error, 429, 5xx after bounded retries
        ├── LLMRequestRefused     the endpoint refused the request itself (4xx)
        │   └── LLMModeUnsupported  a 400 "not supported" for function tools or JSON schema
        ├── LLMOutputError        unusable replies (bad JSON, unknown tool, missing
        │                         fields, truncated) beyond the allowed number
        ├── GuardExhausted        every draft and repair was refused by the guard
        └── BudgetExceeded        the per-decision token cap or the daily spend cap

Configuration mistakes (no base URL, a non-loopback endpoint under tests) raise
``agent.errors.ConfigError``. None of these leave the planner: ``draft`` turns them
into a fallback and records the reason. Messages never contain the API key.
"""

from __future__ import annotations

from typing import Any

from decisionops.agent.errors import RuntimeFailure

__all__ = [
    "BudgetExceeded",
    "GuardExhausted",
    "LLMFailure",
    "LLMModeUnsupported",
    "LLMOutputError",
    "LLMRequestRefused",
    "LLMTransportError",
]


class LLMFailure(RuntimeFailure):
    """The model gave no usable plan. ``cause`` is a short code recorded as the fallback reason."""

    cause = "llm"

    def __init__(self, message: str, *, retryable: bool = False, **details: Any) -> None:
        super().__init__(message, retryable=retryable, **details)


class LLMTransportError(LLMFailure):
    """The endpoint could not be reached or kept failing (timeouts, 429, 5xx)."""

    cause = "llm_unavailable"


class EndpointPaused(LLMTransportError):
    """The endpoint asked every caller to wait (a 429's Retry-After) longer than a
    planner waits: this call was not made."""


class LLMRequestRefused(LLMFailure):
    """The endpoint refused the request (400, 401, 403, 404, 422…); retrying will not help."""

    cause = "llm_refused"


class LLMModeUnsupported(LLMRequestRefused):
    """The endpoint does not support the output mode asked for (function tools or JSON schema)."""

    cause = "llm_mode_unsupported"

    def __init__(self, message: str, *, mode: str) -> None:
        super().__init__(message, mode=mode)
        self.mode = mode


class LLMOutputError(LLMFailure):
    """Replies could not be used (bad JSON, unknown tool, missing fields, truncated)."""

    cause = "llm_malformed"


class GuardExhausted(LLMFailure):
    """Every draft and every repair was refused by the guard."""

    cause = "guard"

    def __init__(self, message: str, *, problems: list[str]) -> None:
        super().__init__(message, problems=problems)
        self.problems = problems


class BudgetExceeded(LLMFailure):
    """A token or spend cap was reached; no further call is made for this draft."""

    cause = "budget"
