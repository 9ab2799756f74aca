"""The executor: carries out the approved steps of one plan, exactly once each.

- Only approved steps run, in dependency order; the steps of one wave (no dependency
  between them) run concurrently, so different functions act in parallel.
- A step whose dependency failed or was skipped is skipped, with the reason recorded.
- Every call carries an idempotency key derived from (decision, step, approved-arguments
  hash). The execution ledger is written before the call (``started``) and after it
  (``succeeded``/``failed``); a re-run skips completed steps and repeats an interrupted
  call with the same key, which the tool answers from its own record.
- The arguments executed must hash to the approved ones recorded in the ledger, and are
  checked once more against the tool schema and the function's limits right before the
  call.
- Each wave's write-ahead transaction is where holds and totals bind: a step covered by
  an operator hold does not start (the run pauses and resumes on release), and a call
  that would take a function's total (``policy.Total``) over its maximum, counting what
  every other call used, is refused; the calls that start claim their share in the same
  transaction.
- Retryable tool errors are retried with capped exponential backoff and jitter; other
  errors fail the step at once. Before a failure is recorded, the tool is asked for its
  own record under the key (``ToolPort.recall``): a call that committed and then
  reported a failure (a timeout after commit) is recorded as the success it was.
- When the plan is all-or-nothing and a step fails for good, completed steps are
  compensated in reverse order with their tools' compensating calls.
"""

from __future__ import annotations

import contextvars
import random
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from decisionops.agent._genai import tool_call
from decisionops.agent.errors import ConflictError, InvalidInputError, NotFoundError, ToolCallError
from decisionops.agent.faults import crash_point
from decisionops.agent.guard import check_step
from decisionops.agent.hashing import digest, short_id
from decisionops.agent.models import DecisionStatus, ExecutionStatus, Plan, Step
from decisionops.agent.policy import Policies
from decisionops.agent.ports import ToolPort
from decisionops.agent.store import CallEnd, CallStart, DecisionTx, FinishedCalls, Store
from decisionops.agent.store._holds import active
from decisionops.agent.telemetry import Metrics
from decisionops.agent.usage import Call, claim_shares

__all__ = ["ExecutionPolicy", "ExecutionReport", "Executor", "Scope", "idempotency_key"]


def idempotency_key(decision_id: str, step_id: str, arguments_hash: str) -> str:
    return short_id("idem", decision_id, step_id, arguments_hash, length=32)


@dataclass(frozen=True)
class Scope:
    """What the decision acts on, for the holds that may cover it."""

    entity_id: str | None = None
    playbook: str | None = None
    auto: frozenset[str] = frozenset()
    """Functions whose part policy approved: their auto-approve totals bind too."""


@dataclass
class ExecutionReport:
    succeeded: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    compensated: list[str] = field(default_factory=list)
    held: str | None = None
    """Why the run paused before some steps (an operator hold); they run once it is
    released."""
    held_functions: set[str] = field(default_factory=set)
    """The functions whose steps the hold stopped."""
    unrecorded: FinishedCalls | None = None
    """The last calls' results, for the caller to record in its own transaction (the
    decision's terminal state)."""

    @property
    def summary(self) -> dict[str, Any]:
        return {"succeeded": sorted(self.succeeded), "failed": self.failed,
                "skipped": self.skipped, "compensated": self.compensated, "held": self.held}


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
            not_approved: Mapping[str, str], *, fence: int | None,
            scope: Scope | None = None) -> ExecutionReport:
        """Execute ``approved`` (step id → approved arguments); ``not_approved`` maps the
        other steps to why they will not run. The results of the last calls are left in
        ``report.unrecorded`` for the caller to record: until it does, a re-run repeats
        those calls with their keys, and the tools answer from their record."""
        run = _Run(self, plan, fence, scope or Scope())
        skipped = dict(not_approved)
        for dependent in sorted(plan.dependents_of(set(skipped))):
            skipped.setdefault(dependent, "depends on a step that will not run")
        run.skip(skipped)
        for wave in plan.topological_order():
            doomed = plan.dependents_of(set(run.report.failed))
            run.skip({s: "depends on a step that failed" for s in wave if s in doomed})
            waiting = plan.dependents_of(set(run.held)) | set(run.held)
            runnable = [plan.step(s) for s in wave if s not in run.report.skipped
                        and s not in run.report.failed and s not in waiting]
            run.wave(runnable, approved)
        if run.held:
            run.pause()
        elif run.report.failed and plan.all_or_nothing and run.report.succeeded:
            run.compensate()
        if run.unrecorded:
            run.report.unrecorded = FinishedCalls(plan.version, plan.hash, run.unrecorded)
        return run.report

    def _count(self, tool: str, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.tool_calls.labels(tool, outcome).inc()

    def _map(self, fn: Any, items: list[Any], *, overlap: bool = True) -> list[Any]:
        if self._pool is None or len(items) <= 1 or not overlap:
            return [fn(item) for item in items]
        # Each call runs in a copy of this thread's context, so its span joins the trace;
        # this thread makes the first call itself rather than wait idle.
        futures = [self._pool.submit(contextvars.copy_context().run, fn, item)
                   for item in items[1:]]
        try:
            first = fn(items[0])
        finally:  # a call that ends the leg (raises) does so once its wave is done
            wait(futures)
        return [first, *(f.result() for f in futures)]

    def _backoff(self, attempt: int) -> float:
        base = min(self._policy.max_backoff_seconds,
                   self._policy.backoff_seconds * (2 ** (attempt - 1)))
        return base * (0.5 + random.random() / 2)


@dataclass
class _Call:
    start: CallStart
    function: str
    attempt: int = 0
    end: CallEnd | None = None


class _Run:
    """One execution of one plan version: one write-ahead transaction per wave (holds,
    totals, the wave's records and the previous wave's results)."""

    def __init__(self, executor: Executor, plan: Plan, fence: int | None, scope: Scope) -> None:
        self.ex = executor
        self.plan = plan
        self.fence = fence
        self.scope = scope
        self.report = ExecutionReport()
        rows, self.ledger_hashes = executor._store.executions.state(plan.decision_id, plan.hash)
        self.prior = {r.idempotency_key: r for r in rows}
        self.unrecorded: list[CallEnd] = []
        """Results not yet written: they go out with the next wave's write-ahead records."""
        self.held: dict[str, str] = {}
        """Step id → the hold that stopped it (each step its own: several may apply)."""
        self.keys: dict[str, str] = {}
        """Step id → the idempotency key of its call."""
        self.executing = False
        """Whether this run has set the decision's status to executing."""

    def _needs(self, step_id: str) -> set[str]:
        """Every step ``step_id`` depends on, directly or transitively."""
        out: set[str] = set()
        frontier = set(self.plan.step(step_id).depends_on)
        while frontier:
            out |= frontier
            frontier = {d for s in frontier for d in self.plan.step(s).depends_on} - out
        return out

    def _tx(self) -> Any:
        return self.ex._store.decision_tx(self.plan.decision_id, fence=self.fence,
                                          actor=self.ex._actor)

    def _finish(self, tx: DecisionTx) -> None:
        """Write the results not yet written (which also gives back the totals' shares
        of calls that made no effect)."""
        if not self.unrecorded:
            return
        store = self.ex._store
        store.executions.finish(tx, plan_version=self.plan.version, plan_hash=self.plan.hash,
                                calls=self.unrecorded)
        self.unrecorded = []

    def skip(self, reasons: Mapping[str, str]) -> None:
        reasons = {k: v for k, v in reasons.items() if k not in self.report.skipped}
        if reasons:
            with self._tx() as tx:
                self._finish(tx)
                self.ex._store.executions.skip(tx, plan_version=self.plan.version,
                                               plan_hash=self.plan.hash, skipped=dict(reasons))
            self.report.skipped.update(reasons)

    def pause(self) -> None:
        """The run stops at a hold: record what ran, and the decision as held."""
        with self._tx() as tx:
            self._finish(tx)
            # The held steps say so, each with its hold, and so do the steps waiting
            # behind them (their results overwrite it once they run).
            statuses = {step_id: ("held", why) for step_id, why in self.held.items()}
            done = set(self.report.succeeded) | set(self.report.failed) | set(
                self.report.skipped)
            for step_id in sorted(self.plan.dependents_of(set(self.held)) - done):
                ahead = sorted(s for s in self.held if s in self._needs(step_id))
                statuses.setdefault(step_id, ("held", f"waits for {', '.join(ahead)}, "
                                                      "which a hold stopped"))
            self.ex._store.plans.set_step_status(tx, self.plan.version, statuses)
            self.ex._store.decisions.set_status(
                tx, DecisionStatus.HELD, plan_hash=self.plan.hash,
                body={"reason": self.report.held, "steps": sorted(self.held)})

    # ------------------------------------------------------------------ one wave

    def wave(self, steps: list[Step], approved: Mapping[str, Mapping[str, Any]]) -> None:
        calls: list[_Call] = []
        for step in steps:
            arguments = dict(approved[step.id])
            approved_hash = digest(arguments)
            key = idempotency_key(self.plan.decision_id, step.id, approved_hash)
            self.keys[step.id] = key
            done = self.prior.get(key)
            if done is not None and done.status == ExecutionStatus.SUCCEEDED:
                self.report.succeeded[step.id] = done.receipt or {}
                continue
            if done is not None and done.status == ExecutionStatus.FAILED:
                # Failed for good in an earlier leg (a crash or a hold ended it after):
                # never called again, so what follows from the failure (skips, the
                # compensation in progress) stays what it was.
                self.report.failed[step.id] = done.error or "failed"
                continue
            call = _Call(CallStart(key, step.id, "execution", step.tool, arguments,
                                   approved_hash, from_plan=approved_hash == step.arguments_hash),
                         step.function)
            refusal = self._refusal(step, arguments, approved_hash)
            if refusal:
                call.end = CallEnd(key, step.id, "execution", ExecutionStatus.FAILED,
                                   error=f"refused: {refusal}")
            calls.append(call)
        self._run_calls(calls)
        for call in calls:
            if call.end is None:
                continue  # held: it starts after the release
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
        """Write-ahead for all (holds and totals checked in the same transaction), call
        the tools (concurrently), keep the results for the next write."""
        if not calls:
            return
        store = self.ex._store
        with self._tx() as tx:
            self._hold(tx, calls)
            going = [c for c in calls if c.start.step_id not in self.held]
            self._totals(tx, [c for c in going if c.end is None])
            self._finish(tx)
            if not self.executing and any(c.end is None for c in going):
                self._executing(tx)
            attempts = store.executions.start(tx, plan_version=self.plan.version,
                                              plan_hash=self.plan.hash,
                                              calls=[c.start for c in going])
        for call in going:
            call.attempt = attempts.get(call.start.key, 0)
        live = [c for c in going if c.end is None]
        crash_point("before_tool_call")
        # Calls overlap only where one waits on another process (``ToolSpec.in_process``).
        self.ex._map(self._call, live, overlap=not all(
            self.ex._tools.spec(c.start.tool).in_process for c in live))
        self.unrecorded = [c.end for c in going if c.end]

    def _executing(self, tx: DecisionTx) -> None:
        self.ex._store.decisions.mark_executing(tx, plan_hash=self.plan.hash)
        self.executing = True

    def _hold(self, tx: DecisionTx, calls: list[_Call]) -> None:
        holds = active(tx.conn, tx.now)
        if not holds.rows:
            return
        for call in calls:
            if call.start.purpose != "execution" or call.end is not None:
                continue
            why = holds.why(entity_id=self.scope.entity_id, playbook=self.scope.playbook,
                            functions=[call.function], decision_id=self.plan.decision_id)
            if why:
                self.held[call.start.step_id] = why
                self.report.held = why
                self.report.held_functions.add(call.function)

    def _totals(self, tx: DecisionTx, calls: list[_Call]) -> None:
        refused = claim_shares(tx, self.ex._store, self.ex._policies, self.ex._tools, [
            Call(c.start.key, c.function, c.start.tool, c.start.arguments)
            for c in calls if c.start.purpose == "execution"], auto=self.scope.auto)
        for call in calls:
            if call.start.key in refused:
                call.end = CallEnd(call.start.key, call.start.step_id, "execution",
                                   ExecutionStatus.FAILED, error=refused[call.start.key])

    def _call(self, call: _Call) -> None:
        start = call.start
        ok_status = (ExecutionStatus.SUCCEEDED if start.purpose == "execution"
                     else ExecutionStatus.COMPENSATED)
        tries = 0
        while True:
            tries += 1
            try:
                with tool_call(tool=start.tool, idempotency_key=start.key,
                               metrics=self.ex._metrics, attributes={
                                   "decisionops.tool": start.tool,
                                   "decisionops.step_id": start.step_id,
                                   "decisionops.idempotency_key": start.key,
                                   "decisionops.arguments_hash": start.arguments_hash,
                                   "decisionops.attempt": call.attempt}) as current:
                    receipt = self.ex._tools.call(start.tool, start.arguments,
                                                  idempotency_key=start.key)
                    current.set_attribute("decisionops.replayed", receipt.replayed)
                self.ex._count(start.tool, "replayed" if receipt.replayed else "ok")
            except ToolCallError as exc:
                self.ex._count(start.tool, "retryable_error" if exc.retryable else "error")
                if exc.retryable and tries < self.ex._policy.attempts:
                    time.sleep(self.ex._backoff(tries))
                    with self._tx() as tx:
                        call.attempt = self.ex._store.executions.start(
                            tx, plan_version=self.plan.version, plan_hash=self.plan.hash,
                            calls=[start])[start.key]
                    continue
                why = "not retryable" if not exc.retryable else "retries exhausted"
                error = f"{exc.message} (attempt {call.attempt}, {why})"
                if exc.retryable:
                    self._unavailable(call, error, ok_status)
                else:
                    self._failed(call, error, ok_status)
                return
            except (InvalidInputError, ConflictError, NotFoundError) as exc:
                call.end = CallEnd(start.key, start.step_id, start.purpose,
                                   ExecutionStatus.FAILED, error=exc.message)
                return
            crash_point("after_tool_call")
            call.end = CallEnd(start.key, start.step_id, start.purpose, ok_status,
                               receipt={**receipt.result, "_replayed": receipt.replayed})
            return

    def _unavailable(self, call: _Call, error: str, ok_status: ExecutionStatus) -> None:
        """The retries of a retryable error ran out (the system is down, overloaded,
        timing out): the call ends its leg, not its step, unless the tool's record says
        it took effect after all. Its write-ahead record stays open, so the loop carries
        the decision on once the lease lapses and makes the call again with its key (an
        approved step is not lost to an outage); legs that keep failing hold the decision
        for an operator (``max_leg_failures``)."""
        start = call.start
        try:
            receipt = self.ex._tools.recall(start.tool, idempotency_key=start.key)
        except (ToolCallError, ConflictError, NotFoundError, InvalidInputError):
            receipt = None
        if receipt is not None:
            self._reconciled(call, receipt, error, ok_status)
            return
        said = error if error.startswith(start.tool) else f"{start.tool}: {error}"
        raise ToolCallError(f"{said}; the call is made again with its key when the loop "
                            "next carries the decision on", retryable=True,
                            tool=start.tool, idempotency_key=start.key)

    def _reconciled(self, call: _Call, receipt: Any, error: str,
                    ok_status: ExecutionStatus) -> None:
        start = call.start
        self.ex._count(start.tool, "reconciled")
        call.end = CallEnd(start.key, start.step_id, start.purpose, ok_status,
                           receipt={**receipt.result, "_replayed": True, "_reconciled": True,
                                    "_reported_error": error})

    def _failed(self, call: _Call, error: str, ok_status: ExecutionStatus) -> None:
        """Before a failure is recorded, ask the tool whether the call took effect after
        all (it committed, then the answer was lost): then it succeeded."""
        start = call.start
        try:
            receipt = self.ex._tools.recall(start.tool, idempotency_key=start.key)
        except (ToolCallError, ConflictError, NotFoundError, InvalidInputError) as exc:
            call.end = CallEnd(start.key, start.step_id, start.purpose, ExecutionStatus.FAILED,
                               error=f"{error}; whether it took effect is unknown (the tool "
                                     f"could not be asked: {exc.message})", effect_unknown=True)
            return
        if receipt is None:
            call.end = CallEnd(start.key, start.step_id, start.purpose, ExecutionStatus.FAILED,
                               error=error)
            return
        self._reconciled(call, receipt, error, ok_status)

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
            done = self.prior.get(key)
            if done is not None and done.status == ExecutionStatus.COMPENSATED:
                self.report.compensated.append(step_id)  # undone in an earlier leg
                continue
            call = _Call(CallStart(key, step_id, "compensation", spec.tool, arguments,
                                   digest(arguments)), step.function)
            self._run_calls([call])
            with self._tx() as tx:
                self._finish(tx)
                if call.end is not None and call.end.status == ExecutionStatus.COMPENSATED:
                    # Undone: what the step used of its totals counts no more.
                    self.ex._store.executions.release_shares(tx, [self.keys[step_id]])
            assert call.end is not None
            if call.end.status == ExecutionStatus.COMPENSATED:
                self.report.compensated.append(step_id)
            else:
                self.report.failed[f"{step_id}:compensation"] = call.end.error or "failed"
