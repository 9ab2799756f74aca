"""Check before asking: confirm that what a plan acts on exists before anyone approves it.

Each tool declares how its targets are looked up (``ToolSpec.lookups``: a read-only tool
and the call arguments it takes). ``check_targets`` runs every distinct lookup of a plan
once. A lookup that fails for good (``unknown account 'ACC-404'``) is a problem naming
the entity: the decision goes to a person, no approver is asked. So does a step that
disagrees with what its lookup read (``TargetLookup.matches``: a credit's currency must be
the account's billing currency; ``at_least``: a transfer cannot ask for more than the
source has available). A lookup that cannot be answered right now (a retryable failure)
does not hold the plan back: approvers are asked as before and the step's own call still
fails on an unknown target; it is reported as unchecked. What is not here: where the
graph runs it (``graphs.nodes.check``).

``acts_elsewhere``: whether a step acts on something other than what the prediction is
about (``Subject``: its entity and what its features name), read from the same declared
targets (the approval service sends such a step to its function's approvers whatever
policy says).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from decisionops.agent.errors import InvalidInputError, NotFoundError, ToolCallError
from decisionops.agent.models import Plan, Step
from decisionops.agent.ports import TargetLookup, ToolPort

__all__ = ["Subject", "TargetCheck", "acts_elsewhere", "check_targets"]


@dataclass(frozen=True)
class TargetCheck:
    unknown: list[str] = field(default_factory=list)
    """One line per target that does not exist (or cannot be read, for good): the
    lookup's own message naming the entity, the lookup tool and the steps; and one per
    step that disagrees with what the lookup read (a credit in another currency than the
    account's)."""
    unchecked: list[str] = field(default_factory=list)
    """Lookups that could not be answered now (retryable failures)."""

    @property
    def reason(self) -> str:
        """Why the decision needs a person (its ``decisions.error``)."""
        return "; ".join(self.unknown)


def check_targets(plan: Plan, tools: ToolPort) -> TargetCheck:
    """Run each distinct lookup the plan's steps declare, once; then check each step
    against what its lookup read (``TargetLookup.matches``, ``at_least``)."""
    wanted: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[Step, TargetLookup]]] = {}
    for step in plan.steps:
        for lookup in tools.spec(step.tool).lookups:
            arguments = lookup.arguments_for(step.arguments)
            if arguments is None:
                continue
            key = (lookup.tool, tuple(sorted((k, str(v)) for k, v in arguments.items())))
            wanted.setdefault(key, []).append((step, lookup))
    result = TargetCheck()
    for (tool, arguments), uses in wanted.items():
        steps = [step.id for step, _ in uses]
        where = f"looked up with {tool} for step{'s' * (len(steps) > 1)} {', '.join(steps)}"
        try:
            read = tools.call(tool, dict(arguments),
                              idempotency_key=f"lookup:{plan.decision_id}").result
        except ToolCallError as exc:
            (result.unchecked if exc.retryable else result.unknown).append(
                f"{exc.message} ({where})")
            continue
        except (InvalidInputError, NotFoundError) as exc:
            result.unknown.append(f"{exc.message} ({where})")
            continue
        for step, lookup in uses:
            target = ", ".join(str(v) for v in (lookup.arguments_for(step.arguments) or {})
                               .values())
            for field_name, argument in lookup.matches.items():
                said, actual = step.arguments.get(argument), read.get(field_name)
                if said is not None and actual is not None and str(said) != str(actual):
                    result.unknown.append(f"step {step.id} says {argument} {said}; {target} "
                                          f"has {field_name} {actual} ({tool})")
            for field_name, argument in lookup.at_least.items():
                said, actual = step.arguments.get(argument), read.get(field_name)
                if (isinstance(said, int | float) and isinstance(actual, int | float)
                        and said > actual):
                    result.unknown.append(f"step {step.id} asks {argument} {said}; {target} "
                                          f"has {field_name} {actual} ({tool})")
    return result


_QUALIFIERS = frozenset({"currency"})
"""Target names that never name an entity, whatever the tool says."""


@dataclass(frozen=True)
class Subject:
    """What a prediction is about: its entity ``(type, id)`` and the values its features
    name (a stock-out's surplus site, a failing asset's spare part)."""

    entity_type: str
    entity_id: str
    named: frozenset[str] = frozenset()

    @classmethod
    def of(cls, prediction: Any) -> Subject:
        """From a ``Prediction`` or its JSON."""
        get = prediction.get if isinstance(prediction, Mapping) else (
            lambda key: getattr(prediction, key, None))
        named: set[str] = set()
        for value in (get("features") or {}).values():
            for item in value if isinstance(value, list | tuple) else (value,):
                if isinstance(item, str | int) and not isinstance(item, bool) and str(item):
                    named.add(str(item))
        return cls(str(get("entity_type")), str(get("entity_id")), frozenset(named))


def _snake(name: str) -> str:
    """``accountId`` → ``account_id``, ``ACCOUNT_ID`` → ``account_id``."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _values(value: Any) -> list[str]:
    """Every value an argument holds: itself, each item of a list, each value of an
    object (nested), as text."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [v for item in value.values() for v in _values(item)]
    if isinstance(value, list | tuple | set | frozenset):
        return [v for item in value for v in _values(item)]
    return [str(value)]


def acts_elsewhere(step_id: str, arguments: Mapping[str, Any], targets: Sequence[str],
                   subject: Subject, *, qualifiers: Sequence[str] = ()) -> str | None:
    """Why a step acts on something other than what the prediction is about, read from
    the arguments its tool declares as targets; None when every target names the
    prediction's entity or something its features name.

    - Every target value (each item of a list, each value of an object) must be the
      entity's id, or a value the prediction's features name, whatever the argument is
      called (``account_id``, ``accountId``, ``card_number``, ``iban``, ``customer``).
    - A composite type names its parts, joined in its id by ``@`` (``sku_site`` is
      ``SKU@SITE``): a target of a part (``sku``, ``site``, ``to_site``) must name the
      prediction's; a source (``from_site``) may be another, as long as the step names
      the prediction's too (a transfer *to* the site at risk); an id that does not name
      its parts cannot vouch for any.
    - Not compared: the tool's ``qualifiers`` (a message's channel and recipient, a team
      to page) and a ``currency``.
    """
    kind, own = subject.entity_type, subject.entity_id
    parts = kind.split("_") if "_" in kind else []
    pieces = own.split("@")
    located = dict(zip(parts, pieces, strict=True)) if (
        parts and len(pieces) == len(parts) and all(pieces)) else None
    sources: dict[str, list[tuple[str, str]]] = {}
    named_part: set[str] = set()
    for name in targets:
        values = _values(arguments.get(name))
        if name in qualifiers or not values:
            continue
        norm = _snake(name)
        bare = norm.removeprefix("from_").removeprefix("to_")
        if bare in _QUALIFIERS:
            continue
        said = f"{name}={', '.join(values)}"
        part = next((p for p in parts if bare == p or bare.startswith(f"{p}_")), None)
        if part is not None:
            if located is None:
                shape = "@".join(p.upper() for p in parts)
                return (f"step {step_id} acts on {said}; the prediction's entity {own} does "
                        f"not name a {' and a '.join(parts)} ({kind}: {shape})")
            if norm.startswith("from_"):
                sources.setdefault(part, []).extend((name, v) for v in values)
                continue
            named_part.add(part)
            for value in values:
                if value != located[part]:
                    return (f"step {step_id} acts on {name}={value}, not on {located[part]} "
                            f"(the prediction's {part})")
            continue
        for value in values:
            if value != own and value not in subject.named:
                if bare == kind or bare.startswith(f"{kind}_"):
                    return (f"step {step_id} acts on {name}={value}, not on {own} (the "
                            f"prediction's {kind})")
                return (f"step {step_id} acts on {name}={value}; the prediction is about "
                        f"{kind} {own} and does not name it")
    for part, pairs in sources.items():
        if part in named_part:
            continue  # a source beside the prediction's own: a transfer to it
        for name, value in pairs:
            if value != located[part] and value not in subject.named:  # type: ignore[index]
                return (f"step {step_id} acts on {name}={value}, not on "
                        f"{located[part]} (the prediction's {part})")  # type: ignore[index]
    return None
