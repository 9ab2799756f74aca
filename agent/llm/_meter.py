"""Budgets and cost of one draft: the per-decision token cap, the daily spend cap, and a
row in ``llm_calls`` for every HTTP attempt (failed ones included).

Caps are checked before each call, so a draft overshoots a cap by at most one call; the
daily cap also counts the calls other planning threads of the process have in flight, at
their worst cost (prompt estimate and ``max_tokens``), so concurrent drafts do not each
spend the last of it (workers in other processes are seen once their calls are recorded).
A successful reply is journaled with its call under the hash of its request, until the
plan version is stored: a draft cut short (a killed or stopped worker) and run again
replays what it already paid for (``replay``) and asks the model only what it has not.
Failed attempts are charged by what the endpoint may bill: a timeout is charged its
estimated input tokens (the server may have processed the prompt); an error status (a
5xx, a 429) nothing: endpoints answer those unbilled, and charging them let an outage use
up the day's cap without one successful call.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime

from decisionops.agent.faults import crash_point
from decisionops.agent.llm._client import Attempt
from decisionops.agent.llm._errors import BudgetExceeded
from decisionops.agent.llm._ports import LLMStore
from decisionops.agent.ports import Clock
from decisionops.agent.settings import ModelPrice

__all__ = ["InFlight", "Meter", "cost_of", "price_for", "spend_today"]


def price_for(prices: Mapping[str, ModelPrice], model: str) -> ModelPrice | None:
    """The model's price, else the ``*`` entry, else None (calls are then recorded at 0)."""
    return prices.get(model) or prices.get("*")


def cost_of(price: ModelPrice | None, tokens_in: int, tokens_out: int) -> float:
    if price is None:
        return 0.0
    return round((tokens_in * price.input + tokens_out * price.output) / 1_000_000, 8)


def spend_today(store: LLMStore, now: datetime) -> float:
    """What the LLM calls recorded on ``now``'s day (UTC) cost: the figure the daily
    spend cap (``llm_daily_spend_cap``) is checked against."""
    return store.spend_on(now.astimezone(UTC).date())


class InFlight:
    """The worst cost of the LLM calls this process has started and not yet recorded
    (one per planner, shared by its planning threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cost = 0.0


class Meter:
    """Counts one draft's calls, tokens and cost; stops further calls at a cap."""

    def __init__(self, store: LLMStore, *, clock: Clock, decision_id: str, plan_version: int,
                 model: str, price: ModelPrice | None, prompt_version: str,
                 token_cap: int, daily_spend_cap: float | None,
                 in_flight: InFlight | None = None, first: bool = False) -> None:
        self._store = store
        self._in_flight = in_flight or InFlight()
        self._reserved = 0.0
        self._clock = clock
        self.decision_id = decision_id
        self.plan_version = plan_version
        self.model = model
        self.price = price
        self.prompt_version = prompt_version
        self.token_cap = token_cap
        self.daily_spend_cap = daily_spend_cap
        # ``first``: the decision's first draft; nothing spent or journaled to read.
        self.prior_tokens = 0 if first else store.decision_tokens(decision_id)
        self.purpose = "plan"
        self.calls = 0
        self.tokens_in = 0
        self.tokens_out = 0
        self.cost = 0.0
        self.outcomes: list[str] = []
        self.replayed = 0
        """Requests answered from the journal (not sent, not counted in ``calls``)."""
        self.replayed_tokens_in = 0
        self.replayed_tokens_out = 0
        self.replayed_cost = 0.0
        self._asked: dict[str, int] = {}
        """request hash → how many times this draft asked it (``replay``)."""
        self._journal = {} if first else dict(store.journal(decision_id, plan_version))
        """What an earlier run of this draft was answered, not yet replayed."""
        self._spent = 0.0
        self._spend_read_at = -1

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out

    @property
    def resuming(self) -> bool:
        """An earlier run of this draft was answered (replies to replay): the caps stop
        only the calls it still has to make, not the draft."""
        return bool(self._journal)

    def check(self, reserve: float = 0.0) -> None:
        """Raise ``BudgetExceeded`` if a cap is reached (no call may start); else set
        ``reserve`` aside for a call about to start. The day's spend counts the calls
        this process has in flight (other drafts' threads), at their worst cost."""
        used = self.prior_tokens + self.tokens
        if used >= self.token_cap:
            raise BudgetExceeded(f"token cap per decision reached: {used} of {self.token_cap} "
                                 "tokens (llm_token_cap_per_decision)")
        if self.daily_spend_cap is None:
            return
        if self._spend_read_at != self.calls:  # no call of this draft since the last read
            self._spent = spend_today(self._store, self._clock.now())
            self._spend_read_at = self.calls
        with self._in_flight.lock:
            spent = self._spent + self._in_flight.cost
            if spent >= self.daily_spend_cap:
                held = (f" and {self._in_flight.cost:.4f} held for calls in flight"
                        if self._in_flight.cost else "")
                raise BudgetExceeded(f"daily spend cap reached: {self._spent:.4f} spent{held}, "
                                     f"of {self.daily_spend_cap:g} (llm_daily_spend_cap)")
            self._in_flight.cost += reserve
            self._reserved += reserve

    def before_call(self, tokens_in: int = 0, max_tokens: int = 0) -> None:
        self.check(reserve=cost_of(self.price, tokens_in, max_tokens))

    def after_call(self, attempt: Attempt) -> None:
        cost = cost_of(self.price, attempt.tokens_in, attempt.tokens_out)
        self.calls += 1
        self.tokens_in += attempt.tokens_in
        self.tokens_out += attempt.tokens_out
        self.cost = round(self.cost + cost, 8)
        self.outcomes.append(attempt.outcome)
        self._store.record_llm_call(
            decision_id=self.decision_id, plan_version=self.plan_version, purpose=self.purpose,
            model=self.model, prompt_version=self.prompt_version, tokens_in=attempt.tokens_in,
            tokens_out=attempt.tokens_out, cost=cost, latency_ms=attempt.latency_ms,
            outcome=attempt.outcome, at=self._clock.now(),
            request_hash=attempt.request or None, reply=attempt.reply,
            occurrence=self._asked.get(attempt.request, 1))
        with self._in_flight.lock:  # recorded: the day's spend has it now
            self._in_flight.cost -= self._reserved
            self._reserved = 0.0
        if attempt.reply is not None:
            crash_point("after_model_reply")

    def replay(self, request: str) -> str | None:
        """The reply this draft already had to ``request`` (the hash of a request) before
        it was cut short (a killed or stopped worker), journaled with the call; None:
        ask the model. A replay is recorded as a call (outcome ``replayed``) at no cost;
        what the original call cost counts in ``replayed_tokens_in`` … ``replayed_cost``
        (the draft's record), not in the caps (it is spent already)."""
        # The same request may be asked again in one draft (a reply cut off at the token
        # limit is dropped whole): the n-th time replays the n-th reply.
        self._asked[request] = self._asked.get(request, 0) + 1
        found = self._journal.pop((request, self._asked[request]), None)
        if found is None:
            return None
        self.replayed += 1
        self.replayed_tokens_in += found.tokens_in
        self.replayed_tokens_out += found.tokens_out
        self.replayed_cost = round(self.replayed_cost + found.cost, 8)
        self._store.record_replay(
            decision_id=self.decision_id, plan_version=self.plan_version, purpose=self.purpose,
            model=self.model, prompt_version=self.prompt_version, at=self._clock.now())
        return found.reply
