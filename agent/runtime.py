"""The composition root: builds the store, tools, planner, graph and engine from
``Settings`` and offers the operations the CLI, the API and the workers use.

This is the one place in ``agent`` that imports ``graphs`` and ``tools``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.approvals import ApprovalService
from agent.checkpoints import FencedCheckpointer, open_checkpointer
from agent.errors import ConfigError, ConflictError
from agent.executor import ExecutionPolicy, Executor
from agent.llm import ToolLookup, build_planner
from agent.models import Answer, Prediction, TriageAction, TriageVerdict, decision_id_for, utcnow
from agent.planner import Planner
from agent.playbooks import PlaybookBook, load_playbooks
from agent.policy import Policies, load_policies
from agent.settings import Settings
from agent.store import IngestResult, Store
from agent.telemetry import Metrics, configure_tracing
from agent.triage import triage
from graphs import DecisionContext, DecisionEngine, StepResult, build_decision_graph
from tools.enterprise import Enterprise
from tools.registry import ToolRegistry, build_reference_registry

__all__ = ["Runtime", "TriageSummary", "WorkSummary"]

if TYPE_CHECKING:
    from agent.worker import TickReport

Progress = Callable[[int], None]


@dataclass
class TriageSummary:
    verdicts: list[TriageVerdict] = field(default_factory=list)

    def count(self, action: TriageAction) -> int:
        return sum(1 for v in self.verdicts if v.action == action)


@dataclass
class WorkSummary:
    started: list[StepResult] = field(default_factory=list)
    resumed: list[StepResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _worker_id() -> str:
    return f"worker:{socket.gethostname()}:{os.getpid()}"


class Runtime:
    """Everything wired; use as a context manager (closes connections)."""

    def __init__(self, settings: Settings | None = None, *, actor: str | None = None) -> None:
        self.settings = settings or Settings()
        self.actor = actor or _worker_id()
        self._stack = ExitStack()
        try:
            self._build()
        except BaseException:
            self._stack.close()
            raise

    def _build(self) -> None:
        s = self.settings
        s.home.mkdir(parents=True, exist_ok=True)
        configure_tracing(s.otel_exporter, endpoint=s.otel_endpoint)
        self.metrics = Metrics()
        self.policies: Policies = load_policies(s.functions_file)
        self.playbooks: PlaybookBook = load_playbooks(s.playbooks_dir)
        self.store = Store.open(s.resolved_database_url)
        self._stack.callback(self.store.close)
        self.enterprise = Enterprise(s.resolved_enterprise_url)
        self.enterprise.create()
        if self.enterprise.counts().get("accounts", 0) == 0:
            # The embedded reference enterprise comes seeded: nothing to set up.
            self.enterprise.seed()
        self._stack.callback(self.enterprise.close)
        self.tools: ToolRegistry = build_reference_registry(self.enterprise)
        self._check_policies()
        self.planner: Planner = build_planner(
            s, playbooks=self.playbooks, tools=self.tools, policies=self.policies,
            store=self.store, lookup=ToolLookup(self.tools), actor=self.actor)
        self._stack.callback(getattr(self.planner, "close", lambda: None))
        self.executor = Executor(self.store, self.tools, self.policies, ExecutionPolicy(
            attempts=s.tool_attempts, backoff_seconds=s.tool_backoff_seconds,
            threads=s.executor_threads), actor=self.actor, metrics=self.metrics)
        self._stack.callback(self.executor.close)
        self.checkpointer = FencedCheckpointer(
            open_checkpointer(s.resolved_checkpoint_url, self._stack), self.store.fence_of)
        self.graph = build_decision_graph(self.checkpointer)
        self.engine = DecisionEngine(self.graph, store=self.store, policies=self.policies,
                                     context=self._context, owner=self.actor,
                                     lease_seconds=s.lease_seconds, durability=s.durability,
                                     fencing=self.checkpointer, metrics=self.metrics)
        self.approvals = ApprovalService(self.store, self.tools, self.policies)
        self.metrics.watch_store(self.gauges)

    def gauges(self) -> dict[str, dict[str, float]]:
        """Read on every metrics scrape: queue depth, decisions by state, pending
        approvals per function."""
        return {"queue_depth": {"": float(self.store.queue_depth())},
                "decisions:status": {k: float(v) for k, v in self.store.decision_counts().items()},
                "approvals_pending:function": {k: float(v) for k, v in
                                               self.store.pending_count().items()}}

    def _check_policies(self) -> None:
        known = {spec.name for spec in self.tools.specs()}
        for name, policy in self.policies.functions.items():
            missing = sorted(set(policy.tools) - known)
            if missing:
                raise ConfigError(f"functions.{name}.tools: unknown tool(s) {', '.join(missing)}",
                                  field=f"functions.{name}.tools")

    def _context(self, fence: int) -> DecisionContext:
        return DecisionContext(store=self.store, tools=self.tools, policies=self.policies,
                               planner=self.planner, executor=self.executor, actor=self.actor,
                               fence=fence, max_replans=self.settings.max_replans)

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ operations

    def ingest(self, predictions: Sequence[Prediction], *, source: str) -> IngestResult:
        unknown = sorted({p.kind for p in predictions} - self.playbooks.kinds())
        result = self.store.ingest(predictions, source=source, actor=self.actor)
        if result.new:
            self.metrics.predictions.labels(source.split(":", 1)[0]).inc(len(result.new))
        result.unknown_kinds = unknown
        return result

    def triage_pending(self, limit: int = 10_000) -> TriageSummary:
        """Triage every prediction not triaged yet, oldest first."""
        summary = TriageSummary()
        pending = self.store.untriaged(limit)
        by_kind: dict[str, list[Prediction]] = {}
        for p in pending:
            by_kind.setdefault(p.kind, []).append(p)
        now = utcnow()
        holds = self.store.active_holds(now)
        for kind, items in by_kind.items():
            last = self.store.last_acted(kind, (p.entity_id for p in items))
            for p in items:
                playbook = self.playbooks.for_prediction(p)
                verdict = triage(p, playbook, last_acted_at=last.get(p.entity_id), now=now,
                                 holdout_share=self.settings.holdout_share)
                held = (holds.match(p.entity_id, verdict.playbook)
                        if verdict.action == TriageAction.ACT else None)
                if held:  # an operator hold (ops chat); DROP, not HOLD: no holdout control arm
                    verdict = verdict.model_copy(update={"action": TriageAction.DROP,
                                                         "reason": "hold", "detail": held})
                if verdict.action == TriageAction.ACT:
                    last[p.entity_id] = p.observed_at
                summary.verdicts.append(verdict)
        if summary.verdicts:
            self.store.record_triage(summary.verdicts, actor=self.actor)
        return summary

    def start_actionable(self, limit: int = 10_000, progress: Progress | None = None
                         ) -> WorkSummary:
        work = WorkSummary()
        for prediction_id in self.store.actionable_without_decision(limit):
            try:
                work.started.append(self.engine.start(prediction_id))
            except ConflictError as exc:
                work.errors.append(f"{decision_id_for(prediction_id)}: {exc.message}")
            if progress:
                progress(1)
        return work

    def apply_answers(self, progress: Progress | None = None) -> WorkSummary:
        work = WorkSummary()
        decision_ids = sorted({a["decision_id"] for a in self.store.answered_unapplied()})
        for decision_id in decision_ids:
            try:
                work.resumed.append(self.engine.resume(decision_id))
            except ConflictError as exc:
                work.errors.append(f"{decision_id}: {exc.message}")
            if progress:
                progress(1)
        return work

    def answer(self, approval_id: str, answer: Answer, *, approver: str,
               apply: bool = True) -> StepResult | None:
        """Record an approver's answer; by default apply it to the decision at once."""
        self.approvals.answer(approval_id, answer, approver=approver)
        row = self.store.approval(approval_id)
        waited = (row["answered_at"] - row["requested_at"]).total_seconds()
        self.metrics.approval_latency.labels(row["function"]).observe(waited)
        if not apply:
            return None
        decision_id = row["decision_id"]
        try:
            return self.engine.resume(decision_id)
        except ConflictError:
            # Another process holds the lease and will apply it; the answer is recorded.
            return None

    def run_once(self) -> TickReport:
        """One pass of the loop, exactly as a worker runs it: recover stalled decisions,
        triage, start decisions, apply answered approvals, housekeeping (SLA, retention,
        sources)."""
        from agent.housekeeping import default_housekeeping
        from agent.worker import Worker

        return Worker(self, housekeeping=default_housekeeping(self.settings)).tick()

    def decision_ids(self, prediction_ids: Iterable[str]) -> list[str]:
        return [decision_id_for(p) for p in prediction_ids]

    def describe(self) -> dict[str, Any]:
        return {"database": self.settings.resolved_database_url,
                "checkpoints": self.settings.resolved_checkpoint_url,
                "enterprise": self.settings.resolved_enterprise_url,
                "planner": self.settings.planner, "durability": self.settings.durability}
