"""Bounds: what an LLM-drafted plan may do, relative to the *baseline*, the playbook's
plan for the same prediction. Checked after the guard (schema, allow-lists, limits, DAG)
on every draft; a plan outside its bounds is refused like a guard failure (repair, then
fallback).

Both planners (``llm`` and ``hybrid``):

- B1 Lookups are not steps: a tool without side effects is refused as a plan step.
- B2 Risk is set by the planner, never by the model. Plan steps are matched one-to-one
  to baseline steps (``match_steps``): first a step with the same id, function and tool,
  then, among the baseline steps still unmatched, the first with the same (function,
  tool). A matched step's risk is the higher of the tool's own risk and the risk the
  playbook gives that (function, tool). An unmatched step is *novel*, even when its
  (function, tool) occurs in the baseline (a second support ticket next to the
  playbook's one): its risk is ``high``, so no function policy auto-approves it, and it
  is listed in the planning notes. A matched step also counts as novel when it acts on
  something else than its baseline step (a target argument of the tool — account,
  recipient, site… — differs) or asks for more (a number above the baseline step's):
  the model's own changes in that direction are what injected text would ask for.
  What the playbook would not have proposed always needs a person.
- B3 Identifiers are pinned: when the baseline fills an argument of a tool with one of
  the prediction's identifiers (its entity id, its currency, or an id-like feature value
  such as a SKU or a site), every step using that tool must carry one of the baseline's
  values there. A plan acts on the predicted entity only, whatever the data says.
- B5 Lookups read what the prediction names: every target argument of a lookup the
  model calls (an account, an asset, a SKU) must be one of the prediction's identifiers.
  What a lookup returns is sent to the model's endpoint; another customer's record is
  not the model's to read, whatever the data asks for.
- B4 Recipients come from the playbook or the records: an argument value that is an
  address (e-mail, URL, chat channel) must be one the baseline uses, or a whole field
  value of the prediction's features or of a lookup result (e.g. the account manager's
  e-mail). An address that only occurs inside free text (a CRM note, a feature
  sentence) does not count: that is how injected text exfiltrates data.

``hybrid`` adds (strict bounds):

- H1 Only (function, tool) pairs of the baseline. A step added with one of them (within
  H3) is still novel under B2: a person approves it.
- H2 A step with a baseline step's id keeps that step's function and tool.
- H3 At most ``len(baseline) + max_extra_steps`` steps (steps may be dropped).
- H4 Every baseline dependency between two kept steps is kept (directly or through
  other steps).
- H5 A number may grow to at most ``max_growth`` times the playbook's value for the same
  step (an added step: the playbook's first step with the same tool); decreases are free.
  With the tool's schema and the function's limits (the guard), this bounds every change.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from decisionops.agent.errors import NotFoundError
from decisionops.agent.models import Plan, Prediction, Risk, Step
from decisionops.agent.ports import ToolPort, ToolSpec

__all__ = ["BoundsReport", "assign_risks", "check_bounds", "identifiers", "known_addresses",
           "lookup_problem", "match_steps", "pinned_arguments", "risks"]

_ID_LIKE = re.compile(r"^[A-Z0-9]+(?:[-_.:@/][A-Z0-9]+)+$")
_ADDRESS = re.compile(r"^(?:[^@\s]+@[^@\s]+\.[^@\s]+|[a-z][a-z0-9+.-]*://\S+|#[a-z0-9][\w.-]*)$",
                      re.I)


@dataclass
class BoundsReport:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    novel: list[str] = field(default_factory=list)
    """Ids of steps no baseline step matches (B2): the playbook would not propose them."""


def identifiers(prediction: Prediction) -> dict[str, str]:
    """The prediction's identifiers: value → where it comes from."""
    found = {prediction.entity_id: "entity_id", prediction.currency: "currency"}
    for name, value in prediction.features.items():
        if isinstance(value, str) and _ID_LIKE.match(value) and value not in found:
            found[value] = f"features.{name}"
    return found


def lookup_problem(spec: ToolSpec, arguments: Mapping[str, Any], prediction: Prediction
                   ) -> str | None:
    """Why the model may not run lookup ``spec`` with ``arguments`` (bound B5), or None."""
    ids = identifiers(prediction)
    for target in spec.targets:
        value = arguments.get(target)
        if value is not None and value not in ids:
            named = " or ".join(sorted(repr(v) for v in ids if v))
            return (f"{target}: {value!r} is not what the prediction names ({named}); "
                    "lookups read the predicted entity's records only")
    return None


def pinned_arguments(baseline: Plan | None, prediction: Prediction
                     ) -> dict[str, dict[str, set[str]]]:
    """tool → argument → the identifier values the baseline puts there."""
    ids = identifiers(prediction)
    pins: dict[str, dict[str, set[str]]] = {}
    for step in baseline.steps if baseline else ():
        for arg, value in step.arguments.items():
            if isinstance(value, str) and value in ids:
                pins.setdefault(step.tool, {}).setdefault(arg, set()).add(value)
    return pins


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def known_addresses(baseline: Plan | None, *records: Any) -> set[str]:
    """B4: addresses the baseline uses, and whole address values of ``records``."""
    found = {v for s in (baseline.steps if baseline else ()) for v in _strings(s.arguments)
             if _ADDRESS.match(v.strip())}
    found.update(v.strip() for record in records for v in _strings(record)
                 if _ADDRESS.match(v.strip()))
    return {v.lower() for v in found}


def match_steps(plan: Plan, baseline: Plan | None) -> dict[str, Step]:
    """B2: plan step id → the baseline step it stands for, one-to-one. A plan step missing
    from the result is novel."""
    if baseline is None:
        return {}
    free = list(baseline.steps)
    matched: dict[str, Step] = {}
    for step in plan.steps:
        same = next((b for b in free if (b.id, b.function, b.tool)
                     == (step.id, step.function, step.tool)), None)
        if same is not None:
            matched[step.id] = same
            free.remove(same)
    for step in plan.steps:
        if step.id in matched:
            continue
        same = next((b for b in free if (b.function, b.tool) == (step.function, step.tool)),
                    None)
        if same is not None:
            matched[step.id] = same
            free.remove(same)
    return matched


def departs(step: Step, base: Step, targets: Sequence[str]) -> str | None:
    """How a matched step departs from its baseline step in a way that needs a person:
    another target, or a bigger number. None when it does not."""
    for name in targets:
        if name in base.arguments and step.arguments.get(name) != base.arguments[name]:
            return f"acts on {name}={step.arguments.get(name)!r}, not {base.arguments[name]!r}"
    for name, value in step.arguments.items():
        before = base.arguments.get(name)
        if _number(value) and _number(before) and value > before:
            return f"asks for {name}={value:g}, more than the playbook's {before:g}"
    return None


def risks(plan: Plan, baseline: Plan | None, tools: ToolPort) -> dict[str, Risk]:
    """B2: step id → its risk, from the matching over the whole plan (a novel step, an
    unknown tool: ``high``)."""
    playbook: dict[tuple[str, str], Risk] = {}
    for base in baseline.steps if baseline else ():
        pair = (base.function, base.tool)
        if pair not in playbook or base.risk.rank > playbook[pair].rank:
            playbook[pair] = base.risk
    matched = match_steps(plan, baseline)
    out: dict[str, Risk] = {}
    for step in plan.steps:
        if step.id not in matched:
            out[step.id] = Risk.HIGH
            continue
        try:
            spec = tools.spec(step.tool)
        except NotFoundError:
            out[step.id] = Risk.HIGH
            continue
        if departs(step, matched[step.id], spec.targets):
            out[step.id] = Risk.HIGH
            continue
        own = spec.risk
        given = playbook[(step.function, step.tool)]
        out[step.id] = own if own.rank > given.rank else given
    return out


def assign_risks(plan: Plan, baseline: Plan | None, tools: ToolPort) -> Plan:
    """The plan with every step's risk set by B2, whatever risk it carried."""
    found = risks(plan, baseline, tools)
    return plan.model_copy(update={"steps": tuple(
        s.model_copy(update={"risk": found.get(s.id, Risk.HIGH)}) for s in plan.steps)})


def check_bounds(plan: Plan, baseline: Plan | None, prediction: Prediction, tools: ToolPort,
                 *, strict: bool, max_extra_steps: int = 0, max_growth: float = 2.0,
                 addresses: set[str] | None = None) -> BoundsReport:
    """Every bound the plan breaks, and notes on novel steps. ``addresses`` (B4) defaults
    to those of the baseline and the prediction's features."""
    report = BoundsReport()
    allowed_addresses = (addresses if addresses is not None
                         else known_addresses(baseline, prediction.features))
    pairs = {(s.function, s.tool) for s in baseline.steps} if baseline else set()
    pins = pinned_arguments(baseline, prediction)
    matched = match_steps(plan, baseline)
    for step in plan.steps:
        where = f"steps.{step.id}"
        try:
            if not tools.spec(step.tool).side_effects:
                report.problems.append(f"{where}.tool: {step.tool} only reads; lookups are not "
                                       "plan steps")
        except NotFoundError:
            pass  # the guard reports unknown tools
        for arg, allowed in pins.get(step.tool, {}).items():
            value = step.arguments.get(arg)
            if value is not None and value not in allowed:
                report.problems.append(f"{where}.arguments.{arg}: must be "
                                       f"{' or '.join(sorted(map(repr, allowed)))} (the predicted "
                                       f"entity's identifier), not {value!r}")
        for value in _strings(step.arguments):
            if _ADDRESS.match(value.strip()) and value.strip().lower() not in allowed_addresses:
                report.problems.append(f"{where}.arguments: {value.strip()!r} is not an address "
                                       "the playbook or the entity's records use")
        if step.id in matched:
            try:
                departure = departs(step, matched[step.id], tools.spec(step.tool).targets)
            except NotFoundError:
                departure = None
            if departure:
                report.novel.append(step.id)
                report.notes.append(f"{where}: {departure}; risk set to high (a person must "
                                    "approve)")
            continue
        report.novel.append(step.id)
        if (step.function, step.tool) not in pairs:
            if strict:
                report.problems.append(f"{where}: {step.function} with {step.tool} is not in the "
                                       "playbook's plan (hybrid plans use only its function/tool "
                                       "pairs)")
            else:
                report.notes.append(f"{where}: {step.function} with {step.tool} is not in the "
                                    "playbook's plan; risk set to high (a person must approve)")
        else:
            report.notes.append(f"{where}: a {step.function} step with {step.tool} beyond the "
                                "playbook's own (each of those is matched to another step); "
                                "risk set to high (a person must approve)")
    if strict and baseline is not None:
        report.problems.extend(_strict_problems(plan, baseline, max_extra_steps, max_growth))
    return report


def _strict_problems(plan: Plan, baseline: Plan, max_extra_steps: int,
                     max_growth: float) -> list[str]:
    problems: list[str] = []
    ours = {s.id: s for s in plan.steps}
    by_id = {s.id: s for s in baseline.steps}
    for step in plan.steps:
        base = by_id.get(step.id) or next((b for b in baseline.steps if b.tool == step.tool), None)
        for arg, value in step.arguments.items() if base else ():
            before = base.arguments.get(arg)
            if (_number(value) and _number(before) and value > before
                    and value > before * max_growth):
                problems.append(f"steps.{step.id}.arguments.{arg}: {value:g} is more than "
                                f"{max_growth:g} times the playbook's {before:g}")
    for base in baseline.steps:
        step = ours.get(base.id)
        if step is not None and (step.function, step.tool) != (base.function, base.tool):
            problems.append(f"steps.{base.id}: keeps the playbook step's id, so it must stay "
                            f"{base.function} with {base.tool}")
    limit = len(baseline.steps) + max_extra_steps
    if len(plan.steps) > limit:
        problems.append(f"steps: {len(plan.steps)} steps, over the bound of {limit} (the "
                        f"playbook's {len(baseline.steps)} + {max_extra_steps} added)")
    for base in baseline.steps:
        if base.id not in ours:
            continue
        reachable = _ancestors(plan, base.id)
        for dep in base.depends_on:
            if dep in ours and dep not in reachable:
                problems.append(f"steps.{base.id}.depends_on: must keep {dep!r} (the playbook "
                                "orders these steps)")
    return problems


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _ancestors(plan: Plan, step_id: str) -> set[str]:
    by_id = {s.id: s for s in plan.steps}
    seen: set[str] = set()
    frontier = list(by_id[step_id].depends_on)
    while frontier:
        current = frontier.pop()
        if current in seen or current not in by_id:
            continue
        seen.add(current)
        frontier.extend(by_id[current].depends_on)
    return seen
