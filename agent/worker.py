"""The continuous loop: one ``Worker`` per process, any number of processes.

Each tick, in this order (people first):

1. answers: decisions with answers recorded and not yet applied are carried forward
   (``DecisionEngine.advance``); answers never wait behind new work;
2. recovery: decisions a worker left mid-leg (its lease lapsed), decisions paused by a
   hold that may have been released, and any unfinished decision no worker holds;
3. triage of new predictions (one worker at a time, cluster-wide);
4. new work: one batch of actionable predictions is claimed (``SKIP LOCKED``) and
   started;
5. housekeeping passes (SLA sweep, sources, retention, ledger archival).

Work is claimed with leases and fencing tokens, so several workers, on one machine or
many, never act on one decision at once. An answer recorded in this process (the API
under ``serve``) wakes the loop at once (``wake``).

SIGTERM/SIGINT stop the loop between decisions: the decision in hand finishes (or is
left for another worker once its lease lapses); nothing is abandoned half-recorded.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING

import psycopg
import psycopg_pool
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

from agent.errors import ConflictError, DecisionOpsError, LeaseHeld, LeaseLost, NotFoundError
from agent.models import DecisionStatus

if TYPE_CHECKING:
    from agent.runtime import Runtime
    from graphs import StepResult

__all__ = ["Housekeeping", "TickReport", "Worker", "wait_for"]

Housekeeping = Callable[["Runtime"], dict[str, int]]
"""A pass run every tick; returns counts for the tick report."""

_OUTAGES = (OperationalError, InterfaceError, DisconnectionError, psycopg.OperationalError,
            psycopg_pool.PoolTimeout)
_UNFINISHED = (DecisionStatus.PLANNING, DecisionStatus.EXECUTING, DecisionStatus.HELD)


@dataclass
class TickReport:
    recovered: int = 0
    triaged: int = 0
    started: int = 0
    resumed: int = 0
    busy: int = 0
    """Decisions another worker held (skipped, not errors)."""
    errors: list[str] = field(default_factory=list)
    housekeeping: dict[str, int] = field(default_factory=dict)
    triage: dict[str, int] = field(default_factory=dict)
    """Verdicts of this tick by action: act, drop, hold."""
    results: dict[str, list[StepResult]] = field(default_factory=dict)
    """Where each decision touched this tick now stands, by what was done to it."""

    def summary(self) -> dict[str, object]:
        """A JSON-ready account of the tick."""
        return {"triaged": self.triaged, **{a: self.triage.get(a, 0)
                                            for a in ("act", "drop", "hold")},
                **{kind: [vars(r) for r in self.results.get(kind, [])]
                   for kind in ("recovered", "started", "resumed")},
                "busy": self.busy, "housekeeping": self.housekeeping, "errors": self.errors}

    @property
    def did_work(self) -> bool:
        return bool(self.recovered or self.triaged or self.started or self.resumed
                    or any(self.housekeeping.values()))


class Worker:
    def __init__(self, runtime: Runtime, *, batch: int = 50, poll_seconds: float = 1.0,
                 housekeeping: list[Housekeeping] | None = None) -> None:
        self.rt = runtime
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.housekeeping = housekeeping or []
        self.stopping = threading.Event()
        self._woken = threading.Event()
        # Answers recorded in this process (the API under serve) wake this loop.
        runtime.approvals.on_answer = lambda _decision_id: self.wake()

    # ------------------------------------------------------------------ loop

    def wake(self) -> None:
        self._woken.set()

    def stop(self) -> None:
        self.stopping.set()
        self._woken.set()

    def install_signal_handlers(self) -> None:
        def _stop(signum: int, _frame: FrameType | None) -> None:
            self.stop()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)

    def run(self, *, on_tick: Callable[[TickReport], None] | None = None,
            max_ticks: int | None = None) -> None:
        """Tick until stopped. A database outage (restart, failover, network) does not end
        the loop: the tick is abandoned, the worker backs off (up to 10 s) and reconnects;
        work it held is carried on by whoever holds the lease next."""
        ticks = 0
        outage = 0
        while not self.stopping.is_set():
            try:
                report = self.tick()
                outage = 0
            except _OUTAGES as exc:
                outage += 1
                report = TickReport(errors=[f"database unavailable ({type(exc).__name__}); "
                                            f"retrying, attempt {outage}"])
            ticks += 1
            if on_tick is not None:
                on_tick(report)
            if max_ticks is not None and ticks >= max_ticks:
                return
            if outage:
                self.stopping.wait(min(10.0, 0.2 * 2 ** outage))
            elif not report.did_work:
                self._woken.wait(self.poll_seconds)
                self._woken.clear()

    def tick(self) -> TickReport:
        report = TickReport()
        store = self.rt.store
        holds = store.holds.active()
        for decision_id in store.approvals.decisions_with_answers(self.batch, skip=holds):
            if self.stopping.is_set():
                return report
            self._advance(report, "resumed", decision_id)
        todo = dict.fromkeys(store.decisions.stalled(self.batch, skip=holds)
                             + store.decisions.unleased(_UNFINISHED, self.batch, skip=holds)
                             + store.decisions.waiting_on_nothing(self.batch, skip=holds))
        for decision_id in todo:
            if self.stopping.is_set():
                return report
            before = report.recovered
            self._advance(report, "recovered", decision_id)
            if report.recovered > before:
                self.rt.metrics.lease_steals.inc()
        with store.exclusive("triage") as mine:
            if mine:
                verdicts = self.rt.triage_pending(limit=self.batch * 1000).verdicts
                report.triaged = len(verdicts)
                for verdict in verdicts:
                    report.triage[verdict.action.value] = report.triage.get(
                        verdict.action.value, 0) + 1
        claims = store.decisions.claim_new(owner=self.rt.engine.owner,
                                           lease_seconds=self.rt.settings.lease_seconds,
                                           limit=self.batch)
        for claim in claims:
            if self.stopping.is_set():
                break  # claimed but not started: its lease lapses and a worker recovers it
            self._attempt(report, "started", lambda c=claim: self.rt.engine.start(c))
        for task in self.housekeeping:
            if self.stopping.is_set():
                break
            try:
                counts = task(self.rt)
            except DecisionOpsError as exc:  # bad configuration or data: said, not fatal
                report.errors.append(f"housekeeping {getattr(task, '__name__', task)}: "
                                     f"{exc.message}")
                continue
            for key, count in counts.items():
                report.housekeeping[key] = report.housekeeping.get(key, 0) + count
        return report

    def apply(self, decision_id: str) -> StepResult | None:
        """Carry one decision forward now (answers recorded from this process); None
        when another worker holds it and will."""
        try:
            return self.rt.engine.advance(decision_id)
        except LeaseHeld:
            return None

    def _advance(self, report: TickReport, counter: str, decision_id: str) -> None:
        self._attempt(report, counter, lambda: self.rt.engine.advance(decision_id))

    @staticmethod
    def _attempt(report: TickReport, counter: str, action: Callable[[], StepResult]) -> None:
        try:
            result = action()
        except LeaseHeld:
            report.busy += 1  # another worker has it
            return
        except LeaseLost as exc:
            report.busy += 1
            report.errors.append(exc.message)
            return
        except (ConflictError, NotFoundError) as exc:
            report.errors.append(exc.message)
            return
        if not result.legs:
            return  # nothing could be done yet (waiting on people or a hold)
        setattr(report, counter, getattr(report, counter) + 1)
        report.results.setdefault(counter, []).append(result)


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes (used by tests and tools)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
