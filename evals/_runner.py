"""The eval runner: triages every case, drafts a plan for those triage acts on with
every planner, and grades both.

Triage is the loop's own (``Runtime.verdicts``, after the dataset's ``kind_aliases``,
with its ``value_at_stake_defaults``; no holdout): a case it does not act on is graded
on its verdict alone, and no planner is asked, as in the loop.

LLM planners run against the configured endpoint when there is one (``live``), and
otherwise against the scripted server playing the dataset's recorded responses per
case (``scripted``); a case whose script is not consumed exactly is reported as an
error.

A plan then goes the decision graph's way up to the point where a person would be
asked, through the graph's own functions: the guard (``agent.guard.check_plan``), the
target check against the runtime's reference enterprise (``agent.targets.check_targets``)
and routing (``ApprovalService.route``, on the runtime's fresh store). Where the case
ends (``end``: routed, needs_human, drop, hold) and the routing per function (auto or
ask) are graded against the case's ``expect_outcome`` and ``expect_routing``. Not run:
conflicts (each case is alone: there are no other open decisions to conflict with).
Each planner gets its own runtime on temporary files (store, reference
enterprise) with the plan cache off, so every case is judged on its own.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from decisionops.agent.errors import DecisionOpsError, PlanRejected
from decisionops.agent.guard import check_plan
from decisionops.agent.models import Plan, Prediction, TriageAction, TriageVerdict
from decisionops.agent.planner import PlanRequest
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from decisionops.agent.sources import apply_kind_aliases
from decisionops.agent.targets import check_targets
from decisionops.evals._dataset import Case, Dataset
from decisionops.evals._graders import (
    POLICY,
    QUALITY,
    Grade,
    grade,
    grade_outcome,
    grade_routing,
    grade_triage,
)
from decisionops.evals.scripted import ScriptedServer

__all__ = ["PLANNERS", "CaseResult", "EvalReport", "PlannerScore", "run_eval"]

PLANNERS = ("playbook", "llm", "hybrid")


@dataclass
class CaseResult:
    planner: str
    case: str
    kind: str
    tags: list[str]
    outcome: str
    grades: list[Grade]
    llm_calls: int = 0
    tokens: int = 0
    cost: float = 0.0
    fallback: str | None = None
    error: str | None = None
    steps: list[str] = field(default_factory=list)
    end: str = ""
    """Where the case ended: routed, needs_human, drop or hold."""
    reason: str = ""
    """Why it ended there (triage's reason and detail, the guard's or target check's
    problems, or the routing)."""
    routing: dict[str, str] | None = None
    """Per function: auto (policy approves) or ask (its approvers are asked)."""

    @property
    def passed(self) -> bool:
        return self.error is None and all(g.passed is not False for g in self.grades)


@dataclass
class PlannerScore:
    planner: str
    cases: int = 0
    passed_cases: int = 0
    graders: dict[str, list[int]] = field(default_factory=dict)
    """grader → [passed, applicable]."""
    llm_calls: int = 0
    tokens: int = 0
    cost: float = 0.0
    fallbacks: int = 0
    errors: int = 0

    def family(self, names: Sequence[str]) -> float | None:
        passed = sum(self.graders.get(n, [0, 0])[0] for n in names)
        applicable = sum(self.graders.get(n, [0, 0])[1] for n in names)
        return round(passed / applicable, 4) if applicable else None

    @property
    def policy(self) -> float | None:
        return self.family(POLICY)

    @property
    def quality(self) -> float | None:
        return self.family(QUALITY)


@dataclass
class EvalReport:
    dataset: str
    mode: str
    planners: list[PlannerScore]
    results: list[CaseResult]
    seconds: float
    kinds: list[str]

    def score(self, planner: str) -> PlannerScore:
        return next(p for p in self.planners if p.planner == planner)

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset, "mode": self.mode, "seconds": round(self.seconds, 2),
            "kinds": self.kinds,
            "planners": [{"planner": p.planner, "cases": p.cases, "passed_cases": p.passed_cases,
                          "policy": p.policy, "quality": p.quality,
                          "graders": {k: {"passed": v[0], "applicable": v[1]}
                                      for k, v in sorted(p.graders.items())},
                          "llm_calls": p.llm_calls, "tokens": p.tokens, "cost": round(p.cost, 6),
                          "fallbacks": p.fallbacks, "errors": p.errors} for p in self.planners],
            "results": [{"planner": r.planner, "case": r.case, "kind": r.kind, "tags": r.tags,
                         "outcome": r.outcome, "end": r.end, "reason": r.reason,
                         "routing": r.routing, "passed": r.passed, "steps": r.steps,
                         "llm_calls": r.llm_calls, "tokens": r.tokens, "cost": r.cost,
                         "fallback": r.fallback, "error": r.error,
                         "grades": [{"grader": g.grader, "family": g.family, "passed": g.passed,
                                     "detail": g.detail} for g in r.grades]}
                        for r in self.results]}


def _settings(base: Settings, planner: str, home: Path, url: str | None,
              dataset: Dataset) -> Settings:
    values: dict[str, Any] = {
        "home": home, "database_url": None, "checkpoint_url": None, "enterprise_url": None,
        "playbooks_dir": base.playbooks_dir, "functions_file": base.functions_file,
        "planner": planner, "plan_cache_ttl_hours": 0.0, "environment": "development",
        "holdout_share": 0.0, "kind_aliases": dataset.kind_aliases,
        "value_at_stake_defaults": dataset.value_at_stake_defaults}
    if url is not None:  # scripted: a local server, no key, no waiting
        values.update(llm_base_url=url, llm_model="scripted", llm_api_key=None,
                      llm_mode="tools", llm_backoff_seconds=0.0, llm_daily_spend_cap=None,
                      llm_timeout_seconds=10.0)
    else:
        values.update({k: getattr(base, k) for k in type(base).model_fields
                       if k.startswith(("llm_", "hybrid_"))})
    return Settings(**values)


def run_eval(dataset: Dataset, planners: Sequence[str], *, settings: Settings | None = None,
             live: bool | None = None, progress: Callable[[int], None] | None = None
             ) -> EvalReport:
    """Score ``planners`` on ``dataset``; ``live`` defaults to whether an endpoint is set."""
    base = settings or Settings()
    live = bool(base.llm_base_url) if live is None else live
    started = time.monotonic()
    scores: list[PlannerScore] = []
    results: list[CaseResult] = []
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="do-eval-")))
        server = None if live else stack.enter_context(ScriptedServer())
        for name in planners:
            scripts = (dataset.scripts(name) if name != "playbook" and server is not None
                       else {})
            url = server.url if server is not None else None
            with Runtime(_settings(base, name, workdir / name, url, dataset),
                         actor="eval") as rt:
                score = PlannerScore(name)
                for case in dataset.cases:
                    result = _run_case(rt, case, name, server if name != "playbook" else None,
                                       scripts)
                    _tally(score, result)
                    results.append(result)
                    if progress:
                        progress(1)
                scores.append(score)
    return EvalReport(dataset=dataset.name, mode="live" if live else "scripted", planners=scores,
                      results=results, seconds=time.monotonic() - started,
                      kinds=dataset.kinds())


def _baseline(rt: Runtime, request: PlanRequest) -> Plan | None:
    playbook = rt.playbooks.for_prediction(request.prediction)
    if playbook is None:
        return None
    try:
        return playbook.draft(request.prediction, decision_id=request.decision_id,
                              version=request.version)
    except DecisionOpsError:
        return None


def _triaged(rt: Runtime, case: Case) -> tuple[Prediction, Grade, TriageVerdict]:
    """The case as the loop would take it in and triage it; the prediction a decision
    would plan with (a defaulted value at stake included)."""
    (prediction,) = apply_kind_aliases([case.prediction], rt.settings.kind_aliases)
    (verdict,) = rt.verdicts([prediction])
    if verdict.value_at_stake is not None:
        prediction = prediction.model_copy(update={"value_at_stake": verdict.value_at_stake})
    return (prediction, grade_triage(case, verdict.action.value, verdict.reason, verdict.detail),
            verdict)


def _onward(rt: Runtime, plan: Plan | None) -> tuple[str, str, dict[str, str] | None]:
    """Where a drafted plan ends before anyone is asked, as the graph's guard, check and
    route nodes decide it: (end, reason, routing per function)."""
    if plan is None:
        return "needs_human", "no plan proposed", None
    try:
        checked = check_plan(plan, rt.tools, rt.policies)
    except PlanRejected as exc:
        return "needs_human", "guard: " + "; ".join(exc.problems), None
    found = check_targets(checked, rt.tools)
    if found.unknown:
        return "needs_human", "check: " + found.reason, None
    routing = rt.approvals.route(checked, stored=False)
    how = {r.function: "auto" for r in routing.auto}
    how.update({r.function: "ask" for r, _ in routing.ask})
    reasons = "; ".join(f"{r.function}: {r.reason}" for r, _ in routing.ask)
    return "routed", reasons or "within auto-approve policy", how


def _run_case(rt: Runtime, case: Case, planner: str, server: ScriptedServer | None,
              scripts: dict[str, list[dict[str, Any]]]) -> CaseResult:
    prediction, triaged, verdict = _triaged(rt, case)
    if verdict.action != TriageAction.ACT:
        reason = f"triage: {verdict.reason}: {verdict.detail}"
        return CaseResult(planner=planner, case=case.id, kind=prediction.kind,
                          tags=list(case.tags), outcome=f"triage:{verdict.action.value}",
                          grades=[triaged, grade_outcome(case, verdict.action.value, reason),
                                  grade_routing(case, None)],
                          end=verdict.action.value, reason=reason)
    request = PlanRequest(decision_id=f"eval-{case.id}", prediction=prediction,
                          playbook=None, version=2 if case.feedback else 1,
                          feedback=case.feedback)
    baseline = _baseline(rt, request)
    error = None
    if server is not None:
        server.reset()
        if case.id not in scripts:
            error = "no scripted responses for this case"
        server.play(*scripts.get(case.id, []))
    try:
        draft = rt.planner.draft(request)
        plan, record = draft.plan, draft.record
    except DecisionOpsError as exc:
        plan, record, error = None, None, f"{type(exc).__name__}: {exc.message}"
    if server is not None and error is None:
        problems = server.problems()
        if problems:
            error = "script mismatch: " + "; ".join(problems)
    end, reason, routing = _onward(rt, plan)
    grades = [triaged, *grade(case, plan, tools=rt.tools, policies=rt.policies,
                              baseline=baseline),
              grade_outcome(case, end, reason), grade_routing(case, routing)]
    return CaseResult(
        planner=planner, case=case.id, kind=prediction.kind, tags=list(case.tags),
        outcome="plan" if plan is not None else "needs_human", grades=grades,
        llm_calls=record.llm_calls if record else 0,
        tokens=(record.tokens_in + record.tokens_out) if record else 0,
        cost=record.cost if record else 0.0, fallback=record.fallback if record else None,
        error=error, steps=[f"{s.function}:{s.tool}" for s in plan.steps] if plan else [],
        end=end, reason=reason, routing=routing)


def _tally(score: PlannerScore, result: CaseResult) -> None:
    score.cases += 1
    score.passed_cases += result.passed
    score.llm_calls += result.llm_calls
    score.tokens += result.tokens
    score.cost += result.cost
    score.fallbacks += result.fallback is not None
    score.errors += result.error is not None
    for g in result.grades:
        counts = score.graders.setdefault(g.grader, [0, 0])
        if g.passed is not None:
            counts[1] += 1
            counts[0] += bool(g.passed)
