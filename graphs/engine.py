"""``DecisionEngine``: runs the decision graph, one leg at a time, under the decision's
lease.

The store is the one source of a decision's state (its status, its approval requests
and their answers, its executions); the LangGraph checkpoint only lets the graph carry
on. Two entry points:

* ``start(claim)``: the first leg of a decision this worker created and leased.
* ``advance(decision_id)``: bring the graph in line with the store, as far as it can go
  now: feed it the answers recorded for its pending approval interrupts (once every one
  of them has its answer: join waits for them all), resume
  execution an operator hold paused once no hold covers it, or carry on a leg a worker
  left unfinished (it crashed, failed or lost its lease). Legs repeat until the decision
  waits on people or finishes.

Answers are matched to interrupts by approval id (each interrupt carries its request),
never by position. An answer whose interrupt is gone was consumed (or belongs to a
superseded plan version) and is marked applied; one for a plan version the checkpoint
has not reached yet waits for the leg that reaches it. Answers are marked applied after
the leg that consumed them is checkpointed; a crash in between only means they are
recognised as consumed next time.

LangGraph silently accepts several misuses (see the crib sheet): resuming a finished
thread, a resume keyed by an unknown interrupt id, new input on a thread with a pending
interrupt. The engine never does any of them: it resumes only ids it read as pending,
and starts only threads that have no checkpoint.

A leg that ends normally (waiting on people, paused by a hold, or finished: the record
node releases it with the terminal status) gives the lease back, and so does one the
worker's stop cut short (``ShuttingDown``). A leg that fails keeps it until it lapses, so
the loop carries the decision on later (``stalled``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Literal

from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command
from sqlalchemy.exc import SQLAlchemyError

from decisionops.agent.approvals import ApprovalService, resolve
from decisionops.agent.checkpoints import FencedCheckpointer
from decisionops.agent.errors import (
    ConflictError,
    DecisionOpsError,
    LeaseHeld,
    LeaseLost,
    ShuttingDown,
)
from decisionops.agent.faults import crash_point
from decisionops.agent.models import SCHEMA_VERSION, ApprovalStatus, DecisionStatus
from decisionops.agent.store import Claim, DecisionRow, Store
from decisionops.agent.telemetry import Metrics, carrier, span
from decisionops.graphs.context import DecisionContext

_log = logging.getLogger(__name__)

__all__ = ["DecisionEngine", "StepResult"]

_MAX_LEGS = 8
"""Legs one ``advance`` runs at most (answers recorded while a leg ran feed the next)."""
_CONTINUE = object()
"""Carry on from the checkpoint (a leg that stopped mid-way)."""


@dataclass
class StepResult:
    decision_id: str
    status: str
    pending_approvals: list[str] = field(default_factory=list)
    legs: int = 1
    """Legs of the graph run (0: nothing could be done yet)."""


@dataclass
class _Next:
    payload: Any
    applied: list[str] = field(default_factory=list)
    """Answers this leg feeds the graph: marked applied once it is checkpointed."""
    parent: dict[str, str] | None = None


def _waits_on_people(out: dict[str, Any]) -> bool:
    """The leg stopped at approval interrupts only (none of them a hold's)."""
    interrupts = out.get("__interrupt__") or ()
    return bool(interrupts) and all(
        isinstance(i.value, dict) and "approval_id" in i.value for i in interrupts)


class _Heartbeat:
    """Renews the leases of the decisions a leg of this engine is running, every third
    of the lease, under the fence each was taken with: a leg that outlasts the lease (a
    slow tool, a slow model) keeps its decision. A process that stops (it crashed, or
    was paused) stops renewing, and its leases lapse as before; so does a leg that has
    run for ``_MAX_LEASES`` leases (it hangs: another worker carries the decision on,
    and fencing shuts this one out)."""

    _MAX_LEASES = 10

    def __init__(self, store: Store, owner: str, lease_seconds: float) -> None:
        self._store, self._owner, self._lease_seconds = store, owner, lease_seconds
        self._active: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, decision_id: str, fence: int) -> None:
        with self._lock:
            self._active[decision_id] = (fence, time.monotonic())
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name=f"lease-heartbeat {self._owner}")
                self._thread.start()

    def drop(self, decision_id: str) -> None:
        with self._lock:
            self._active.pop(decision_id, None)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)  # a renewal under way ends before the store closes

    def _run(self) -> None:
        while not self._stop.wait(self._lease_seconds / 3):
            cutoff = time.monotonic() - self._MAX_LEASES * self._lease_seconds
            with self._lock:
                leases = {d: fence for d, (fence, since) in self._active.items()
                          if since > cutoff}
            try:
                self._store.decisions.renew(leases, self._owner, self._lease_seconds)
            except SQLAlchemyError as exc:  # the store is away: the leases may lapse
                _log.warning("could not renew %d lease(s): %s", len(leases), exc)


class DecisionEngine:
    def __init__(self, graph: CompiledStateGraph, *, store: Store, approvals: ApprovalService,
                 context: Callable[[int], DecisionContext], owner: str,
                 lease_seconds: float = 120,
                 durability: Literal["exit", "async", "sync"] = "exit",
                 fencing: FencedCheckpointer | None = None,
                 metrics: Metrics | None = None, max_leg_failures: int = 5) -> None:
        self.graph = graph
        self._store = store
        self._approvals = approvals
        self._context = context
        self.owner = owner
        self._lease_seconds = lease_seconds
        self._durability = durability
        self._fencing = fencing
        self._metrics = metrics
        self._max_leg_failures = max_leg_failures
        self._heartbeat = _Heartbeat(store, owner, lease_seconds)
        self._running: set[str] = set()
        self._running_lock = threading.Lock()

    def close(self) -> None:
        """Stop renewing leases (the process is shutting down)."""
        self._heartbeat.close()

    @staticmethod
    def config(decision_id: str) -> dict[str, Any]:
        # One task at a time within a leg: the tasks of a step (an approval per function)
        # are a few store reads each, and LangGraph would otherwise start a thread per
        # task in every invoke. Decisions overlap across legs (the worker's lanes).
        return {"configurable": {"thread_id": decision_id}, "max_concurrency": 1}

    # ------------------------------------------------------------------ entry points

    def start(self, claim: Claim) -> StepResult:
        """Run a decision whose row this worker created and leased
        (``DecisionRepo.claim_new``, which read the prediction in the same transaction)."""
        with self._only_thread(claim.decision_id):
            if self.graph.get_state(self.config(claim.decision_id)).values:
                raise ConflictError(f"decision {claim.decision_id} has started already")
            first = _Next(self._input(claim.decision_id, claim.prediction, claim.playbook))
            return self._legs(claim.decision_id, claim.fence, first, fresh=True)

    def advance(self, decision_id: str) -> StepResult:
        """Carry the decision forward as far as it can go now (see the module
        docstring). Raises ``LeaseHeld`` while another worker, or another thread of this
        one, holds it."""
        with self._only_thread(decision_id):
            fence = self._store.decisions.claim(decision_id, self.owner, self._lease_seconds)
            return self._legs(decision_id, fence, None)

    @contextmanager
    def _only_thread(self, decision_id: str) -> Iterator[None]:
        """One thread of this engine runs a decision at a time. The lease cannot say it:
        its owner is the process (a claim by the same owner renews it, with a new fence
        that would shut the first thread's writes out midway)."""
        with self._running_lock:
            if decision_id in self._running:
                raise LeaseHeld(f"decision {decision_id} is being worked on by another "
                                f"thread of {self.owner}")
            self._running.add(decision_id)
        try:
            yield
        finally:
            with self._running_lock:
                self._running.discard(decision_id)

    # ------------------------------------------------------------------ legs

    def _legs(self, decision_id: str, fence: int, first: _Next | None, *,
              fresh: bool = False) -> StepResult:
        finished = False
        legs = 0
        self._heartbeat.hold(decision_id, fence)
        try:
            for leg in range(_MAX_LEGS):
                step = first if leg == 0 and first is not None else self._next(decision_id, fence)
                if step is None:
                    break
                legs += 1
                out = self._invoke(decision_id, step, fence, fresh=fresh and leg == 0)
                finished = not out.get("__interrupt__") and DecisionStatus(
                    out.get("outcome") or DecisionStatus.PLANNING.value).terminal
                if finished:
                    break  # record released the lease and marked every answer applied
                if step.applied:
                    crash_point("before_mark_applied")
                    with self._store.decision_tx(decision_id, fence=fence,
                                                 actor=self.owner) as tx:
                        self._store.approvals.mark_applied(tx, step.applied)
                if _waits_on_people(out) and (
                        fresh or not self._store.approvals.ready(decision_id)):
                    # Nothing to feed it: a new decision's requests nobody has seen yet,
                    # or not every answer recorded meanwhile (the last one wakes the
                    # answers lane, which finds it once the lease is given back).
                    break
        except LeaseLost:
            raise
        except ShuttingDown:
            # Nothing failed: the worker is stopping (a model call was left unanswered).
            # Give the decision back now rather than when the lease lapses; the next
            # worker carries it on from the store and the checkpoint as after a crash.
            with suppress(DecisionOpsError, SQLAlchemyError):
                self._store.decisions.release(decision_id, fence)
            raise
        except BaseException as exc:
            # Keep the lease: it lapses, and the loop carries the decision on then.
            self._note_failure(decision_id, fence, exc)
            raise
        finally:
            self._heartbeat.drop(decision_id)
            if self._fencing is not None:
                self._fencing.forget(decision_id)
        if finished:  # terminal: nothing pending, and the outcome is the graph's
            return StepResult(decision_id, out["outcome"], [], legs=legs)
        self._store.decisions.release(decision_id, fence)
        result = self._result(decision_id)
        result.legs = legs
        return result

    def _next(self, decision_id: str, fence: int) -> _Next | None:
        """What to feed the graph now, or None when the decision waits (on people, on a
        hold) or is finished."""
        decision = self._store.decisions.get(decision_id)
        if decision.terminal:
            if self._store.approvals.has_unapplied(decision_id):  # late: it raced the end
                with self._store.decision_tx(decision_id, fence=fence, actor=self.owner) as tx:
                    self._store.approvals.mark_all_applied(tx)
            return None
        snapshot = self.graph.get_state(self.config(decision_id))
        held = self._approvals.held(decision)
        if not snapshot.values:
            if held:
                return None
            prediction = self._store.predictions.get(decision.prediction_id)
            return _Next(self._input(decision_id, prediction.model_dump(mode="json"),
                                     decision.playbook))
        if not snapshot.next:
            return None
        parent = snapshot.values.get("trace")
        if not snapshot.interrupts:
            return None if held else _Next(_CONTINUE, parent=parent)
        return self._answers(decision, snapshot, fence, parent, held)

    def _answers(self, decision: DecisionRow, snapshot: Any, fence: int,
                 parent: dict[str, str] | None, held: str | None) -> _Next | None:
        version = (snapshot.values.get("plan") or {}).get("version", 0)
        waiting: dict[str, str] = {}
        resume: dict[str, Any] = {}
        for intr in snapshot.interrupts:
            value = intr.value if isinstance(intr.value, dict) else {}
            if "approval_id" in value:
                waiting[value["approval_id"]] = intr.id
            elif "hold" in value and not self._approvals.held(decision, value.get("functions", ())):
                resume[intr.id] = {"released": True}
            elif "waits_for" in value and not self._store.decisions.open_among(
                    value["waits_for"]):
                resume[intr.id] = {"finished": value["waits_for"]}
        applied, consumed = [], []
        # Answers, and requests withdrawn from the version (another function's answer
        # ended it); a request closed only because the decision finished answers nothing.
        rows = [r for r in self._store.approvals.answered(decision.id, version)
                if r.status is not ApprovalStatus.SUPERSEDED or r.withdrawn is not None]
        # Answers are fed once every approval interrupt has one: join needs them all, so
        # feeding them one by one would only cost a leg and a checkpoint each (the store's
        # ``decisions_with_answers`` wakes the answers lane by the same rule).
        # A hold on the entity or playbook (``held``) stops answers from being applied; a
        # hold on a function stops its steps from starting (the executor), so the other
        # functions' parts of the plan can go ahead.
        feed = not held and set(waiting) <= {row.id for row in rows}
        # The checkpoint says what the graph still waits for: an answer whose interrupt
        # is pending is fed to it even if its row was marked applied (by a leg whose
        # progress did not last); one whose interrupt is gone was consumed.
        for row in rows:
            if row.id in waiting:
                if feed:
                    resume[waiting[row.id]] = resolve(row).model_dump(mode="json")
                    applied.append(row.id)
            elif row.applied_at is None:
                consumed.append(row.id)  # consumed by an earlier leg, or superseded
        if consumed:
            with self._store.decision_tx(decision.id, fence=fence, actor=self.owner) as tx:
                self._store.approvals.mark_applied(tx, consumed)
        if not resume:
            return None
        return _Next(Command(resume=resume), applied, parent)

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _input(decision_id: str, prediction: dict[str, Any], playbook: str | None
               ) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "decision_id": decision_id,
                "prediction": prediction, "playbook": playbook, "plan": None,
                "feedback": [], "answers": {}, "outcome": None, "error": None}

    def _invoke(self, decision_id: str, step: _Next, fence: int, *, fresh: bool
                ) -> dict[str, Any]:
        leg = ("start" if isinstance(step.payload, dict) else
               "resume" if isinstance(step.payload, Command) else "recover")
        with span(f"decision {leg}", parent=step.parent,
                  attributes={"decisionops.decision_id": decision_id,
                              "decisionops.leg": leg}) as current:
            payload = step.payload
            if isinstance(payload, dict):
                payload = {**payload, "trace": carrier()}
            elif payload is _CONTINUE:
                payload = None
            if self._fencing is not None:
                self._fencing.expect(decision_id, fence)
            context = replace(self._context(fence), fresh=fresh, settled=(
                partial(self._fencing.forget, decision_id) if self._fencing is not None
                else None))
            out = self.graph.invoke(payload, self.config(decision_id), context=context,
                                    durability=self._durability)
            if out.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
                raise ConflictError(f"decision {decision_id} has state schema version "
                                    f"{out.get('schema_version')}; this build reads {SCHEMA_VERSION}")
            outcome = out.get("outcome")
            current.set_attribute("decisionops.status", str(outcome))
        if self._metrics is not None and outcome and not out.get("__interrupt__") \
                and DecisionStatus(outcome).terminal:
            self._metrics.decisions.labels(outcome).inc()
        return out

    def _note_failure(self, decision_id: str, fence: int, exc: BaseException) -> None:
        """Say on the decision why its last leg failed (for ``decisions show``)."""
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        # The store may be what failed; the lease lapses all the same.
        with suppress(DecisionOpsError, SQLAlchemyError):
            self._store.decisions.note_failure(decision_id, fence, message[:2000],
                                               hold_after=self._max_leg_failures,
                                               actor=self.owner)

    def _result(self, decision_id: str) -> StepResult:
        decision = self._store.decisions.get(decision_id)
        return StepResult(decision_id, decision.status.value,
                          self._store.approvals.pending_ids(decision_id))
