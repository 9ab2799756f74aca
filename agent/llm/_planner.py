"""``LLMPlanner`` and ``HybridPlanner``: plans drafted by a model, bounded by the
playbook, checked by the guard, paid for within budgets, with fallbacks.

``draft(request)``:

1. The baseline: the playbook's plan for the prediction (guidance for ``llm``, the plan
   to adapt for ``hybrid``).
2. The plan cache (no feedback, cache on): a matching entry's structure is adapted to
   this prediction, its risks set again (B2), guarded with today's policies and
   bounds-checked against this prediction's baseline; a valid result needs no call. The
   cache never serves what the playbook would not propose: an adapted plan with a novel
   step (B2) is a miss, and plans with novel steps are not cached.
3. Budgets: the per-decision token cap and the daily spend cap are checked before every
   call; reached, the planner falls back (before the first call or mid-draft).
4. The conversation (``Dialog``) in the preferred output mode; a 400 "not supported"
   switches between function tools and JSON schema (``auto``), remembered afterwards.
5. Each proposal is built into a ``Plan``, guarded (``agent.guard.check_plan``) and
   bounds-checked (``_bounds``); problems go back to the model at most ``max_repairs``
   times.
6. Any ``LLMFailure`` (transport, refusals, unusable replies, guard exhausted, budget)
   ends in the fallback: the playbook planner's plan, or none (a human must plan), with
   the reason in ``PlanningRecord.fallback`` and a ``planner.fallback`` ledger entry.

The record carries the prompt version, model, calls, tokens, cost, raw replies and the
guard's verdicts. The graph persists the draft before its own guard runs, so a resumed
decision never calls the model again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from decisionops.agent.errors import ConfigError, InvalidInputError, NotFoundError, PlanRejected
from decisionops.agent.guard import check_plan
from decisionops.agent.llm._bounds import BoundsReport, assign_risks, check_bounds, known_addresses, risks
from decisionops.agent.llm._cache import (
    DRIVER_DEPTH,
    Unfit,
    adapt,
    cache_body,
    entry_key,
    lookup_keys,
    signature,
)
from decisionops.agent.llm._client import ChatClient
from decisionops.agent.llm._dialog import Dialog
from decisionops.agent.llm._errors import GuardExhausted, LLMFailure, LLMModeUnsupported
from decisionops.agent.llm._meter import InFlight, Meter, price_for
from decisionops.agent.llm._output import PlanOut, to_plan
from decisionops.agent.llm._ports import LLMStore, Lookup
from decisionops.agent.llm._prompting import PromptSet, catalogue, data_tag
from decisionops.agent.models import Plan
from decisionops.agent.planner import Draft, PlanningRecord, PlanRequest, PlaybookPlanner
from decisionops.agent.playbooks import PlaybookBook
from decisionops.agent.policy import Policies
from decisionops.agent.ports import Clock, SystemClock, ToolPort
from decisionops.agent.settings import ModelPrice

__all__ = ["HybridPlanner", "LLMOptions", "LLMPlanner"]


@dataclass(frozen=True)
class LLMOptions:
    """The knobs of an LLM planner (see ``Settings`` for what each means)."""

    mode: Literal["auto", "tools", "json"] = "auto"
    max_repairs: int = 2
    max_bad_replies: int = 2
    max_lookup_rounds: int = 3
    max_output_tokens: int = 2000
    max_steps: int = 12
    token_cap: int = 30_000
    daily_spend_cap: float | None = 20.0
    prices: Mapping[str, ModelPrice] = field(default_factory=dict)
    fallback: Literal["playbook", "human"] = "playbook"
    cache_ttl_hours: float = 24.0
    cache_top_features: int = 0
    max_extra_steps: int = 1
    max_growth: float = 2.0


class LLMPlanner:
    """Drafts plans with a model; the playbook guides it and bounds it loosely (``_bounds``)."""

    name = "llm"
    deterministic = False
    strict = False

    def __init__(self, *, client: ChatClient, playbooks: PlaybookBook, tools: ToolPort,
                 policies: Policies, lookup: Lookup, store: LLMStore,
                 options: LLMOptions | None = None, clock: Clock | None = None,
                 actor: str = "planner") -> None:
        self._client = client
        self._playbooks = playbooks
        self._fallback_planner = PlaybookPlanner(playbooks)
        self._in_flight = InFlight()
        self._tools = tools
        self._policies = policies
        self._lookup = lookup
        self._store = store
        self.options = options or LLMOptions()
        self._clock = clock or SystemClock()
        self._actor = actor
        self._prompts = PromptSet.load(hybrid=self.strict)
        self._catalogue = catalogue(tools, policies)
        self._modes: tuple[str, ...] = {"auto": ("tools", "json"), "tools": ("tools",),
                                        "json": ("json",)}[self.options.mode]

    @property
    def prompt_version(self) -> str:
        return self._prompts.version

    @property
    def ready(self) -> bool:
        return self._client.connected

    def warm(self) -> None:
        self._client.connect()

    def stop(self) -> None:
        self._client.stop()

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------ Planner

    def draft(self, request: PlanRequest) -> Draft:
        record = PlanningRecord(planner=self.name, model=self._client.model,
                                prompt_version=self.prompt_version)
        baseline = self._baseline(request, record)
        meter = Meter(self._store, clock=self._clock, decision_id=request.decision_id,
                      plan_version=request.version, model=self._client.model,
                      price=price_for(self.options.prices, self._client.model),
                      prompt_version=self.prompt_version, token_cap=self.options.token_cap,
                      daily_spend_cap=self.options.daily_spend_cap, in_flight=self._in_flight,
                      first=request.first)
        try:
            if self.strict and baseline is None:
                raise GuardExhausted("hybrid planning needs a playbook plan to adapt, and no "
                                     "playbook gave one", problems=["playbook: none"])
            cached = self._from_cache(request, baseline, record)  # free: before the budget
            if cached is not None:
                return Draft(plan=cached, record=record)
            if not meter.resuming:  # replies paid for already are replayed whatever the caps
                meter.check()
            plan, novel, shown = self._converse(request, baseline, meter, record)
        except LLMFailure as exc:
            self._account(record, meter)
            return self._fallback(request, record, baseline, exc)
        self._account(record, meter)
        if not novel:  # plans with novel steps need a person's judgement: not reused
            self._remember(request, baseline, plan, shown)
        return Draft(plan=plan, record=record)

    # ------------------------------------------------------------------ steps of a draft

    def _baseline(self, request: PlanRequest, record: PlanningRecord) -> Plan | None:
        try:
            if request.playbook is not None:
                playbook = self._playbooks.get(request.playbook)
            else:
                playbook = self._playbooks.for_prediction(request.prediction)
            if playbook is None:
                record.notes.append(f"no playbook for kind {request.prediction.kind!r}")
                return None
            return playbook.draft(request.prediction, decision_id=request.decision_id,
                                  version=request.version)
        except (ConfigError, InvalidInputError) as exc:
            record.notes.append(f"playbook could not draft: {exc.message}")
            return None

    def _converse(self, request: PlanRequest, baseline: Plan | None, meter: Meter,
                  record: PlanningRecord) -> tuple[Plan, bool, dict[str, Any]]:
        """The accepted plan, whether it has novel steps, and what the model was shown of
        the entity (the prompt's lookups, ``context``, and its own, ``looked_up``)."""
        context = self._lookup.context(request.prediction)
        previous = self._previous(request)
        modes = self._modes
        for index, mode in enumerate(modes):
            try:
                return self._converse_in(mode, request, baseline, context, previous, meter, record)
            except LLMModeUnsupported:
                record.notes.append(f"{mode} output is not supported by the endpoint")
                if index == len(modes) - 1:
                    raise
                # Remember for later drafts: start with the mode that may work.
                self._modes = modes[index + 1:] + modes[:index + 1]
        raise AssertionError("unreachable")  # pragma: no cover

    def _converse_in(self, mode: str, request: PlanRequest, baseline: Plan | None,
                     context: dict[str, Any], previous: Plan | None, meter: Meter,
                     record: PlanningRecord) -> tuple[Plan, bool, dict[str, Any]]:
        """The accepted plan, whether it has novel steps (bound B2), and what the model
        was shown of the entity."""
        tag = data_tag(request.decision_id, request.version)
        lookups = [s.name for s in self._lookup.specs()] if mode == "tools" else []
        system = self._prompts.system_text(mode=mode, catalogue_text=self._catalogue,
                                           max_steps=self.options.max_steps,
                                           lookup_tools=lookups,
                                           max_extra_steps=self.options.max_extra_steps,
                                           max_growth=self.options.max_growth)
        user = self._prompts.user_text(tag=tag, prediction=request.prediction, context=context,
                                       baseline=baseline, feedback=list(request.feedback),
                                       previous=previous)
        dialog = Dialog(client=self._client, meter=meter, prompts=self._prompts, mode=mode,
                        system=system, user=user, lookup=self._lookup, tag=tag,
                        max_lookup_rounds=self.options.max_lookup_rounds,
                        max_bad_replies=self.options.max_bad_replies,
                        max_tokens=self.options.max_output_tokens, raw=record.raw_outputs,
                        prediction=request.prediction)
        proposal = dialog.propose()
        for attempt in range(self.options.max_repairs + 1):
            addresses = known_addresses(baseline, request.prediction.features, context,
                                        dialog.lookup_results)
            plan, problems, bounds = self._check(proposal, request, baseline, addresses)
            if plan is not None and not problems:
                record.notes.extend(bounds.notes)
                return plan, bool(bounds.novel), {"context": context,
                                                  "looked_up": dialog.lookup_results}
            record.guard_verdicts.append(problems)
            if attempt == self.options.max_repairs:
                raise GuardExhausted(f"the guard refused {attempt + 1} draft(s); last: "
                                     f"{problems[0]}", problems=problems)
            proposal = dialog.repair(problems, attempts_left=self.options.max_repairs - attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _check(self, proposal: PlanOut, request: PlanRequest, baseline: Plan | None,
               addresses: set[str]) -> tuple[Plan | None, list[str], BoundsReport]:
        try:
            plan = to_plan(proposal, decision_id=request.decision_id, version=request.version,
                           planner=self.name,
                           playbook=baseline.playbook if baseline else request.playbook,
                           all_or_nothing=baseline.all_or_nothing if baseline else False,
                           risk_for=lambda plan: risks(plan, baseline, self._tools))
        except PlanRejected as exc:
            return None, exc.problems, BoundsReport()
        return self._guard(plan, request, baseline, addresses)

    def _guard(self, plan: Plan, request: PlanRequest, baseline: Plan | None,
               addresses: set[str]) -> tuple[Plan, list[str], BoundsReport]:
        problems: list[str] = []
        if len(plan.steps) > self.options.max_steps:
            problems.append(f"steps: {len(plan.steps)} steps, over the maximum of "
                            f"{self.options.max_steps}")
        try:
            plan = check_plan(plan, self._tools, self._policies)
        except PlanRejected as exc:
            problems.extend(exc.problems)
        bounds = check_bounds(plan, baseline, request.prediction, self._tools,
                              strict=self.strict, max_extra_steps=self.options.max_extra_steps,
                              max_growth=self.options.max_growth, addresses=addresses)
        problems.extend(bounds.problems)
        return plan, problems, bounds

    def _previous(self, request: PlanRequest) -> Plan | None:
        if not request.feedback or request.version <= 1:
            return None
        try:
            return self._store.plan(request.decision_id, request.version - 1)
        except NotFoundError:
            return None

    # ------------------------------------------------------------------ cache

    def _signature(self, request: PlanRequest, baseline: Plan | None) -> str:
        return signature(request.prediction, baseline, planner=self.name,
                         prompt_version=self.prompt_version, top=self.options.cache_top_features)

    def _from_cache(self, request: PlanRequest, baseline: Plan | None,
                    record: PlanningRecord) -> Plan | None:
        if self.options.cache_ttl_hours <= 0 or request.feedback:
            return None
        keys = lookup_keys(self._signature(request, baseline), request.prediction)
        since = self._clock.now() - timedelta(hours=self.options.cache_ttl_hours)
        entry = self._store.cache_get(keys, newer_than=since)
        if entry is None:
            return None
        try:
            context = self._lookup.context(request.prediction)
            plan = adapt(entry["body"], request.prediction, baseline,
                         decision_id=request.decision_id, version=request.version,
                         context=context)
        except Unfit as unfit:
            record.notes.append(f"plan cache: an entry matched but does not fit: {unfit}")
            return None
        # Whatever the entry says, risks come from today's playbook for this prediction.
        plan = assign_risks(plan.model_copy(update={"planner": self.name}), baseline,
                            self._tools)
        addresses = known_addresses(baseline, request.prediction.features, context)
        checked, problems, bounds = self._guard(plan, request, baseline, addresses)
        if problems:
            record.notes.append(f"plan cache: the adapted plan was refused ({problems[0]})")
            return None
        if bounds.novel:  # written before this rule, or planted: never served
            record.notes.append(f"plan cache: the entry has step(s) the playbook would not "
                                f"propose ({', '.join(bounds.novel)}); not served")
            return None
        self._store.cache_hit(entry["signature"], at=self._clock.now())
        record.cache_hit = True
        record.notes.extend(bounds.notes)
        record.notes.append(f"plan cache: structure reused from decision "
                            f"{entry.get('source_decision_id')}")
        return checked

    def _remember(self, request: PlanRequest, baseline: Plan | None, plan: Plan,
                  shown: dict[str, Any]) -> None:
        if self.options.cache_ttl_hours <= 0 or request.feedback:
            return
        body = cache_body(plan, baseline, request.prediction, shown)
        if len(body["drivers"]) > DRIVER_DEPTH:
            return  # it speaks to more drivers than any prediction is matched on
        self._store.cache_put(entry_key(self._signature(request, baseline), body["drivers"]),
                              kind=request.prediction.kind,
                              playbook=baseline.playbook if baseline else None,
                              planner=self.name,
                              body=body, source_decision_id=request.decision_id, at=self._clock.now())

    # ------------------------------------------------------------------ fallback

    def _account(self, record: PlanningRecord, meter: Meter) -> None:
        # What the plan cost: this run's calls and those an earlier run made, replayed.
        record.llm_calls = meter.calls + meter.replayed
        record.tokens_in = meter.tokens_in + meter.replayed_tokens_in
        record.tokens_out = meter.tokens_out + meter.replayed_tokens_out
        record.cost = round(meter.cost + meter.replayed_cost, 8)

    def _fallback(self, request: PlanRequest, record: PlanningRecord, baseline: Plan | None,
                  failure: LLMFailure) -> Draft:
        plan: Plan | None = None
        if self.options.fallback == "playbook" and baseline is not None:
            plan = self._fallback_planner.plan(request)
            target = "the playbook planner drafted the plan"
        else:
            target = "a person must draft the plan"
        record.fallback = f"{failure.cause}: {failure.message}; {target}"
        self._store.record_planner_event(
            decision_id=request.decision_id, event="planner.fallback", actor=self._actor,
            body={"planner": self.name, "version": request.version, "cause": failure.cause,
                  "reason": failure.message, "to": "playbook" if plan else "human",
                  "llm_calls": record.llm_calls, "tokens": record.tokens_in + record.tokens_out,
                  "cost": record.cost})
        return Draft(plan=plan, record=record)


class HybridPlanner(LLMPlanner):
    """Adapts the playbook's plan with a model, within strict bounds (``_bounds`` H1-H4)."""

    name = "hybrid"
    strict = True
