"""The executor: carries out the approved steps of one plan, exactly once each.

- Only approved steps run, in dependency order; the steps of one wave (no dependency
  between them) run concurrently, so different functions act in parallel.
- A step whose dependency failed or was skipped is skipped, with the reason recorded.
- Every call carries an idempotency key derived from (decision, step, approved-arguments
  hash). The execution ledger is written before the call (``started``) and after it
  (``succeeded``/``failed``); a re-run skips completed steps and repeats an interrupted
  call with the same key, which the tool answers from its own record.
- The arguments executed must hash to the approved ones, and are checked once more
  against the tool schema and the function's policy right before the call.
- Retryable tool errors are retried with capped exponential backoff and jitter;
  other errors fail the step at once.
- When the plan is all-or-nothing and a step fails for good, completed steps are
  compensated in reverse order with their tools' compensating calls.
"""

from __future__ import annotations

import contextvars
import random
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from agent.errors import ConflictError, InvalidInputError, NotFoundError, ToolCallError
from agent.faults import crash_point
from agent.guard import check_step
from agent.hashing import digest, short_id
from agent.models import ExecutionStatus, Plan, Step
from agent.policy import Policies
from agent.ports import ToolPort
from agent.store import CallEnd, CallStart, FinishedCalls, Store
from agent.telemetry import Metrics, span

__all__ = ["ExecutionReport", "Executor", "idempotency_key"]


def idempotency_key(decision_id: str, step_id: str, arguments_hash: str) -> str:
    return short_id("idem", decision_id, step_id, arguments_hash, length=32)


@dataclass
class ExecutionReport:
    succeeded: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    compensated: list[str] = field(default_factory=list)
    unrecorded: FinishedCalls | None = None
    """The last calls' results, for the caller to record in its own transaction (the
    decision's terminal state)."""

    @property
    def summary(self) -> dict[str, Any]:
        return {"succeeded": sorted(self.succeeded), "failed": self.failed,
                "skipped": self.skipped, "compensated": self.compensated}


@dataclass(frozen=True)
class ExecutionPolicy:
    attempts: int = 3
    backoff_seconds: float = 0.2
    max_backoff_seconds: float = 5.0
    threads: int = 4


class Executor:
    def __init__(self, store: Store, tools: ToolPort, policies: Policies,
                 policy: ExecutionPolicy | None = None, *, actor: str = "executor",
                 metrics: Metrics | None = None) -> None:
        self._metrics = metrics
        self._store = store
        self._tools = tools
        self._policies = policies
        self._policy = policy or ExecutionPolicy()
        self._actor = actor
        self._pool = (ThreadPoolExecutor(max_workers=self._policy.threads,
                                         thread_name_prefix="step")
                      if self._policy.threads > 1 else None)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def run(self, plan: Plan, approved: Mapping[str, Mapping[str, Any]],
            not_approved: Mapping[str, str], *, fence: int | None) -> ExecutionReport:
        """Execute ``approved`` (step id → approved arguments); ``not_approved`` maps the
        other steps to why they will not run. The results of the last calls are left in
        ``report.unrecorded`` for the caller to record: until it does, a re-run repeats
        those calls with their keys, and the tools answer from their record."""
        run = _Run(self, plan, fence)
        skipped = dict(not_approved)
        for dependent in sorted(plan.dependents_of(set(skipped))):
            skipped.setdefault(dependent, "depends on a step that will not run")
        run.skip(skipped)
        for wave in plan.topological_order():
            doomed = plan.dependents_of(set(run.report.failed))
            run.skip({s: "depends on a step that failed" for s in wave if s in doomed})
            runnable = [plan.step(s) for s in wave
                        if s not in run.report.skipped and s not in run.report.failed]
            run.wave(runnable, approved)
        if run.report.failed and plan.all_or_nothing and run.report.succeeded:
            run.compensate()
        if run.unrecorded:
            run.report.unrecorded = FinishedCalls(plan.version, plan.hash, run.unrecorded)
        return run.report

    def _count(self, tool: str, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.tool_calls.labels(tool, outcome).inc()

    def _map(self, fn: Any, items: list[Any]) -> list[Any]:
        if self._pool is None or len(items) <= 1:
            return [fn(item) for item in items]
        # Each call runs in a copy of this thread's context, so its span joins the trace;
        # this thread makes the first call itself rather than wait idle.
        futures = [self._pool.submit(contextvars.copy_context().run, fn, item)
                   for item in items[1:]]
        first = fn(items[0])
        return [first, *(f.result() for f in futures)]

    def _backoff(self, attempt: int) -> float:
        base = min(self._policy.max_backoff_seconds,
                   self._policy.backoff_seconds * (2 ** (attempt - 1)))
        return base * (0.5 + random.random() / 2)


@dataclass
class _Call:
    start: CallStart
    attempt: int = 0
    end: CallEnd | None = None


class _Run:
    """One execution of one plan version: batches the execution ledger per wave (one
    write-ahead transaction before the wave's calls, one after)."""

    def __init__(self, executor: Executor, plan: Plan, fence: int | None) -> None:
        self.ex = executor
        self.plan = plan
        self.fence = fence
        self.report = ExecutionReport()
        rows, self.ledger_hashes = executor._store.execution_state(plan.decision_id, plan.hash)
        self.prior = {r["idempotency_key"]: r for r in rows}
        self.unrecorded: list[CallEnd] = []
        """Results not yet written: they go out with the next wave's write-ahead records."""

    def _ids(self) -> dict[str, Any]:
        return {"decision_id": self.plan.decision_id, "plan_version": self.plan.version,
                "plan_hash": self.plan.hash, "actor": self.ex._actor, "fence": self.fence}

    def flush(self) -> None:
        if self.unrecorded:
            self.ex._store.finish_calls(calls=self.unrecorded, **self._ids())
            self.unrecorded = []

    def skip(self, reasons: Mapping[str, str]) -> None:
        reasons = {k: v for k, v in reasons.items() if k not in self.report.skipped}
        if reasons:
            self.flush()
            self.ex._store.skip_steps(skipped=dict(reasons), **self._ids())
            self.report.skipped.update(reasons)

    # ------------------------------------------------------------------ one wave

    def wave(self, steps: list[Step], approved: Mapping[str, Mapping[str, Any]]) -> None:
        calls: list[_Call] = []
        for step in steps:
            arguments = dict(approved[step.id])
            approved_hash = digest(arguments)
            key = idempotency_key(self.plan.decision_id, step.id, approved_hash)
            done = self.prior.get(key)
            if done is not None and done["status"] == ExecutionStatus.SUCCEEDED.value:
                self.report.succeeded[step.id] = done["receipt"] or {}
                continue
            call = _Call(CallStart(key, step.id, "execution", step.tool, arguments,
                                   approved_hash, from_plan=approved_hash == step.arguments_hash))
            refusal = self._refusal(step, arguments, approved_hash)
            if refusal:
                call.end = CallEnd(key, step.id, "execution", ExecutionStatus.FAILED,
                                   error=f"refused: {refusal}")
            calls.append(call)
        self._run_calls(calls)
        for call in calls:
            assert call.end is not None
            if call.end.status == ExecutionStatus.SUCCEEDED:
                self.report.succeeded[call.start.step_id] = call.end.receipt or {}
            else:
                self.report.failed[call.start.step_id] = call.end.error or "failed"

    def _refusal(self, step: Step, arguments: dict[str, Any], approved_hash: str) -> str | None:
        # The approved version is what runs: re-check policy and schema on exactly these
        # arguments (an approval is not a licence to exceed limits), and that they are the
        # ones the ledger recorded as approved.
        candidate = step.model_copy(update={"arguments": arguments})
        checked, problems = check_step(candidate, self.ex._tools, self.ex._policies)
        if self.ledger_hashes.get(step.id) != approved_hash:
            problems = [*problems, "the arguments differ from those recorded as approved in the "
                        "ledger (changed after approval?)"]
        if not problems and digest(checked.arguments) != approved_hash:
            problems = ["arguments changed between approval and execution"]
        return "; ".join(problems) or None

    def _run_calls(self, calls: list[_Call]) -> None:
        """Write-ahead for all, call the tools (concurrently), record all results."""
        if not calls:
            return
        attempts = self.ex._store.start_calls(calls=[c.start for c in calls],
                                              finished=self.unrecorded, **self._ids())
        self.unrecorded = []
        for call in calls:
            call.attempt = attempts[call.start.key]
        live = [c for c in calls if c.end is None]
        crash_point("before_tool_call")
        self.ex._map(self._call, live)
        self.unrecorded = [c.end for c in calls if c.end]

    def _call(self, call: _Call) -> None:
        start = call.start
        ok_status = (ExecutionStatus.SUCCEEDED if start.purpose == "execution"
                     else ExecutionStatus.COMPENSATED)
        while True:
            try:
                with span(f"tool {start.tool}", attributes={
                        "decisionops.tool": start.tool, "decisionops.step_id": start.step_id,
                        "decisionops.idempotency_key": start.key,
                        "decisionops.arguments_hash": start.arguments_hash,
                        "decisionops.attempt": call.attempt}) as current:
                    receipt = self.ex._tools.call(start.tool, start.arguments,
                                                  idempotency_key=start.key)
                    current.set_attribute("decisionops.replayed", receipt.replayed)
                self.ex._count(start.tool, "replayed" if receipt.replayed else "ok")
            except ToolCallError as exc:
                self.ex._count(start.tool, "retryable_error" if exc.retryable else "error")
                if exc.retryable and call.attempt < self.ex._policy.attempts:
                    time.sleep(self.ex._backoff(call.attempt))
                    call.attempt = self.ex._store.start_calls(calls=[start],
                                                              **self._ids())[start.key]
                    continue
                why = "not retryable" if not exc.retryable else "retries exhausted"
                call.end = CallEnd(start.key, start.step_id, start.purpose,
                                   ExecutionStatus.FAILED,
                                   error=f"{exc.message} (attempt {call.attempt}, {why})")
                return
            except (InvalidInputError, ConflictError, NotFoundError) as exc:
                call.end = CallEnd(start.key, start.step_id, start.purpose,
                                   ExecutionStatus.FAILED, error=exc.message)
                return
            crash_point("after_tool_call")
            call.end = CallEnd(start.key, start.step_id, start.purpose, ok_status,
                               receipt={**receipt.result, "_replayed": receipt.replayed})
            return

    # ------------------------------------------------------------------ compensation

    def compensate(self) -> None:
        order = [sid for wave in self.plan.topological_order() for sid in wave]
        for step_id in reversed(order):
            if step_id not in self.report.succeeded:
                continue
            step = self.plan.step(step_id)
            spec = self.ex._tools.spec(step.tool).compensation
            if spec is None:
                continue
            result = self.report.succeeded[step_id]
            arguments = {name: result[source] for name, source in spec.arguments_from_result.items()
                         if source in result}
            arguments.update(spec.fixed_arguments)
            try:
                arguments = self.ex._tools.validate(spec.tool, arguments)
            except InvalidInputError as exc:
                self.report.failed[f"{step_id}:compensation"] = exc.message
                continue
            key = short_id("comp", self.plan.decision_id, step_id, digest(arguments), length=32)
            call = _Call(CallStart(key, step_id, "compensation", spec.tool, arguments,
                                   digest(arguments)))
            self._run_calls([call])
            self.flush()
            assert call.end is not None
            if call.end.status == ExecutionStatus.COMPENSATED:
                self.report.compensated.append(step_id)
            else:
                self.report.failed[f"{step_id}:compensation"] = call.end.error or "failed"
