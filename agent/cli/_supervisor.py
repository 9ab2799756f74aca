"""The supervisor behind ``decisionops run --workers N``: keeps N worker processes
running, one per slot, and never leaves a dead child unnoticed.

It waits on every child at once (their sentinels). A child that exits when it was not
asked to is reaped, reported and started again in its slot after a backoff (doubling
from ``backoff`` up to ``max_backoff``; back to ``backoff`` once the slot ran
``healthy_after`` seconds without dying). A slot that dies more than ``max_restarts``
times within ``window`` seconds makes the supervisor stop every worker and fail: a
worker that cannot stay up is a fault for a person, not something to retry forever. A
child that exits 0 on its own was told to stop and stays stopped.

SIGTERM/SIGINT to the supervisor forward SIGTERM to every child and wait up to
``stop_timeout`` seconds before SIGKILL; a further signal kills at once.

What the workers do, and how results are shown, live elsewhere (agent.worker,
agent.cli.loop); this module only knows processes, clocks and signals.
"""

from __future__ import annotations

import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

__all__ = ["Event", "Outcome", "RestartBudget", "RestartPolicy", "Supervisor", "describe_exit"]

Event = dict[str, Any]
"""One thing the supervisor saw or did: ``{"supervisor": <kind>, ...fields}``."""

# How long one wait may block: signals set a flag, and the loop looks at it this often.
_TICK_SECONDS = 0.5
# Exit statuses of a child we asked to stop that count as a clean stop.
_CLEAN_STOP = (0, -signal.SIGTERM, -signal.SIGINT)


@dataclass(frozen=True)
class RestartPolicy:
    max_restarts: int = 5
    """Deaths of one slot tolerated within ``window``; one more and the supervisor gives up."""
    window: float = 300.0
    """Seconds over which deaths of a slot are counted."""
    backoff: float = 1.0
    """First wait before a restart; it doubles on each death."""
    max_backoff: float = 60.0
    healthy_after: float = 300.0
    """A slot that ran this long before dying starts again from ``backoff``."""
    stop_timeout: float = 30.0
    """Seconds children get to stop after SIGTERM before SIGKILL."""


@dataclass
class RestartBudget:
    """The restart arithmetic of one slot, apart from processes so it can be read
    (and tested) on its own."""

    policy: RestartPolicy
    delay: float = field(init=False)
    """The wait before the next restart."""
    deaths: deque[float] = field(default_factory=deque)
    """When the slot died, within the window."""

    def __post_init__(self) -> None:
        self.delay = self.policy.backoff

    def on_death(self, now: float, uptime: float) -> float | None:
        """Seconds to wait before the restart, or None when the slot is out of restarts."""
        if uptime >= self.policy.healthy_after:
            self.delay = self.policy.backoff
        self.deaths.append(now)
        while self.deaths and self.deaths[0] <= now - self.policy.window:
            self.deaths.popleft()
        if len(self.deaths) > self.policy.max_restarts:
            return None
        delay, self.delay = self.delay, min(self.delay * 2, self.policy.max_backoff)
        return delay


def describe_exit(exitcode: int) -> str:
    if exitcode < 0:
        return f"was killed by {signal.Signals(-exitcode).name}"
    return f"exited with code {exitcode}"


@dataclass
class _Slot:
    index: int
    budget: RestartBudget
    process: BaseProcess | None = None
    started: float = 0.0
    restart_at: float | None = None
    starts: int = 0
    stopped: bool = False
    """Exited 0 on its own: not restarted."""


@dataclass(frozen=True)
class Outcome:
    ok: bool
    """Every worker stopped cleanly (exit 0, or SIGTERM/SIGINT when asked to stop)."""
    message: str = ""
    """Why not, for a person."""


class Supervisor:
    def __init__(self, start: Callable[[int], BaseProcess], slots: int,
                 policy: RestartPolicy, report: Callable[[Event], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``start(i)`` returns a started process for slot ``i``; ``report`` receives
        every event (``worker_started``, ``worker_exited``, ``gave_up``, ``stopping``)."""
        self._start_process, self._report, self._clock = start, report, clock
        self.policy = policy
        self.slots = [_Slot(i, RestartBudget(policy)) for i in range(slots)]
        self._signals = 0
        self._signal_name = ""
        self._failure = ""

    def run(self) -> Outcome:
        """Supervise until a signal, until every worker stopped on its own, or until a
        slot is out of restarts. Every child is reaped before this returns."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for slot in self.slots:
                self._start(slot)
            while not self._signals and not self._failure:
                self._wait_once()
                if all(slot.stopped for slot in self.slots):
                    return Outcome(True)
        finally:
            unclean = self._stop_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if self._failure:
            return Outcome(False, self._failure)
        if unclean:
            return Outcome(False, "workers did not stop cleanly: " + "; ".join(unclean))
        return Outcome(True)

    # ---------------------------------------------------------------- internals

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        self._signal_name = signal.Signals(signum).name

    def _start(self, slot: _Slot) -> None:
        slot.restart_at = None
        slot.process = self._start_process(slot.index)
        slot.started = self._clock()
        slot.starts += 1
        self._report({"supervisor": "worker_started", "worker": slot.index,
                      "pid": slot.process.pid, "restarts": slot.starts - 1})

    def _wait_once(self) -> None:
        now = self._clock()
        timeout = min([_TICK_SECONDS] + [max(0.0, s.restart_at - now) for s in self.slots
                                         if s.restart_at is not None])
        sentinels = [s.process.sentinel for s in self.slots if s.process is not None]
        if sentinels:
            wait(sentinels, timeout)
        else:
            time.sleep(timeout)
        for slot in self.slots:
            if self._signals or self._failure:
                return
            if slot.process is not None and slot.process.exitcode is not None:
                self._on_exit(slot)
            if slot.restart_at is not None and self._clock() >= slot.restart_at:
                self._start(slot)

    def _reap(self, slot: _Slot) -> Event:
        """Collect an exited child (``exitcode`` has waited for it) and free its handles."""
        process = slot.process
        assert process is not None and process.exitcode is not None
        slot.process = None
        code = process.exitcode
        event: Event = {"supervisor": "worker_exited", "worker": slot.index, "pid": process.pid,
                        "exitcode": code,
                        "signal": signal.Signals(-code).name if code < 0 else None,
                        "uptime_seconds": round(self._clock() - slot.started, 3)}
        process.close()
        return event

    def _on_exit(self, slot: _Slot) -> None:
        now = self._clock()
        event = self._reap(slot)
        if event["exitcode"] == 0:
            slot.stopped = True
            self._report({**event, "action": "none"})
            return
        delay = slot.budget.on_death(now, event["uptime_seconds"])
        if delay is None:
            self._report({**event, "action": "give_up"})
            deaths = len(slot.budget.deaths)
            self._failure = (f"worker {slot.index} died {deaths} times within "
                             f"{self.policy.window:g} s (last: pid {event['pid']} "
                             f"{describe_exit(event['exitcode'])}); stopped all workers")
            self._report({"supervisor": "gave_up", "worker": slot.index, "deaths": deaths,
                          "window_seconds": self.policy.window,
                          "exitcode": event["exitcode"], "signal": event["signal"]})
            return
        slot.restart_at = now + delay
        self._report({**event, "action": "restart", "restart_in": delay,
                      "deaths_in_window": len(slot.budget.deaths),
                      "max_restarts": self.policy.max_restarts,
                      "window_seconds": self.policy.window})

    def _stop_all(self) -> list[str]:
        """SIGTERM every child, SIGKILL what is left after ``stop_timeout`` (or at a
        further signal), and reap them all. Returns how those that did not stop cleanly
        ended."""
        live = [s for s in self.slots if s.process is not None]
        if live:
            self._report({"supervisor": "stopping", "workers": [s.index for s in live],
                          "reason": "gave up" if self._failure
                          else self._signal_name or "error"})
        signals_seen = self._signals
        for slot in live:
            assert slot.process is not None
            slot.process.terminate()
        deadline = self._clock() + self.policy.stop_timeout
        unclean: list[str] = []
        killed = False
        while live:
            if not killed and (self._clock() >= deadline or self._signals > signals_seen):
                killed = True
                for slot in live:
                    assert slot.process is not None
                    slot.process.kill()
            timeout = _TICK_SECONDS if killed else min(_TICK_SECONDS,
                                                       max(0.0, deadline - self._clock()))
            wait([s.process.sentinel for s in live if s.process is not None], timeout)
            for slot in [s for s in live if s.process is not None
                         and s.process.exitcode is not None]:
                event = self._reap(slot)
                if event["exitcode"] not in _CLEAN_STOP:
                    unclean.append(f"worker {slot.index} (pid {event['pid']}) "
                                   f"{describe_exit(event['exitcode'])}")
                self._report({**event, "action": "stopped"})
                live.remove(slot)
        return unclean
