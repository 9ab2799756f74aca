"""The continuous loop: one ``Worker`` per process, any number of processes.

Each tick, in this order (people first):

1. answers: decisions with answers recorded and not yet applied are carried forward
   (``DecisionEngine.advance``); answers never wait behind new work;
2. recovery: decisions a worker left mid-leg (its lease lapsed), decisions paused by a
   hold that may have been released, and any unfinished decision no worker holds;
3. triage of new predictions (one worker at a time, cluster-wide);
4. new work: actionable predictions are claimed (``SKIP LOCKED``) and started;
5. housekeeping passes (SLA sweep, sources, retention, ledger archival).

Planning lanes. A planner that waits on a model (``llm``, ``hybrid``) plans up to
``planner_concurrency`` decisions at once (``agent.lanes``), in a thread pool twice that
size: a leg's lane is free once its draft is in, and the rest of the leg (checks,
routing: CPU that waits for the interpreter while other legs hold it) runs beside the
next decision's model call instead of keeping its lane idle. (A revise answer applied in
the loop's own thread drafts there, outside the lanes.) New work and recovery are
handed to the pool and the tick goes on, so answers are applied while models think; a
worker claims only as many decisions as it has free lanes, and a leg's lease is renewed
while it runs (the engine's heartbeat), so no decision waits in a queue with its lease
running out and none is planned twice. The playbook planner computes in-process: it
plans one decision at a time in the loop's own thread, and answers recorded meanwhile
are applied between two decisions, not after the batch.

Work is claimed with leases and fencing tokens, so several workers, on one machine or
many, never act on one decision at once; within a worker, a decision one of its threads
is running is not taken up by another. An answer recorded in this process (the API
under ``serve``), or by any process on PostgreSQL (``LISTEN``/``NOTIFY``), wakes the
loop at once (``answered``).

SIGTERM/SIGINT stop the loop between decisions: the decisions in hand finish (or are
left for another worker once their lease lapses); nothing is abandoned half-recorded.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING

import psycopg
import psycopg_pool
from sqlalchemy.exc import DisconnectionError, IntegrityError, InterfaceError, OperationalError

from decisionops.agent.errors import (
    ConflictError,
    DecisionOpsError,
    LeaseHeld,
    LeaseLost,
    NotFoundError,
    ShuttingDown,
)
from decisionops.agent.lanes import Lane, in_lane
from decisionops.agent.models import DecisionStatus

if TYPE_CHECKING:
    from decisionops.agent.runtime import Runtime
    from decisionops.agent.store import ActiveHolds
    from decisionops.agent.store._notify import Listener
    from decisionops.graphs import StepResult

__all__ = ["Housekeeping", "TickReport", "Worker", "wait_for"]

Housekeeping = Callable[["Runtime"], dict[str, int]]
"""A pass run every tick; returns counts for the tick report."""

_OUTAGES = (OperationalError, InterfaceError, DisconnectionError, psycopg.OperationalError,
            psycopg_pool.PoolTimeout)
_UNFINISHED = (DecisionStatus.PLANNING, DecisionStatus.EXECUTING, DecisionStatus.HELD,
               DecisionStatus.WAITING)
_ANSWER_POLL_SECONDS = 0.25
"""While the loop's thread starts decisions one by one, how often it looks for answers
recorded by other processes (this process's own, and NOTIFY, wake it at once)."""
_THREADS_PER_LANE = 2
"""Legs a worker's pool runs per planning lane: the ones past their draft (checks,
routing) run beside the ones planning."""


@dataclass
class TickReport:
    recovered: int = 0
    triaged: int = 0
    started: int = 0
    resumed: int = 0
    busy: int = 0
    """Decisions another worker held (skipped, not errors)."""
    planning: int = 0
    """Decisions in this worker's pool when the tick ended (planning, or past their
    draft: checking and routing it)."""
    errors: list[str] = field(default_factory=list)
    handed_over: list[str] = field(default_factory=list)
    """Legs another worker took over midway (this worker's lease lapsed, or it got
    there first): nothing failed, the other worker carries the decision on; not errors,
    but a lease too short for the work shows here."""
    housekeeping: dict[str, int] = field(default_factory=dict)
    triage: dict[str, int] = field(default_factory=dict)
    """Verdicts of this tick by action: act, drop, hold, needs_human."""
    results: dict[str, list[StepResult]] = field(default_factory=dict)
    """Where each decision touched this tick now stands, by what was done to it."""

    def summary(self) -> dict[str, object]:
        """A JSON-ready account of the tick."""
        return {"triaged": self.triaged, **{a: self.triage.get(a, 0)
                                            for a in ("act", "drop", "hold", "needs_human")},
                **{kind: [vars(r) for r in self.results.get(kind, [])]
                   for kind in ("recovered", "started", "resumed")},
                "planning": self.planning, "busy": self.busy,
                "housekeeping": self.housekeeping, "handed_over": self.handed_over,
                "errors": self.errors}

    @property
    def did_work(self) -> bool:
        return bool(self.recovered or self.triaged or self.started or self.resumed
                    or any(self.housekeeping.values()))


class Worker:
    def __init__(self, runtime: Runtime, *, batch: int = 50, poll_seconds: float = 1.0,
                 housekeeping: list[Housekeeping] | None = None,
                 concurrency: int | None = None) -> None:
        self.rt = runtime
        runtime.engine  # noqa: B018  (the loop runs decisions: a bad checkpoint store fails here, at its start)
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.housekeeping = housekeeping or []
        self.concurrency = max(1, runtime.planning_slots if concurrency is None else concurrency)
        """Decisions planned at once, its lanes (1: in the loop's thread, between answers)."""
        self.stopping = threading.Event()
        self._woken = threading.Event()
        self._answered = threading.Event()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._legs: dict[str, tuple[str, Future[StepResult], Lane]] = {}
        """Decisions this worker's pool is running: id → (tick counter, its leg, its lane)."""
        self._last_answer_check = 0.0
        self._last_periodic = float("-inf")
        # Answers recorded in this process (the API under serve) wake this loop; so do,
        # while it runs, other processes' answers, hold releases and new predictions on
        # PostgreSQL (NOTIFY).
        runtime.approvals.on_answer = lambda _decision_id: self.answered()
        self._listener: Listener | None = None

    # ------------------------------------------------------------------ loop

    def wake(self) -> None:
        self._woken.set()

    def answered(self) -> None:
        """An answer was recorded, a hold released or new work stored: apply answers now
        (between two decisions if need be), and look at paused decisions again."""
        self._answered.set()
        self._last_periodic = float("-inf")
        self._woken.set()

    def stop(self) -> None:
        self.stopping.set()
        self.rt.planner.stop()  # the legs in hand start no new model call
        self._woken.set()

    def close(self) -> None:
        """Let the legs in hand finish and stop the pool (the runtime stays open)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        self.rt.planner.warm()  # start-up work, not the first decision's
        if self._listener is None:
            self._listener = self.rt.store.listen(self.answered)
        done = False
        try:
            while not self.stopping.is_set():
                self._woken.clear()  # a wake-up during the tick makes the next one start at once
                try:
                    report = self.tick(wait=False)
                    outage = 0
                except _OUTAGES as exc:
                    outage += 1
                    report = TickReport(errors=[f"database unavailable ({type(exc).__name__}); "
                                                f"retrying, attempt {outage}"])
                ticks += 1
                if on_tick is not None:
                    on_tick(report)
                if max_ticks is not None and ticks >= max_ticks:
                    done = True
                    return
                if outage:
                    self.stopping.wait(min(10.0, 0.2 * 2 ** outage))
                elif not report.did_work:
                    self._woken.wait(self.poll_seconds)
        finally:
            if self.stopping.is_set() or done:  # not after an error: serve runs it again
                self.close()

    def tick(self, *, wait: bool = True) -> TickReport:
        """One pass of the loop. ``wait``: return once the legs this worker has in its
        pool are done (``run`` does not wait: they finish during later ticks)."""
        report = TickReport()
        self.rt.refresh_policies()  # route, check and execute by the file as it is now
        self._collect(report)
        store = self.rt.store
        holds = store.holds.active()
        self._answers(report, holds)
        # Recovery and housekeeping look at what changes slowly (lapsed leases, released
        # holds, deadlines): every tick of ``tick()``, at most every poll in ``run``,
        # where a leg finishing wakes the loop many times a second to fill its slot.
        periodic = wait or time.monotonic() - self._last_periodic >= self.poll_seconds
        if periodic:
            self._last_periodic = time.monotonic()
            todo = dict.fromkeys(store.decisions.stalled(self.batch, skip=holds)
                                 + store.decisions.unleased(_UNFINISHED, self.batch, skip=holds)
                                 + store.decisions.waiting_on_nothing(self.batch, skip=holds))
            for decision_id in todo:
                if self.stopping.is_set() or not self._free():
                    break
                self._start_leg(report, "recovered", decision_id,
                                lambda d=decision_id: self.rt.engine.advance(d))
        if not self.stopping.is_set():
            with store.exclusive("triage") as mine:
                if mine:
                    verdicts = self.rt.triage_pending(limit=self.batch * 1000).verdicts
                    report.triaged = len(verdicts)
                    for verdict in verdicts:
                        report.triage[verdict.action.value] = report.triage.get(
                            verdict.action.value, 0) + 1
        free = self._free()
        claims = [] if self.stopping.is_set() or not free else store.decisions.claim_new(
            owner=self.rt.engine.owner, lease_seconds=self.rt.settings.lease_seconds,
            limit=min(self.batch, free))
        for n, claim in enumerate(claims):
            if self.stopping.is_set():
                # Claimed, not started: give the leases back, so the next worker starts
                # them now rather than once they lapse (found in a trial: SIGTERM left
                # them leased to a process that had exited).
                for unstarted in claims[n:]:
                    store.decisions.release(unstarted.decision_id, unstarted.fence)
                break
            self._start_leg(report, "started", claim.decision_id,
                            lambda c=claim: self.rt.engine.start(c), inline_answers=holds)
        if periodic:
            self._housekeep(report)
        if wait:
            with self._lock:
                legs = [leg for _, leg, _ in self._legs.values()]
            wait_all(legs)
        self._collect(report)
        report.planning = len(self._legs)
        return report

    def apply(self, decision_id: str) -> StepResult | None:
        """Carry one decision forward now (answers recorded from this process); None
        when another worker holds it and will."""
        try:
            return self.rt.engine.advance(decision_id)
        except LeaseHeld:
            return None

    # ------------------------------------------------------------------ lanes

    def _answers(self, report: TickReport, holds: ActiveHolds) -> None:
        self._answered.clear()
        self._last_answer_check = time.monotonic()
        for decision_id in self.rt.store.approvals.decisions_with_answers(self.batch, skip=holds):
            if self.stopping.is_set():
                return
            if self._in_hand(decision_id):
                continue  # one of this worker's legs has it; the next tick applies them
            self._attempt(report, "resumed", lambda d=decision_id: self.rt.engine.advance(d))

    def _free(self) -> int:
        """Decisions this worker may take up now: its free lanes, within its pool's
        threads (in the loop's own thread, a batch: they run one after the other)."""
        if self.concurrency == 1:
            return self.batch
        with self._lock:
            planning = sum(lane.planning for _, _, lane in self._legs.values())
            return max(0, min(self.concurrency - planning,
                              _THREADS_PER_LANE * self.concurrency - len(self._legs)))

    def _in_hand(self, decision_id: str) -> bool:
        """Whether the pool runs it (the engine refuses a second thread on a decision;
        this only spares the attempt)."""
        with self._lock:
            return decision_id in self._legs

    def _start_leg(self, report: TickReport, counter: str, decision_id: str,
                   action: Callable[[], StepResult], *,
                   inline_answers: ActiveHolds | None = None) -> None:
        """Run a leg that may plan: in the pool when there is one, else here (applying
        answers first when one was recorded meanwhile)."""
        if self.stopping.is_set() or self._in_hand(decision_id):
            return
        if self.concurrency == 1:
            if inline_answers is not None and (
                    self._answered.is_set()
                    or time.monotonic() - self._last_answer_check >= _ANSWER_POLL_SECONDS):
                self._answers(report, inline_answers)
            self._attempt(report, counter, action)
            return
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(_THREADS_PER_LANE * self.concurrency,
                                                thread_name_prefix=f"plan {self.rt.engine.owner}")
            lane = Lane(on_free=self._woken.set)  # a lane is free: claim the next one
            leg = self._pool.submit(in_lane, lane, action)
            self._legs[decision_id] = (counter, leg, lane)
        leg.add_done_callback(lambda _leg: self._woken.set())

    def _collect(self, report: TickReport) -> None:
        """Account for the legs of the pool that have finished."""
        with self._lock:
            done = {d: leg for d, leg in self._legs.items() if leg[1].done()}
            for decision_id in done:
                del self._legs[decision_id]
        outage: BaseException | None = None
        for counter, leg, _ in done.values():
            try:
                self._attempt(report, counter, leg.result)
            except _OUTAGES as exc:  # the others are still accounted for
                outage = outage or exc
        if outage is not None:
            raise outage

    def _housekeep(self, report: TickReport) -> None:
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

    def _attempt(self, report: TickReport, counter: str, action: Callable[[], StepResult]
                 ) -> None:
        try:
            result = action()
        except LeaseHeld:
            report.busy += 1  # another worker has it
            return
        except LeaseLost as exc:
            report.busy += 1
            report.handed_over.append(exc.message)
            return
        except IntegrityError as exc:  # a row another worker wrote first: it has this one
            report.busy += 1
            report.handed_over.append(f"another worker got there first: {_first_line(exc)}")
            return
        except (ConflictError, NotFoundError) as exc:
            report.errors.append(exc.message)
            return
        except ShuttingDown:
            return  # the worker is stopping: the engine gave the decision back
        except _OUTAGES:
            raise  # the loop backs off and reconnects
        except Exception as exc:  # one decision's failed leg is not the worker's end
            # The engine noted it on the decision and kept the lease: the decision is
            # carried on once the lease lapses.
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            report.errors.append(f"a leg failed: {message}"[:2000])
            return
        if not result.legs:
            return  # nothing could be done yet (waiting on people or a hold)
        if counter == "recovered":
            self.rt.metrics.lease_steals.inc()
        setattr(report, counter, getattr(report, counter) + 1)
        report.results.setdefault(counter, []).append(result)


def _first_line(exc: BaseException) -> str:
    return str(getattr(exc, "orig", exc)).strip().splitlines()[0][:300]


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes (used by tests and tools)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()

