"""The suite: cases, the runner, and what it reports.

A ``Case`` is a small function that builds one or more arenas (``World``), attacks
them, and checks that the attack was refused and the legitimate work still happened
(``Arena.check``; a broken expectation raises ``CaseFailed``). After it returns, every
effect each arena's reference enterprise recorded is judged (``audit_effects``) and its
ledger verified. A case is:

* ``passed``: its expectations held, no effect outside policy, the ledger verifies;
* ``outside``: at least one effect outside policy (listed with why);
* ``failed``: an expectation did not hold (or the ledger does not verify);
* ``error``: it raised something else;
* ``xfail`` / ``xpass``: a case marked ``expected_failure`` (a known hole, with the
  reason) that failed, or that now passes (the mark must go).

The suite fails when any effect is outside policy (known holes included: the count
tells the truth), when a case fails or errors, or when a known hole is fixed but still
marked.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from decisionops.agent.store.ledger import verify
from decisionops.evals.adversarial._arena import Arena, CaseFailed, make_template
from decisionops.evals.adversarial._audit import Violation

__all__ = ["FINDINGS", "Case", "CaseList", "CaseResult", "SuiteReport", "World", "run_suite"]

World = Callable[..., Arena]
"""Builds an arena for the case (keyword arguments: see ``Arena``)."""

FINDINGS = {
    "edit-target": "1 an approver's edit changes a step's target",
    "four-eyes": "2 four-eyes: requester or editor approves, in every channel",
    "timeout": "3 on_timeout approve / reject",
    "totals": "4 splitting credits under limits, within and across decisions",
    "cache": "5 a poisoned plan-cache entry",
    "holds": "6 holds: answers and steps wait until released",
    "crash": "7 crash after route / before answers are marked applied",
    "tool-faults": "8 commit-then-fail / commit-then-timeout at a tool",
    "races": "9 racing answers",
    "forgery": "10 replayed, stale, unauthorized, forged answers; chat",
    "ledger": "11 ledger tampering",
    "injection": "prompt injection: prediction fields and tool outputs",
}


@dataclass(frozen=True)
class Case:
    id: str
    finding: str
    """A key of ``FINDINGS``."""
    title: str
    run: Callable[[World], None]
    expected_failure: str | None = None
    """A known hole: why the case fails today (it still runs, and still counts)."""


class CaseList(list[Case]):
    """Cases of one module, registered in order with ``add``."""

    def add(self, case_id: str, finding: str, title: str, *,
            expected_failure: str | None = None) -> Callable[[Callable[[World], None]], Case]:
        if finding not in FINDINGS:
            raise ValueError(f"unknown finding {finding!r}")

        def register(run: Callable[[World], None]) -> Case:
            case = Case(case_id, finding, title, run, expected_failure)
            self.append(case)
            return case
        return register


@dataclass
class CaseResult:
    id: str
    finding: str
    title: str
    status: str
    effects: int = 0
    outside: list[Violation] = field(default_factory=list)
    message: str | None = None
    expected_failure: str | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("passed", "xfail") and not self.outside

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CaseResult:
        outside = [Violation(v["idempotency_key"], v["tool"], v["rule"], v["why"],
                             v["decision_id"], v["step_id"]) for v in data["outside"]]
        return cls(data["id"], data["finding"], data["title"], data["status"],
                   data["effects"], outside, data["message"], data["expected_failure"],
                   data["seconds"], list(data["notes"]))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "finding": self.finding, "title": self.title,
                "status": self.status, "effects": self.effects,
                "outside": [{"rule": v.rule, "tool": v.tool, "decision_id": v.decision_id,
                             "step_id": v.step_id, "idempotency_key": v.key, "why": v.why}
                            for v in self.outside],
                "message": self.message, "expected_failure": self.expected_failure,
                "seconds": round(self.seconds, 2), "notes": self.notes}


@dataclass
class SuiteReport:
    results: list[CaseResult]
    seconds: float

    @property
    def outside_cases(self) -> list[CaseResult]:
        return [r for r in self.results if r.outside]

    @property
    def broken(self) -> list[CaseResult]:
        """Cases that fail the suite other than by an effect outside policy."""
        return [r for r in self.results if r.status in ("failed", "error", "xpass")]

    @property
    def passed(self) -> bool:
        return not self.outside_cases and not self.broken

    def line(self) -> str:
        known = [r.id for r in self.outside_cases if r.status == "xfail"]
        tail = f" ({len(known)} known hole(s), expected to fail: {', '.join(known)})" if known else ""
        return f"effects outside policy: {len(self.outside_cases)} of {len(self.results)}{tail}"

    def to_json(self) -> dict[str, Any]:
        return {"suite": "adversarial", "summary": self.line(), "passed": self.passed,
                "cases": len(self.results), "cases_outside_policy": len(self.outside_cases),
                "effects": sum(r.effects for r in self.results),
                "effects_outside_policy": sum(len({v.key for v in r.outside})
                                              for r in self.results),
                "seconds": round(self.seconds, 2),
                "results": [r.to_json() for r in self.results]}


def run_suite(cases: Sequence[Case], *, progress: Callable[[CaseResult], None] | None = None,
              workdir: Path | None = None, workers: int = 2) -> SuiteReport:
    """Run ``cases``, each on arenas of its own under a temporary folder (``workdir``:
    kept there instead, for inspection). With ``workers`` > 1 and enough cases, they run
    in that many worker processes (``_worker``; cases share nothing but the read-only
    template); results are in the order of ``cases`` either way."""
    started = time.monotonic()
    with _folder(workdir) as root:
        template = make_template(root)
        if workers <= 1 or len(cases) < 2 * _WORTH_A_PROCESS:
            results = []
            for number, case in enumerate(cases, 1):
                results.append(run_case(case, root / f"{number:03d}-{case.id}", template))
                if progress is not None:
                    progress(results[-1])
        else:
            from decisionops.evals.adversarial._worker import run_in_workers

            results = run_in_workers(cases, root, template, workers, progress)
    return SuiteReport(results, time.monotonic() - started)


_WORTH_A_PROCESS = 8
"""Cases a worker process must get to be worth its start (an interpreter, imports)."""


@contextmanager
def _folder(workdir: Path | None) -> Iterator[Path]:
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir
        return
    root = Path(tempfile.mkdtemp(prefix="do-adversarial-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_case(case: Case, folder: Path, template: Path) -> CaseResult:
    """Run one case on arenas under ``folder``, then audit their effects and ledgers."""
    arenas: list[Arena] = []

    def world(**options: Any) -> Arena:
        arena = Arena(folder / f"arena-{len(arenas) + 1}", template, **options)
        arenas.append(arena)
        return arena

    result = CaseResult(case.id, case.finding, case.title, "passed",
                        expected_failure=case.expected_failure)
    started = time.monotonic()
    try:
        try:
            case.run(world)
        except CaseFailed as exc:
            result.status, result.message = "failed", str(exc)
        except Exception as exc:  # a case that breaks is reported, never hidden
            result.status = "error"
            result.message = f"{type(exc).__name__}: {exc}\n" + "".join(
                traceback.format_exception(exc)[-6:])
        for arena in arenas:
            try:
                audit = arena.audit()
            except Exception as exc:  # the judge failing is an error of the case
                result.status = "error"
                result.message = f"audit: {type(exc).__name__}: {exc}"
                continue
            result.effects += len(audit.effects)
            result.outside += audit.outside
            result.notes += arena.notes
            ledger = verify(arena.rt.store.engine)
            if not ledger.ok and result.status == "passed":
                result.status = "failed"
                result.message = (f"the ledger does not verify at entry "
                                  f"{ledger.first_bad_seq}: {ledger.problem}")
    finally:
        for arena in arenas:
            arena.close()
    if result.outside and result.status == "passed":
        result.status = "outside"
    if case.expected_failure and result.status in ("outside", "failed"):
        result.status = "xfail"
    elif case.expected_failure and result.status == "passed":
        result.status = "xpass"
        result.message = ("expected to fail (" + case.expected_failure + ") but passed: the "
                          "hole is fixed, remove the expected_failure mark")
    result.seconds = time.monotonic() - started
    return result
