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
about, read from the same declared targets (the approval service sends such a step to
its function's approvers whatever policy says).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from decisionops.agent.errors import InvalidInputError, NotFoundError, ToolCallError
from decisionops.agent.models import Plan, Step
from decisionops.agent.ports import TargetLookup, ToolPort

__all__ = ["TargetCheck", "acts_elsewhere", "check_targets"]


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


_IDENTIFIER = ("_id", "_number", "_no", "_ref", "_key", "_uuid")
"""Endings that make an argument an identifier of a thing (``account_id``,
``card_number``)."""


def _kind(name: str, kinds: Sequence[str]) -> tuple[str, bool]:
    """What kind of thing a target argument names, and whether it is an identifier:
    ``account_id`` an account, ``to_site`` and ``from_site`` a site, ``card_number`` a
    card (on a prediction about a card); ``team`` a team, not an identifier."""
    for prefix in ("from_", "to_"):
        name = name.removeprefix(prefix)
    for kind in kinds:  # the prediction's own type or one of its parts, however suffixed
        if name == kind or name.startswith(f"{kind}_"):
            return kind, True
    for suffix in _IDENTIFIER:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name.removesuffix(suffix), True
    return name, False


def acts_elsewhere(step_id: str, arguments: Mapping[str, Any], targets: Sequence[str],
                   entity: tuple[str, str]) -> str | None:
    """Why a step acts on something other than the prediction's entity ``(type, id)``,
    from the arguments its tool declares as targets; None when it acts on the entity (or
    names nothing the prediction could be about: a channel, a currency).

    - A target of the entity's own type (``account_id``, ``account_number`` or
      ``account`` on an account) must name it.
    - A composite type names its parts, joined in its id by ``@`` (``sku_site`` is
      ``SKU@SITE``): a step naming a sku or a site must name the prediction's among
      them (a transfer's source is another site; its destination is the prediction's);
      an id that does not name the parts cannot vouch for any.
    - An identifier of another type (``account_id`` on a prediction about a customer;
      any name ending ``_id``, ``_number``, ``_no``, ``_ref``, ``_key`` or ``_uuid``) is
      something the prediction did not score, unless it names the entity itself.
    """
    kind, own = entity
    parts = kind.split("_") if "_" in kind else []
    named: dict[str, list[tuple[str, str]]] = {}
    identifiers: set[str] = set()
    for name in targets:
        value = arguments.get(name)
        if value is not None:
            of, identifier = _kind(name, [kind, *parts])
            named.setdefault(of, []).append((name, str(value)))
            if identifier:
                identifiers.add(name)
    values = own.split("@")
    located = dict(zip(parts, values, strict=True)) if (
        parts and len(values) == len(parts) and all(values)) else None
    for part_kind, pairs in named.items():
        said = ", ".join(f"{n}={v}" for n, v in pairs)
        if part_kind == kind:
            for name, value in pairs:
                if value != own:
                    return (f"step {step_id} acts on {name}={value}, not on {own} (the "
                            f"prediction's {kind})")
        elif part_kind in parts:
            if located is None:
                shape = "@".join(p.upper() for p in parts)
                return (f"step {step_id} acts on {said}; the prediction's entity {own} does "
                        f"not name a {' and a '.join(parts)} ({kind}: {shape})")
            if all(value != located[part_kind] for _, value in pairs):
                return (f"step {step_id} acts on {said}, not on {located[part_kind]} (the "
                        f"prediction's {part_kind})")
        elif any(name in identifiers and value != own for name, value in pairs):
            return f"step {step_id} acts on {said}; the prediction is about {kind} {own}"
    return None
