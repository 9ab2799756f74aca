"""The plan cache: predictions that look alike get the same plan structure without a
new LLM call.

Signature (SHA-256 of): planner, prompt version, prediction kind, playbook, the entity's
class (the first of the features ``segment``, ``asset_class``, ``category``, ``class``;
else the entity type), the baseline's step ids (which branch of the playbook applies:
the playbook's ``when`` conditions already split predictions where the response must
differ), and the names of the ``top_features`` largest explanation attributions (by
absolute weight, ties by name; none by default). A prompt change starts a new cache.

Drivers are matched by what the plan says, not split on up front. When an entry is
stored, the explanation features that text the model wrote itself names (an argument
that is not its baseline's value, a step or plan rationale; ``price_increase_pct`` or
"price increase") are its *drivers*, and are part of its key. A lookup tries the keys
for every subset of the new prediction's ``DRIVER_DEPTH`` largest attributions, so an
entry is found only when each driver its plan speaks to is one of the new prediction's:
a plan tailored to a price-driven churn is not reused for a support-driven one, while
plans that keep to the playbook's wording (no drivers) are reused across all.

Adaptation is deterministic. For each cached step and argument:

- an argument the cached plan kept from its own baseline takes the new baseline's value
  (re-rendered by the playbook for the new prediction);
- a number the model changed keeps the model's ratio to the baseline (e.g. 15 where the
  playbook said 20 becomes 0.75 times the new playbook value, rounded to the same type);
- any other value keeps the model's text with the old prediction's identifiers (entity
  id, currency, id-like features) replaced by the new prediction's; so do the plan's
  and the steps' rationales.

An identifier that has no counterpart in the new prediction makes the entry unusable
(a miss). The adapted plan is guarded and bounds-checked again like any draft, against
today's policies and this prediction's baseline; the planner treats an adapted plan
with a step the playbook would not propose (novel, bound B2) as a miss.

Nor do the entity's records (trial 30: a model that wrote one customer's name, ARR and
account manager into a support ticket had that text re-used, auto-approved, on other
customers' tickets). The values of the records the model was shown (the prompt's
lookups, and what its own lookups returned) that occur in text it wrote are recorded
with the entry (*records*: a dotted path → value; text of at least ``MIN_QUOTED``
characters, numbers of at least ``MIN_QUOTED_DIGITS`` digits); the entry serves only a
prediction whose entity's prompt lookups have the same value at every one of those
paths (what a model looked up itself is not known before a call: such an entry serves
no other entity).

Feature text does not cross predictions. Text the model wrote is carried over with only
identifiers swapped, so when an entry is stored, the source prediction's feature values
that occur in its plan's arguments or rationales are recorded with it (*quoted*:
strings that are not identifiers, at least ``MIN_QUOTED`` characters, compared without
regard to case or spacing). The entry serves only a prediction whose features have the
same values for all of those: a note an injected instruction put into one plan never
reaches another entity's ticket.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from itertools import combinations
from typing import Any

from decisionops.agent.hashing import digest
from decisionops.agent.llm._bounds import identifiers
from decisionops.agent.models import Plan, Prediction, Step

__all__ = ["BODY_VERSION", "CLASS_FEATURES", "DRIVER_DEPTH", "MIN_QUOTED", "MIN_QUOTED_DIGITS",
           "Unfit", "adapt", "cache_body", "driver_phrases", "entry_key", "lookup_keys",
           "named_drivers", "quoted_features", "quoted_records", "signature"]

CLASS_FEATURES = ("segment", "asset_class", "category", "class")
DRIVER_DEPTH = 3
"""Attributions (by absolute weight) that count as a prediction's drivers."""
BODY_VERSION = 4
"""3: entries record the feature text their plan quotes; 4: and the record values (older
ones are not served)."""
MIN_QUOTED = 8
"""Feature text shorter than this is too common to count as quoted."""
MIN_QUOTED_DIGITS = 4
"""A record's number with fewer digits than this (a count, a small percentage) is too
common to count as quoted."""


class Unfit(Exception):
    """A cache entry matched the signature but cannot serve this prediction (why)."""


def entity_class(prediction: Prediction) -> str:
    for name in CLASS_FEATURES:
        value = prediction.features.get(name)
        if isinstance(value, str) and value:
            return f"{name}={value}"
    return f"entity_type={prediction.entity_type}"


def top_features(prediction: Prediction, count: int) -> list[str]:
    ranked = sorted(prediction.explanation.items(), key=lambda kv: (-abs(kv[1]), kv[0]))
    return [name for name, _ in ranked[:count]]


def signature(prediction: Prediction, baseline: Plan | None, *, planner: str,
              prompt_version: str, top: int) -> str:
    return digest({"planner": planner, "prompt": prompt_version, "kind": prediction.kind,
                   "playbook": baseline.playbook if baseline else None,
                   "class": entity_class(prediction),
                   "structure": [s.id for s in baseline.steps] if baseline else [],
                   "drivers": top_features(prediction, top)})


def entry_key(base: str, drivers: Iterable[str]) -> str:
    """The key of an entry under signature ``base`` whose plan speaks to ``drivers``."""
    return digest({"signature": base, "drivers": sorted(set(drivers))})


def lookup_keys(base: str, prediction: Prediction) -> list[str]:
    """Every key an entry that fits ``prediction`` can have (its drivers ⊆ the
    prediction's largest ``DRIVER_DEPTH``), the fewest drivers first."""
    top = top_features(prediction, DRIVER_DEPTH)
    return [entry_key(base, subset) for size in range(len(top) + 1)
            for subset in combinations(top, size)]


def named_drivers(plan: Plan, baseline: Plan | None, prediction: Prediction) -> list[str]:
    """The prediction's explanation features that text the model wrote in ``plan`` names."""
    text = f" {_authored(plan, baseline)} "
    return sorted(name for name in prediction.explanation
                  if any(f" {_words(phrase)}" in text for phrase in driver_phrases(name)))


def quoted_features(plan: Plan, prediction: Prediction) -> dict[str, Any]:
    """Features of ``prediction`` whose text occurs in ``plan``'s arguments or rationales
    (identifiers aside; they are swapped): name → value (as JSON)."""
    ids = identifiers(prediction)
    text = _folded(" | ".join([plan.rationale, *(s.rationale for s in plan.steps),
                               *(_text(s.arguments) for s in plan.steps)]))
    features = prediction.model_dump(mode="json")["features"]
    return {name: value for name, value in sorted(features.items())
            if any(piece not in ids and len(piece.strip()) >= MIN_QUOTED
                   and _folded(piece) in text for piece in _pieces(value))}


def quoted_records(plan: Plan, baseline: Plan | None, prediction: Prediction,
                   records: Any) -> dict[str, Any]:
    """Values of ``records`` (what the model was shown of the entity: the prompt's
    lookups as ``{"context": …}``, its own lookups' results as ``{"looked_up": …}``) that
    occur in text of ``plan`` the model wrote (not its baseline's), identifiers aside
    (they are swapped): dotted path → value."""
    ids = identifiers(prediction)
    text = f" {_authored(plan, baseline)} "
    quoted = {}
    for path, value in _leaves(records, ""):
        if isinstance(value, str):
            words = _words(value)
            if value in ids or len(words) < MIN_QUOTED or f" {words} " not in text:
                continue
        elif isinstance(value, int | float) and not isinstance(value, bool):
            forms = {_words(f"{value:g}"), _words(str(value))}
            if not any(sum(c.isdigit() for c in form) >= MIN_QUOTED_DIGITS
                       and f" {form} " in text for form in forms):
                continue
        else:
            continue
        quoted[path] = value
    return quoted


def _leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}.{index}")
    else:
        yield path, value


def cache_body(plan: Plan, baseline: Plan | None, prediction: Prediction,
               records: Any = None) -> dict[str, Any]:
    """The entry stored for ``plan``; ``records``: what the model was shown of the
    entity (``quoted_records``)."""
    labels = {label: value for value, label in identifiers(prediction).items()}
    return {"version": BODY_VERSION, "plan": plan.model_dump(mode="json"),
            "baseline": baseline.model_dump(mode="json") if baseline else None,
            "identifiers": labels, "drivers": named_drivers(plan, baseline, prediction),
            "quoted": quoted_features(plan, prediction),
            "records": quoted_records(plan, baseline, prediction, records or {})}


def _pieces(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _pieces(item)
    elif isinstance(value, list):
        for item in value:
            yield from _pieces(item)


def _folded(text: str) -> str:
    return " ".join(text.lower().split())


_UNIT = re.compile(r"^(?:\d+[a-z]?|pct|percent|ratio|count|c|f|kg|h|d|hours|days|weeks|months)$")


def driver_phrases(name: str) -> set[str]:
    """Ways text may name the explanation feature ``name``, lower case: the name itself,
    its words, and its first two words without trailing units (``price_increase_pct`` →
    ``price increase``; ``bearing_temp_delta_c`` → ``bearing temp``, which also finds
    "bearing temperature")."""
    words = [w for w in re.split(r"[\W_]+", name.lower()) if w]
    while len(words) > 1 and _UNIT.match(words[-1]):
        words.pop()
    phrases = {name.lower(), " ".join(words)}
    if len(words) >= 2:
        phrases.add(" ".join(words[:2]))
    return {p for p in phrases if len(p) >= 4}


def _authored(cached: Plan, old_base: Plan | None) -> str:
    """The text of ``cached`` the model wrote itself (not copied from its baseline)."""
    parts = [cached.rationale]
    for step in cached.steps:
        ref = _counterpart(old_base, step)
        if ref is None or step.rationale != ref.rationale:
            parts.append(step.rationale)
        for arg, value in step.arguments.items():
            if ref is None or value != ref.arguments.get(arg):
                parts.append(_text(value))
    return _words(" ".join(parts))


def _words(text: str) -> str:
    return re.sub(r"[\W_]+", " ", text.lower()).strip()


def adapt(body: dict[str, Any], prediction: Prediction, baseline: Plan | None, *,
          decision_id: str, version: int, context: Any = None) -> Plan:
    """The cached plan re-targeted at ``prediction``; raises :class:`Unfit` when it
    cannot be. ``context``: the prompt's lookups for ``prediction`` (its entity's
    records, as a model would be shown them)."""
    if body.get("version") != BODY_VERSION:
        raise Unfit("the entry was written by an older version")
    cached = Plan.model_validate(body["plan"])
    old_base = Plan.model_validate(body["baseline"]) if body.get("baseline") else None
    ours = top_features(prediction, DRIVER_DEPTH)
    foreign = [name for name in body.get("drivers", []) if name not in ours]
    if foreign:
        raise Unfit(f"the cached plan speaks to the driver {foreign[0]!r}, which is not one "
                    f"of this prediction's")
    features = prediction.model_dump(mode="json")["features"]
    other = [name for name, value in body.get("quoted", {}).items()
             if features.get(name) != value]
    if other:
        raise Unfit(f"the cached plan quotes the text of its source's feature {other[0]!r}, "
                    "which this prediction does not share")
    ours_now = dict(_leaves({"context": context or {}}, ""))
    for path, value in body.get("records", {}).items():
        if path not in ours_now or ours_now[path] != value:
            raise Unfit(f"the cached plan quotes its source entity's record {path!r}, which "
                        "this prediction's entity does not share")
    new_labels = {label: value for value, label in identifiers(prediction).items()}
    old_labels: dict[str, str] = body.get("identifiers", {})
    replacements = {old: new_labels[label] for label, old in old_labels.items()
                    if label in new_labels}
    steps = []
    for step in cached.steps:
        old_ref = _counterpart(old_base, step)
        new_ref = _counterpart(baseline, step)
        arguments = {}
        for arg, value in step.arguments.items():
            arguments[arg] = _argument(value, old_ref.arguments.get(arg) if old_ref else None,
                                       new_ref.arguments.get(arg) if new_ref else None,
                                       replacements)
        cost, value_ = step.expected_cost, step.expected_value
        if new_ref is not None:
            cost, value_ = new_ref.expected_cost, new_ref.expected_value
        steps.append(step.model_copy(update={
            "arguments": arguments, "rationale": _replace(step.rationale, replacements),
            "expected_cost": cost, "expected_value": value_}))
    rationale = _replace(cached.rationale, replacements)
    if (any(_mentions(s, old_labels.values(), replacements) for s in steps)
            or any(old not in replacements and old in rationale for old in old_labels.values())):
        raise Unfit("the cached plan names an identifier this prediction has no counterpart for")
    return cached.model_copy(update={"decision_id": decision_id, "version": version,
                                     "rationale": rationale, "steps": tuple(steps)})


def _counterpart(baseline: Plan | None, step: Step) -> Step | None:
    if baseline is None:
        return None
    for base in baseline.steps:
        if base.id == step.id and base.tool == step.tool:
            return base
    return next((b for b in baseline.steps if b.tool == step.tool), None)


def _argument(value: Any, old: Any, new: Any, replacements: dict[str, str]) -> Any:
    if old is not None and value == old:
        return new if new is not None else _replace(value, replacements)
    numeric = (int, float)
    if (isinstance(value, numeric) and isinstance(old, numeric) and isinstance(new, numeric)
            and not isinstance(value, bool) and old):
        scaled = new * (value / old)
        return round(scaled) if isinstance(value, int) else round(scaled, 2)
    return _replace(value, replacements)


def _replace(value: Any, replacements: dict[str, str]) -> Any:
    if isinstance(value, str):
        for old, new in sorted(replacements.items(), key=lambda kv: -len(kv[0])):
            value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {k: _replace(v, replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, replacements) for v in value]
    return value


def _mentions(step: Step, old_values: Any, replacements: dict[str, str]) -> bool:
    """True if an old identifier without a replacement is still in the step."""
    text = f"{_text(step.arguments)} {step.rationale}"
    return any(old not in replacements and old in text for old in old_values)


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(_text(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(_text(v) for v in value)
    return str(value)
