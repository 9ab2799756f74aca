"""The plan cache: predictions that look alike get the same plan structure without a
new LLM call.

Signature (SHA-256 of): planner, prompt version, prediction kind, playbook, the entity's
class (the first of the features ``segment``, ``asset_class``, ``category``, ``class``;
else the entity type), the baseline's step ids (which branch of the playbook applies),
and the names of the ``top_features`` largest explanation attributions (by absolute
weight, ties by name). A prompt change therefore starts a new cache.

Adaptation is deterministic. For each cached step and argument:

- an argument the cached plan kept from its own baseline takes the new baseline's value
  (re-rendered by the playbook for the new prediction);
- a number the model changed keeps the model's ratio to the baseline (e.g. 15 where the
  playbook said 20 becomes 0.75 times the new playbook value, rounded to the same type);
- any other value keeps the model's text with the old prediction's identifiers (entity
  id, currency, id-like features) replaced by the new prediction's.

An identifier that has no counterpart in the new prediction makes the entry unusable
(a miss). The adapted plan is guarded and bounds-checked again like any draft.
"""

from __future__ import annotations

from typing import Any

from agent.hashing import digest
from agent.llm._bounds import identifiers
from agent.models import Plan, Prediction, Step

__all__ = ["CLASS_FEATURES", "adapt", "cache_body", "signature"]

CLASS_FEATURES = ("segment", "asset_class", "category", "class")
BODY_VERSION = 1


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


def cache_body(plan: Plan, baseline: Plan | None, prediction: Prediction) -> dict[str, Any]:
    labels = {label: value for value, label in identifiers(prediction).items()}
    return {"version": BODY_VERSION, "plan": plan.model_dump(mode="json"),
            "baseline": baseline.model_dump(mode="json") if baseline else None,
            "identifiers": labels}


def adapt(body: dict[str, Any], prediction: Prediction, baseline: Plan | None, *,
          decision_id: str, version: int) -> Plan | None:
    """The cached plan re-targeted at ``prediction``; None when it cannot be."""
    if body.get("version") != BODY_VERSION:
        return None
    cached = Plan.model_validate(body["plan"])
    old_base = Plan.model_validate(body["baseline"]) if body.get("baseline") else None
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
            adapted = _argument(value, old_ref.arguments.get(arg) if old_ref else None,
                                new_ref.arguments.get(arg) if new_ref else None, replacements)
            if adapted is _MISS:
                return None
            arguments[arg] = adapted
        cost, value_ = step.expected_cost, step.expected_value
        if new_ref is not None:
            cost, value_ = new_ref.expected_cost, new_ref.expected_value
        steps.append(step.model_copy(update={"arguments": arguments, "expected_cost": cost,
                                             "expected_value": value_}))
    if any(_mentions(s, old_labels.values(), replacements) for s in steps):
        return None
    return cached.model_copy(update={"decision_id": decision_id, "version": version,
                                     "steps": tuple(steps)})


_MISS = object()


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
    text = _text(step.arguments)
    return any(old not in replacements and old in text for old in old_values)


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(_text(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(_text(v) for v in value)
    return str(value)
