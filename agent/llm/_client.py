"""``ChatClient``: one OpenAI-compatible chat-completions endpoint, through the ``openai``
client, with our own bounded retries.

The ``openai`` client's retries are off (``max_retries=0``): every attempt is reported to
a ``CallMeter`` (which records it and may stop the next one for budget), timeouts, 429
and 5xx are retried at most ``max_retries`` times, a 429's ``Retry-After`` is honoured
up to ``max_retry_after_seconds`` (a longer one ends the call instead of waiting), and a
400 that says the output mode is not supported raises ``LLMModeUnsupported`` so the
planner can switch between function tools and JSON schema.

Every thread planning with one model shares its client: the client-side rate limits
(requests and tokens per minute; a 429's ``Retry-After`` pauses all callers) and the
circuit breaker (after repeated failures calls fail at once for a cool-down, and
planners fall back without waiting) live in ``_limits``; their state is on ``/metrics``.

``check_endpoint`` refuses a non-loopback base URL while ``DECISIONOPS_FORBID_REAL_LLM``
is set (the test suite sets it), so no test can reach a real model.

What does not live here: prompts, parsing of plans, budgets (see ``_dialog``, ``_output``,
``_meter``). The API key only ever goes to the ``openai`` client.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from pydantic import SecretStr

from decisionops.agent._genai import chat_call
from decisionops.agent.errors import ConfigError, ShuttingDown
from decisionops.agent.hashing import digest
from decisionops.agent.llm._errors import (
    BudgetExceeded,
    EndpointPaused,
    LLMFailure,
    LLMModeUnsupported,
    LLMOutputError,
    LLMRequestRefused,
    LLMTransportError,
)
from decisionops.agent.llm._limits import CircuitBreaker, CircuitOpen, Paused, RateLimiter
from decisionops.agent.models import utcnow

if TYPE_CHECKING:
    import openai

    from decisionops.agent.telemetry import Metrics

__all__ = ["LONGEST_PAUSE_SECONDS", "Attempt", "CallMeter", "ChatClient", "ClientConfig", "Reply",
           "ToolCall", "check_endpoint", "replayed", "request_hash"]

FORBID_ENV = "DECISIONOPS_FORBID_REAL_LLM"
_UNSUPPORTED = re.compile(r"not supported|unsupported|does not support|not implemented|"
                          r"not available", re.I)
_MAX_DETAIL = 300
_CIRCUIT_GAUGE = {"closed": 0.0, "half_open": 0.5, "open": 1.0}
LONGEST_PAUSE_SECONDS = 900.0
"""The longest a 429's Retry-After stops every call to a model (planners fall back
meanwhile): a quota reset an hour away is tried again after a quarter of an hour, and a
Retry-After of years does not turn the planner off for the life of the process."""


def check_endpoint(base_url: str) -> str:
    """Validate the base URL; refuse non-loopback hosts while real LLMs are forbidden."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("llm_base_url: must be an http(s) URL such as http://127.0.0.1:8000/v1",
                          field="llm_base_url")
    if os.environ.get(FORBID_ENV, "").strip().lower() in ("1", "true", "yes"):
        host = parts.hostname
        loopback = host == "localhost"
        if not loopback:
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = False
        if not loopback:
            raise ConfigError(f"llm_base_url: {host} is not a loopback address and {FORBID_ENV} is set "
                              "(no real LLM calls under tests)", field="llm_base_url")
    return base_url


@dataclass(frozen=True)
class ClientConfig:
    base_url: str
    model: str
    api_key: SecretStr | None = None
    timeout_seconds: float = 60.0
    max_retries: int = 2
    backoff_seconds: float = 1.0
    max_retry_after_seconds: float = 30.0
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    circuit_failures: int = 5
    circuit_cooldown_seconds: float = 30.0
    capture_content: bool = False
    """Put prompt and completion text into the call's span (off: they may hold customer
    data; the span then carries models, usage and finish reasons only)."""
    stop_grace_seconds: float = 10.0
    """When the worker stops, how long a call in flight may still take to answer (what
    it answers is paid for: kept, not asked again) before the draft stops waiting."""


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str
    """The raw JSON string the model produced; parsed and validated by the caller."""


@dataclass(frozen=True)
class Reply:
    content: str | None
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str | None
    tokens_in: int
    tokens_out: int
    raw: str
    """The model's reply as JSON (content, tool calls, finish reason) for the audit record."""
    response_model: str | None = None
    response_id: str | None = None


class _Abandoned(Exception):
    """The worker stopped while a call was out (``ChatClient._post``)."""


@dataclass(frozen=True)
class Attempt:
    """One HTTP attempt, as the meter records it."""

    outcome: str
    """``ok``, ``timeout``, ``connection_error``, ``rate_limited``, ``server_error``,
    ``unsupported``, ``refused``, ``bad_response``, ``abandoned`` (the worker stopped
    while it was out)."""
    tokens_in: int
    tokens_out: int
    latency_ms: float
    detail: str = ""
    request: str = ""
    """The hash of the request (``request_hash``)."""
    reply: str | None = None
    """An ``ok`` attempt's reply (``Reply.raw``), journaled until the draft is stored."""


def request_hash(request: Mapping[str, Any]) -> str:
    """What identifies a request to the model: the hash of its whole body (model,
    messages, tools, output mode, token limit)."""
    return digest(request)


def replayed(raw: str) -> Reply:
    """A reply journaled as ``Reply.raw``, as the model gave it (no tokens: it is not
    paid for again)."""
    body = json.loads(raw)
    return Reply(content=body.get("content"), finish_reason=body.get("finish_reason"),
                 tool_calls=tuple(ToolCall(id=c["id"], name=c["name"], arguments=c["arguments"])
                                  for c in body.get("tool_calls") or ()),
                 tokens_in=0, tokens_out=0, raw=raw)


class CallMeter(Protocol):
    def before_call(self, tokens_in: int, max_tokens: int) -> None:
        """Raise ``BudgetExceeded`` to stop before the next attempt (of about
        ``tokens_in`` prompt tokens and at most ``max_tokens`` out)."""
        ...

    def after_call(self, attempt: Attempt) -> None: ...

    def replay(self, request: str) -> str | None:
        """The reply to request ``request`` (its hash) already paid for by this draft
        before it was cut short, or None: ask the model."""
        ...


class ChatClient:
    """Chat completions against one endpoint and model; builds its ``openai`` client lazily."""

    def __init__(self, config: ClientConfig, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, http_client: Any | None = None,
                 metrics: Metrics | None = None) -> None:
        check_endpoint(config.base_url)
        if not config.model:
            raise ConfigError("llm_model: must name the model to call", field="llm_model")
        self.config = config
        self._sleep = sleep
        self._stopping = threading.Event()
        self._calls = threading.Lock()
        self._waiting: set[threading.Condition] = set()
        """The calls out, each waiting on its own condition (notified by ``stop`` too)."""
        self._stop_deadline = float("inf")
        """When a stopping worker's drafts stop waiting for their calls in flight."""
        self._http_client = http_client
        self._client: openai.OpenAI | None = None
        self._lock = threading.Lock()
        self._metrics = metrics
        self.limits = RateLimiter(config.requests_per_minute, config.tokens_per_minute,
                                  clock=clock, sleep=sleep)
        self.breaker = CircuitBreaker(config.circuit_failures, config.circuit_cooldown_seconds,
                                      clock=clock)
        if metrics is not None:
            # Read at each scrape: an open circuit whose cool-down is over shows as
            # half-open then, not only once the next call comes.
            breaker = self.breaker
            metrics.llm_circuit_open.labels(config.model).set_function(
                lambda: _CIRCUIT_GAUGE[breaker.current()])
            # Shown from the start at 0 (a series appears at its first use otherwise).
            metrics.llm_calls_refused.labels(config.model)
            metrics.llm_throttled_seconds.labels(config.model)

    @property
    def model(self) -> str:
        return self.config.model

    @property
    def connected(self) -> bool:
        """Whether the ``openai`` client is built (``connect``, or the first call)."""
        return self._client is not None

    def connect(self) -> None:
        """Build the ``openai`` client now (a worker does at start-up) rather than on
        the first call; calls may start again after ``stop``."""
        with self._calls:
            self._stopping.clear()
            self._stop_deadline = float("inf")
        self._openai()

    def stop(self) -> None:
        """No call (nor retry) starts from now on: the worker is stopping. A call in
        flight still has ``stop_grace_seconds`` to answer; then its draft stops waiting
        (``ShuttingDown``) rather than hold the worker's exit until the endpoint answers
        or the call times out (``timeout_seconds``)."""
        with self._calls:
            self._stopping.set()
            self._stop_deadline = time.monotonic() + self.config.stop_grace_seconds
            waiting = list(self._waiting)
        for answered in waiting:  # each re-reads the deadline
            with answered:
                answered.notify()

    def _openai(self) -> openai.OpenAI:
        import openai  # loaded when first needed: the playbook planner never needs it

        with self._lock:  # planning threads share one client (and its connections)
            if self._client is None:
                key = self.config.api_key.get_secret_value() if self.config.api_key else "unused"
                self._client = openai.OpenAI(api_key=key, base_url=self.config.base_url,
                                             timeout=self.config.timeout_seconds, max_retries=0,
                                             http_client=self._http_client)
            return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def complete(self, messages: Sequence[Mapping[str, Any]], *, meter: CallMeter,
                 max_tokens: int, tools: Sequence[Mapping[str, Any]] | None = None,
                 tool_choice: Any = None, response_format: Mapping[str, Any] | None = None,
                 mode: str = "tools") -> Reply:
        """One chat completion, retried on timeouts, 429 and 5xx within the bounds, within
        the client-side rate limits; ``CircuitOpen`` at once while the circuit is open.
        A request this draft already had answered (it was cut short) is not sent again:
        the journaled reply is returned (``CallMeter.replay``)."""
        request: dict[str, Any] = {"model": self.config.model, "messages": list(messages),
                                   "max_tokens": max_tokens, "temperature": 0}
        if tools:
            request["tools"] = list(tools)
            request["tool_choice"] = tool_choice or "auto"
            request["parallel_tool_calls"] = True
        if response_format is not None:
            request["response_format"] = dict(response_format)
        fingerprint = request_hash(request)
        raw = meter.replay(fingerprint)
        if raw is not None:
            return replayed(raw)
        try:
            self.breaker.allow()
        except CircuitOpen:
            if self._metrics is not None:
                self._metrics.llm_calls_refused.labels(self.config.model).inc()
            raise
        reached: bool | None = None
        """What this call says of the endpoint: None, nothing (stopped by a budget, or
        by an error of ours before it could tell)."""
        try:
            with chat_call(base_url=self.config.base_url, model=self.config.model,
                           max_tokens=max_tokens, temperature=0, messages=messages,
                           capture_content=self.config.capture_content,
                           metrics=self._metrics) as record:
                reply = self._complete(request, fingerprint, meter=meter, mode=mode)
                record.response_model, record.response_id = reply.response_model, reply.response_id
                record.finish_reasons = [reply.finish_reason] if reply.finish_reason else []
                record.input_tokens, record.output_tokens = reply.tokens_in, reply.tokens_out
                record.output_text = reply.content
                record.output_tool_calls = [c.name for c in reply.tool_calls]
            reached = True
            return reply
        except EndpointPaused:
            raise  # not made: it says nothing of whether the endpoint is up
        except LLMTransportError:
            reached = False
            raise
        except BudgetExceeded:
            raise
        except LLMFailure:  # it answered, if not usefully: the endpoint is up
            reached = True
            raise
        finally:
            self.breaker.settle(reached)

    def _complete(self, request: dict[str, Any], fingerprint: str, *, meter: CallMeter,
                  mode: str) -> Reply:
        max_tokens = request["max_tokens"]
        estimate = _estimate_tokens(request)
        failures = 0
        import openai
        from openai.types.chat import ChatCompletion

        while True:
            if self._stopping.is_set():
                raise ShuttingDown(f"the worker is stopping: no call to {self.config.model} "
                                   "starts (the next worker carries the decision on)")
            # Providers count the output a request may produce against the tokens per
            # minute; the budget is checked after any wait (it may have been spent then).
            try:
                waited = self.limits.acquire(estimate + max_tokens,
                                             max_pause=self.config.max_retry_after_seconds)
            except Paused as paused:
                if self._metrics is not None:
                    self._metrics.llm_calls_refused.labels(self.config.model).inc()
                raise EndpointPaused(
                    f"rate limited: the endpoint asked to wait {paused.seconds:.0f} s more "
                    f"(Retry-After), over the bound of {self.config.max_retry_after_seconds:g} s "
                    "(llm_max_retry_after_seconds)", retryable=True) from None
            if waited and self._metrics is not None:
                self._metrics.llm_throttled_seconds.labels(self.config.model).inc(waited)
            meter.before_call(estimate, max_tokens)
            started = time.monotonic()
            try:
                # The body is plain JSON already: posted as it is, it skips the SDK's
                # walk of every message and tool against its typed parameters (a few ms
                # of CPU a call, with the GIL held, for the same bytes on the wire).
                response = self._post(request, ChatCompletion)
            except _Abandoned:
                # The provider bills it all the same: charged as a timeout is.
                meter.after_call(Attempt("abandoned", estimate, 0, _ms(started),
                                         "the worker stopped while the call was out"))
                raise ShuttingDown(f"the worker is stopping: the call to {self.config.model} "
                                   "in flight was left unanswered (the next worker carries "
                                   "the decision on)") from None
            except openai.APIStatusError as exc:
                wait = self._on_status(exc, meter, started, estimate, failures, mode)
            except openai.APIConnectionError as exc:  # includes APITimeoutError
                timeout = isinstance(exc, openai.APITimeoutError)
                meter.after_call(Attempt("timeout" if timeout else "connection_error",
                                         estimate if timeout else 0, 0, _ms(started),
                                         self._detail(exc)))
                if failures >= self.config.max_retries:
                    raise LLMTransportError(
                        f"timed out after {failures + 1} attempt(s) "
                        f"({self.config.timeout_seconds:g} s each)" if timeout else
                        f"could not connect after {failures + 1} attempt(s): "
                        f"{self._detail(exc)}",
                        retryable=True) from None
                wait = self._backoff(failures)
            except (openai.APIError, json.JSONDecodeError) as exc:  # a body it could not read
                detail = self._detail(exc)
                meter.after_call(Attempt("bad_response", 0, 0, _ms(started), detail))
                if failures >= self.config.max_retries:
                    raise LLMTransportError(f"unreadable response: {detail}",
                                            retryable=True) from None
                wait = self._backoff(failures)
            else:
                return self._reply(response, meter, started, estimate, fingerprint)
            failures += 1
            if wait > 0:
                self._sleep(wait)

    # ------------------------------------------------------------------ internals

    def _post(self, request: dict[str, Any], cast_to: type[Any]) -> Any:
        """POST ``request`` on a thread of its own and wait for its answer; once the
        worker stops, for ``stop_grace_seconds`` more at most (``_Abandoned``: the call
        finishes on its thread, unread). A blocked read cannot be interrupted from
        outside, not even by closing the client."""
        result: list[tuple[bool, Any]] = []
        answered = threading.Condition()  # this call's own: no other call wakes it

        def send() -> None:
            try:
                outcome = (True, self._openai().post("/chat/completions", body=request,
                                                     cast_to=cast_to))
            except BaseException as exc:  # handed to the waiting draft
                outcome = (False, exc)
            with answered:
                result.append(outcome)
                answered.notify()

        with self._calls:
            self._waiting.add(answered)
        try:
            threading.Thread(target=send, daemon=True,
                             name=f"llm call {self.config.model}").start()
            with answered:
                while not result:
                    left = self._stop_deadline - time.monotonic()
                    if left <= 0:
                        break
                    answered.wait(None if left == float("inf") else left)
        finally:
            with self._calls:
                self._waiting.discard(answered)
        if not result:
            raise _Abandoned
        ok, value = result[0]
        if ok:
            return value
        raise value

    def _on_status(self, exc: openai.APIStatusError, meter: CallMeter, started: float,
                   estimate: int, failures: int, mode: str) -> float:
        status = exc.status_code
        detail = self._detail(exc)
        if status == 429:
            meter.after_call(Attempt("rate_limited", 0, 0, _ms(started), detail))
            retry_after = _retry_after(exc.response.headers)
            if retry_after is not None:
                # Every caller of this model waits it out, or gives up at once when it is
                # longer than a planner waits (the next acquire says so); for at most
                # LONGEST_PAUSE_SECONDS, whatever the endpoint asked.
                self.limits.pause(min(retry_after, LONGEST_PAUSE_SECONDS))
            if failures >= self.config.max_retries:
                raise LLMTransportError(f"rate limited (429) after {failures + 1} attempt(s)",
                                        retryable=True) from None
            if retry_after is not None and retry_after > self.config.max_retry_after_seconds:
                raise LLMTransportError(
                    f"rate limited (429) with Retry-After {retry_after:g} s, over the bound of "
                    f"{self.config.max_retry_after_seconds:g} s (llm_max_retry_after_seconds)",
                    retryable=True) from None
            return self._backoff(failures) if retry_after is None else 0.0
        if status >= 500:
            # An error status is not billed (nor a 429): a run of them during an outage
            # must not use up the day's spend cap. A timeout is charged (see the meter).
            meter.after_call(Attempt("server_error", 0, 0, _ms(started), detail))
            if failures >= self.config.max_retries:
                raise LLMTransportError(f"server error {status} after {failures + 1} attempt(s)",
                                        retryable=True) from None
            return self._backoff(failures)
        if status == 400 and _UNSUPPORTED.search(detail):
            meter.after_call(Attempt("unsupported", 0, 0, _ms(started), detail))
            raise LLMModeUnsupported(f"the endpoint does not support {mode} output: {detail}",
                                     mode=mode) from None
        meter.after_call(Attempt("refused", 0, 0, _ms(started), detail))
        raise LLMRequestRefused(f"the endpoint refused the request ({status}): {detail}") from None

    def _backoff(self, failures: int) -> float:
        return min(self.config.backoff_seconds * (2 ** failures), self.config.max_retry_after_seconds)

    def _detail(self, exc: Exception) -> str:
        text = " ".join(str(getattr(exc, "message", None) or exc).split())
        if self.config.api_key is not None:
            secret = self.config.api_key.get_secret_value()
            if secret:
                text = text.replace(secret, "***")
        return text[:_MAX_DETAIL]

    def _reply(self, response: Any, meter: CallMeter, started: float, estimate: int,
               fingerprint: str) -> Reply:
        usage = getattr(response, "usage", None)
        tokens_in = _tokens(getattr(usage, "prompt_tokens", None)) or estimate
        choices = getattr(response, "choices", None) or []
        if not choices:
            meter.after_call(Attempt("bad_response", tokens_in, 0, _ms(started), "no choices"))
            raise LLMOutputError("the reply had no choices")
        choice = choices[0]
        message = choice.message
        calls = tuple(ToolCall(id=str(c.id), name=str(c.function.name),
                               arguments=c.function.arguments or "")
                      for c in (message.tool_calls or ()) if getattr(c, "function", None))
        raw = json.dumps({"content": message.content, "finish_reason": choice.finish_reason,
                          "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments}
                                         for c in calls]}, ensure_ascii=False)
        tokens_out = _tokens(getattr(usage, "completion_tokens", None))
        if tokens_out is None:
            tokens_out = max(1, len(raw) // 4)
        meter.after_call(Attempt("ok", int(tokens_in), int(tokens_out), _ms(started),
                                 request=fingerprint, reply=raw))
        model = getattr(response, "model", None)
        ident = getattr(response, "id", None)
        return Reply(content=message.content, tool_calls=calls, finish_reason=choice.finish_reason,
                     tokens_in=int(tokens_in), tokens_out=int(tokens_out), raw=raw,
                     response_model=str(model) if model else None,
                     response_id=str(ident) if ident else None)


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


_MOST_TOKENS = 100_000_000
"""More tokens than any one call uses: a count past it is not a count."""


def _tokens(count: Any) -> int | None:
    """A token count the endpoint reported, or None when it is missing or not one it can
    have meant (not a whole number, negative, past ``_MOST_TOKENS``): the caller
    estimates then, as for a missing count. An endpoint's numbers feed the spend and its
    daily cap; a negative one would lower them (trial 30)."""
    if isinstance(count, bool) or not isinstance(count, int | float):
        return None
    if count != count or not 0 <= count <= _MOST_TOKENS or count != int(count):
        return None
    return int(count)


def _estimate_tokens(request: Mapping[str, Any]) -> int:
    return max(1, len(json.dumps(request, ensure_ascii=False, default=str)) // 4)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - utcnow()).total_seconds())
