"""What the LLM planners need from the outside, as small protocols.

``LLMStore`` is implemented by ``agent.store.Store`` (mixin ``agent.store._llm``);
``Lookup`` by ``agent.llm.ToolLookup`` over any ``ToolPort``. Tests and the eval runner
use the same real implementations on temporary SQLite files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol

from decisionops.agent.models import Plan, Prediction
from decisionops.agent.ports import ToolSpec

__all__ = ["LLMStore", "Lookup"]


class LLMStore(Protocol):
    def record_llm_call(self, *, decision_id: str | None, plan_version: int | None, purpose: str,
                        model: str, prompt_version: str | None, tokens_in: int, tokens_out: int,
                        cost: float, latency_ms: float | None, outcome: str,
                        at: datetime | None = None, request_hash: str | None = None,
                        occurrence: int = 1, reply: str | None = None) -> None:
        """One call; a successful reply is journaled under its request's hash (and
        which time the draft asked it) until the plan version is stored."""
        ...

    def record_replay(self, *, decision_id: str, plan_version: int, purpose: str, model: str,
                      prompt_version: str | None, at: datetime | None = None) -> None:
        """A request answered from the journal: listed with the decision's calls, at no
        cost, not counted as a call sent."""
        ...

    def journal(self, decision_id: str, plan_version: int) -> Mapping[tuple[str, int], Any]:
        """The replies journaled while drafting this plan version, by (request hash,
        occurrence): each with ``reply``, ``tokens_in``, ``tokens_out`` and ``cost``."""
        ...

    def spend_on(self, day: date) -> float:
        """Money spent on LLM calls on UTC day ``day`` (every planner, every worker)."""
        ...

    def decision_tokens(self, decision_id: str) -> int:
        """Tokens spent on one decision so far (every plan version)."""
        ...

    def cache_get(self, signatures: Sequence[str], *, newer_than: datetime
                  ) -> dict[str, Any] | None:
        """The newest entry (``signature``, ``body``, ``source_decision_id``…) under any of
        ``signatures`` created after ``newer_than``."""
        ...

    def cache_hit(self, signature: str, at: datetime | None = None) -> None:
        """Count a use of the entry."""
        ...

    def cache_put(self, signature: str, *, kind: str, playbook: str | None, planner: str,
                  body: dict[str, Any], source_decision_id: str | None,
                  at: datetime | None = None) -> None: ...

    def record_planner_event(self, *, decision_id: str, event: str, body: dict[str, Any],
                             actor: str) -> None:
        """Append a ledger entry (fallbacks, budget stops)."""
        ...

    def plan(self, decision_id: str, version: int | None = None) -> Plan:
        """A stored plan version (``NotFoundError`` if none)."""
        ...


class Lookup(Protocol):
    """Read-only enterprise lookups the model may use (and the planner prefetches)."""

    def specs(self) -> Sequence[ToolSpec]:
        """The lookup tools offered to the model."""
        ...

    def __call__(self, tool: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Run one lookup; raises ``InvalidInputError`` (bad arguments) or
        ``PermissionDenied`` (not a read-only lookup); a failed read returns ``{"error": …}``."""
        ...

    def context(self, prediction: Prediction) -> dict[str, Any]:
        """The entity's standard context (the primary lookup for its entity type)."""
        ...
