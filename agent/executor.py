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
from agent.store import Store

__all__ = ["ExecutionReport", "Executor", "idempotency_key"]


def idempotency_key(decision_id: str, step_id: str, arguments_hash: str) -> str:
    return short_id("idem", decision_id, step_id, arguments_hash, length=32)


@dataclass
class ExecutionReport:
    succeeded: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    compensated: list[str] = field(default_factory=list)

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
                 policy: ExecutionPolicy | None = None, *, actor: str = "executor") -> None:
        self._store = store
        self._tools = tools
        self._policies = policies
        self._policy = policy or ExecutionPolicy()
        self._actor = actor

    def run(self, plan: Plan, approved: Mapping[str, Mapping[str, Any]],
            not_approved: Mapping[str, str], *, fence: int | None) -> ExecutionReport:
        """Execute ``approved`` (step id → approved arguments); ``not_approved`` maps the
        other steps to why they will not run."""
        report = ExecutionReport()
        skipped = dict(not_approved)
        for dependent in sorted(plan.dependents_of(set(skipped))):
            skipped.setdefault(dependent, "depends on a step that will not run")
        report.skipped.update(skipped)
        ledger_hashes = self._store.approved_hashes(plan.decision_id, plan.hash)
        self._store.skip_steps(decision_id=plan.decision_id, plan_version=plan.version,
                               plan_hash=plan.hash, skipped=skipped, actor=self._actor,
                               fence=fence)
        with ThreadPoolExecutor(max_workers=self._policy.threads,
                                thread_name_prefix="step") as pool:
            for wave in plan.topological_order():
                runnable = [s for s in wave if s not in report.skipped and s not in report.failed]
                blocked = {s: "depends on a step that failed" for s in wave
                           if s not in report.skipped and s not in runnable}
                if blocked:
                    report.skipped.update(blocked)
                if len(runnable) == 1:
                    results = [self._step(plan, plan.step(runnable[0]), approved, ledger_hashes, fence)]
                else:
                    results = list(pool.map(
                        lambda sid: self._step(plan, plan.step(sid), approved, ledger_hashes, fence), runnable))
                for step_id, ok, payload in results:
                    if ok:
                        report.succeeded[step_id] = payload
                    else:
                        report.failed[step_id] = payload
                if report.failed:
                    late = plan.dependents_of(set(report.failed)) - set(report.skipped)
                    late -= set(report.succeeded)
                    if late:
                        reasons = {s: "depends on a step that failed" for s in sorted(late)}
                        self._store.skip_steps(decision_id=plan.decision_id,
                                               plan_version=plan.version, plan_hash=plan.hash,
                                               skipped=reasons, actor=self._actor, fence=fence)
                        report.skipped.update(reasons)
        if report.failed and plan.all_or_nothing and report.succeeded:
            report.compensated = self._compensate(plan, report, fence)
        return report

    # ------------------------------------------------------------------ one step

    def _step(self, plan: Plan, step: Step, approved: Mapping[str, Mapping[str, Any]],
              ledger_hashes: Mapping[str, str], fence: int | None) -> tuple[str, bool, Any]:
        arguments = dict(approved[step.id])
        approved_hash = digest(arguments)
        key = idempotency_key(plan.decision_id, step.id, approved_hash)
        done = self._store.execution(key)
        if done is not None and done["status"] == ExecutionStatus.SUCCEEDED.value:
            return step.id, True, done["receipt"] or {}
        # The approved version is what runs: re-check the policy and schema on exactly
        # these arguments (an approval is not a licence to exceed limits).
        candidate = step.model_copy(update={"arguments": arguments})
        checked, problems = check_step(candidate, self._tools, self._policies)
        if ledger_hashes.get(step.id) != approved_hash:
            problems = [*problems, "the arguments differ from those recorded as approved in the "
                        "ledger (changed after approval?)"]
        if problems or digest(checked.arguments) != approved_hash:
            reason = "; ".join(problems) or "arguments changed between approval and execution"
            self._fail_without_call(plan, step, key, arguments, approved_hash, reason, fence)
            return step.id, False, f"refused: {reason}"
        return self._call(plan, step, key, arguments, approved_hash, "execution", fence)

    def _fail_without_call(self, plan: Plan, step: Step, key: str, arguments: dict[str, Any],
                           arguments_hash: str, reason: str, fence: int | None) -> None:
        self._store.start_execution(key=key, decision_id=plan.decision_id,
                                    plan_version=plan.version, step_id=step.id,
                                    purpose="execution", tool=step.tool, arguments=arguments,
                                    arguments_hash=arguments_hash, plan_hash=plan.hash,
                                    actor=self._actor, fence=fence)
        self._store.finish_execution(key=key, decision_id=plan.decision_id,
                                     plan_version=plan.version, step_id=step.id,
                                     purpose="execution", status=ExecutionStatus.FAILED,
                                     plan_hash=plan.hash, actor=self._actor,
                                     error=f"refused: {reason}", fence=fence)

    def _call(self, plan: Plan, step: Step, key: str, arguments: dict[str, Any],
              arguments_hash: str, purpose: str, fence: int | None, tool: str | None = None
              ) -> tuple[str, bool, Any]:
        tool = tool or step.tool
        attempt = 0
        while True:
            attempt = self._store.start_execution(
                key=key, decision_id=plan.decision_id, plan_version=plan.version,
                step_id=step.id, purpose=purpose, tool=tool, arguments=arguments,
                arguments_hash=arguments_hash, plan_hash=plan.hash, actor=self._actor,
                fence=fence)
            crash_point("before_tool_call")
            try:
                receipt = self._tools.call(tool, arguments, idempotency_key=key)
            except ToolCallError as exc:
                retry = exc.retryable and attempt < self._policy.attempts
                if retry:
                    time.sleep(self._backoff(attempt))
                    continue
                self._store.finish_execution(
                    key=key, decision_id=plan.decision_id, plan_version=plan.version,
                    step_id=step.id, purpose=purpose, status=ExecutionStatus.FAILED,
                    plan_hash=plan.hash, actor=self._actor, fence=fence,
                    error=f"{exc.message} (attempt {attempt}"
                          + (", not retryable)" if not exc.retryable else ", retries exhausted)"))
                return step.id, False, exc.message
            except (InvalidInputError, ConflictError, NotFoundError) as exc:
                self._store.finish_execution(
                    key=key, decision_id=plan.decision_id, plan_version=plan.version,
                    step_id=step.id, purpose=purpose, status=ExecutionStatus.FAILED,
                    plan_hash=plan.hash, actor=self._actor, fence=fence, error=exc.message)
                return step.id, False, exc.message
            crash_point("after_tool_call")
            result = {**receipt.result, "_replayed": receipt.replayed}
            self._store.finish_execution(
                key=key, decision_id=plan.decision_id, plan_version=plan.version,
                step_id=step.id, purpose=purpose,
                status=(ExecutionStatus.SUCCEEDED if purpose == "execution"
                        else ExecutionStatus.COMPENSATED),
                plan_hash=plan.hash, actor=self._actor, receipt=result, fence=fence)
            return step.id, True, result

    def _backoff(self, attempt: int) -> float:
        base = min(self._policy.max_backoff_seconds,
                   self._policy.backoff_seconds * (2 ** (attempt - 1)))
        return base * (0.5 + random.random() / 2)

    # ------------------------------------------------------------------ compensation

    def _compensate(self, plan: Plan, report: ExecutionReport, fence: int | None) -> list[str]:
        order = [sid for wave in plan.topological_order() for sid in wave]
        undone = []
        for step_id in reversed(order):
            if step_id not in report.succeeded:
                continue
            step = plan.step(step_id)
            spec = self._tools.spec(step.tool).compensation
            if spec is None:
                continue
            result = report.succeeded[step_id]
            arguments = {name: result[source] for name, source in spec.arguments_from_result.items()
                         if source in result}
            arguments.update(spec.fixed_arguments)
            try:
                arguments = self._tools.validate(spec.tool, arguments)
            except InvalidInputError as exc:
                report.failed[f"{step_id}:compensation"] = exc.message
                continue
            key = short_id("comp", plan.decision_id, step_id, digest(arguments), length=32)
            _, ok, payload = self._call(plan, step, key, arguments, digest(arguments),
                                        "compensation", fence, tool=spec.tool)
            if ok:
                undone.append(step_id)
            else:
                report.failed[f"{step_id}:compensation"] = payload
        return undone
