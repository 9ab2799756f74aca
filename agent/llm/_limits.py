"""Client-side limits of one model endpoint, shared by every thread that plans with it.

``RateLimiter``: requests and tokens per minute, as token buckets that allow a minute's
worth at once and refill continuously. A caller takes its share before each HTTP
attempt and waits when the bucket is in debt; a 429's ``Retry-After`` pauses every
caller, not only the one that got it.

``CircuitBreaker``: after ``failures`` calls in a row that could not reach the model
(timeouts, connection errors, 429 and 5xx after their retries), the circuit opens: for
``cooldown_seconds`` every call fails at once (``CircuitOpen``), so planners go to their
fallback without waiting on a dead endpoint. Then one call is let through as a probe:
its success closes the circuit, its failure opens it again. A model that answers, even
badly, counts as reachable.

Both take a clock and a sleep (tests pass fakes); neither does any I/O.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

from decisionops.agent.llm._errors import LLMTransportError

__all__ = ["CircuitBreaker", "CircuitOpen", "RateLimiter"]

State = Literal["closed", "open", "half_open"]


class CircuitOpen(LLMTransportError):
    """The endpoint failed repeatedly; no call is made until the cool-down ends."""

    cause = "llm_circuit_open"


class _Bucket:
    def __init__(self, per_minute: int, now: float) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = self.capacity
        self.at = now

    def take(self, amount: float, now: float) -> float:
        """Take ``amount`` (capped at the capacity); seconds until it is covered."""
        self.level = min(self.capacity, self.level + (now - self.at) * self.rate)
        self.at = now
        self.level -= min(amount, self.capacity)
        return max(0.0, -self.level / self.rate)


class RateLimiter:
    def __init__(self, requests_per_minute: int | None = None,
                 tokens_per_minute: int | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._clock, self._sleep = clock, sleep
        now = clock()
        self._requests = _Bucket(requests_per_minute, now) if requests_per_minute else None
        self._tokens = _Bucket(tokens_per_minute, now) if tokens_per_minute else None
        self._paused_until = 0.0
        self._lock = threading.Lock()
        self.waited = 0.0
        """Seconds callers have waited in all (for metrics)."""

    def acquire(self, tokens: int, *, max_pause: float | None = None) -> float:
        """Take one request and ``tokens`` (an estimate); wait as long as the limits
        say. Returns the seconds waited. A pause (a Retry-After) longer than
        ``max_pause`` raises ``Paused`` at once, taking nothing."""
        with self._lock:
            now = self._clock()
            wait = max(0.0, self._paused_until - now)
            if max_pause is not None and wait > max_pause:
                raise Paused(wait)
            for bucket, amount in ((self._requests, 1), (self._tokens, tokens)):
                if bucket is not None:
                    wait = max(wait, bucket.take(amount, now))
            self.waited += wait
        if wait > 0.001:
            self._sleep(wait)
        return wait

    def pause(self, seconds: float) -> None:
        """No caller starts a request for ``seconds`` (a 429's Retry-After)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)


class Paused(Exception):
    """The endpoint asked every caller to wait longer than this one may."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"{seconds:g} s")
        self.seconds = seconds


class CircuitBreaker:
    def __init__(self, failures: int = 5, cooldown_seconds: float = 30.0, *,
                 clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[State], None] | None = None) -> None:
        self.failures = failures
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._failed = 0
        self._opened_at = 0.0
        self._probing = False
        self.state: State = "closed"
        self.refused = 0
        """Calls failed at once while the circuit was open."""

    def allow(self) -> None:
        """Raise ``CircuitOpen`` unless a call may go to the endpoint now."""
        with self._lock:
            if self.state == "closed":
                return
            left = self._opened_at + self.cooldown_seconds - self._clock()
            if left <= 0 and not self._probing:
                self._probing = True
                self._set("half_open")
                return
            self.refused += 1
        raise CircuitOpen(f"the endpoint failed {self._failed} call(s) in a row; calls resume "
                          f"in {max(0.0, left):.0f} s (llm_circuit_cooldown_seconds)"
                          if left > 0 else "the endpoint failed repeatedly; a probe call "
                          "is under way", retryable=True)

    def current(self) -> State:
        """The state as a caller would find it now: ``half_open`` once an open circuit's
        cool-down is over (the next call probes), though no call has come to say so."""
        with self._lock:
            if self.state == "open" and self._clock() >= self._opened_at + self.cooldown_seconds:
                return "half_open"
            return self.state

    def settle(self, reached: bool | None) -> None:
        """The end of a call ``allow`` let through: the endpoint answered (True), could
        not be reached (False), or the call said nothing of it (None: a budget stopped
        it, or an error of ours; a probe's turn passes to the next call)."""
        with self._lock:
            self._probing = False
            if reached is None:
                return
            if reached:
                self._failed = 0
                self._set("closed")
                return
            self._failed += 1
            if self.state == "half_open" or self._failed >= self.failures:
                self._opened_at = self._clock()
                self._set("open")

    def succeeded(self) -> None:
        self.settle(True)

    def failed(self) -> None:
        self.settle(False)

    def _set(self, state: State) -> None:
        if state != self.state:
            self.state = state
            if self._on_change is not None:
                self._on_change(state)
