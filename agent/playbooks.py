"""Playbooks: declarative response templates per prediction kind.

A playbook says when a prediction of its kind is worth acting on (trigger), which steps
each function takes (tool, argument templates, dependencies, risk), and whether the plan
is all-or-nothing. Templates are Jinja2 expressions evaluated in a sandbox with strict
undefined variables; a ``{{ … }}`` that spans the whole value keeps its native type.

Bundled playbooks live in ``agent/data/playbooks``; a user folder adds to them and
replaces any bundled playbook of the same name. Everything is validated on load, with
errors naming file, playbook and field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from jinja2 import StrictUndefined, TemplateError, Undefined, UndefinedError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from decisionops.agent._revision import Revisable
from decisionops.agent._urgency import Urgency, signals
from decisionops.agent._yaml import load_yaml, validate_config
from decisionops.agent.errors import ConfigError, InvalidInputError
from decisionops.agent.models import Plan, Prediction, Risk, Step, dependency_waves

__all__ = ["Playbook", "PlaybookBook", "PlaybookStep", "Trigger", "load_playbooks"]

_WHOLE = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.S)


class _MissingValue(UndefinedError):
    """A template used a value the prediction does not carry: which object, which name."""

    def __init__(self, owner: Any, name: str | None, message: str) -> None:
        super().__init__(message)
        self.owner = owner
        self.name = name


class _Missing(StrictUndefined):
    """Strict undefined whose error remembers what was looked up where, so the author of
    the prediction is told ``features.site`` rather than Jinja's "'dict object' has no
    attribute 'site'"."""

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> Any:
        raise _MissingValue(self._undefined_obj, self._undefined_name, self._undefined_message)


_ENV = SandboxedEnvironment(undefined=_Missing, autoescape=False)
_ENV.globals.update(min=min, max=max, round=round, int=int, float=float, abs=abs)


class Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    min_score: float = Field(ge=0.0, le=1.0)
    min_expected_value: float = Field(0.0, ge=0.0)
    cooldown_days: float = Field(30.0, ge=0.0)


class PlaybookStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    function: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    tool: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")]
    arguments: dict[str, Any]
    depends_on: tuple[str, ...] = ()
    risk: Risk = Risk.MEDIUM
    when: str | None = None
    """Jinja2 expression; the step is left out when it is false."""
    rationale: str = ""
    expected_cost: float | str = 0.0
    expected_value: float | str = 0.0


class Playbook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")]
    kind: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    version: int = Field(1, ge=1)
    description: str = ""
    priority: int = 100
    """Lower first, when several playbooks of one kind match."""
    match: str | None = None
    """Jinja2 expression over the prediction; None matches every prediction of the kind."""
    trigger: Trigger
    urgency: Urgency | None = None
    """When a prediction is urgent (horizon, criticality): templates read ``urgent``."""
    all_or_nothing: bool = False
    supersedes: tuple[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], ...] = ()
    """Kinds this playbook's open decisions take precedence over: a *newer* decision of
    one of them on the same entity is dropped (``agent.conflicts``)."""
    waits_for: tuple[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], ...] = ()
    """Kinds whose *older* open decisions on the same entity this playbook's decisions
    wait for (not routed, status ``waiting``) until those are finished."""
    revise: Revisable | None = None
    """What the playbook planner may change from approvers' revise feedback
    (``agent._revision``); None: nothing, and the re-plan says so."""
    steps: tuple[PlaybookStep, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Playbook:
        ids = [s.id for s in self.steps]
        for twice in sorted({i for i in ids if ids.count(i) > 1}):
            raise ValueError(f"steps: step id {twice!r} is used twice")
        for step in self.steps:
            for dep in step.depends_on:
                if dep not in ids:
                    raise ValueError(f"steps.{step.id}.depends_on: unknown step {dep!r}")
        try:
            dependency_waves({s.id: s.depends_on for s in self.steps})
        except ValueError as exc:
            # Every plan drafted from it would be refused; say so now, not per decision.
            stuck = str(exc).rpartition(": ")[2].split(", ")  # the steps it names
            looped = next((s.id for s in self.steps if s.id in stuck), self.steps[0].id)
            raise ValueError(f"steps.{looped}.depends_on: {exc}") from None
        if self.revise is not None:
            for problem in self.revise.problems({s.id: set(s.arguments) for s in self.steps}):
                raise ValueError(problem)
        for where, source in self._templates():
            try:
                _ENV.parse(source)
            except TemplateError as exc:
                raise ValueError(f"{where}: template {source!r}: {exc}") from exc
        return self

    def _templates(self) -> Iterable[tuple[str, str]]:
        """Every template, with where it is (``steps.<id>.arguments.<name>``…)."""
        if self.match:
            yield "match", "{{ " + self.match + " }}"
        for step in self.steps:
            where = f"steps.{step.id}"
            if step.when:
                yield f"{where}.when", "{{ " + step.when + " }}"
            for name, value in step.arguments.items():
                for source in _strings(value):
                    yield f"{where}.arguments.{name}", source
            for name in ("expected_cost", "expected_value"):
                if isinstance(value := getattr(step, name), str):
                    yield f"{where}.{name}", value

    def matches(self, prediction: Prediction) -> bool:
        return self.match is None or bool(_expression(self.match, self.context(prediction),
                                                      "match"))

    def context(self, prediction: Prediction) -> dict[str, Any]:
        """The names templates see: ``prediction``, ``features``, ``score``,
        ``expected_value``, and the urgency signals ``horizon_days``, ``criticality`` and
        ``urgent`` (``agent._urgency``). Values are data: a feature holding ``{{ … }}``
        is text, never a template."""
        return {**_context(prediction), **signals(prediction, self.urgency)}

    def draft(self, prediction: Prediction, *, decision_id: str, version: int = 1) -> Plan:
        """Fill the templates for ``prediction``: a deterministic plan."""
        ctx = self.context(prediction)
        kept: list[PlaybookStep] = []
        for step in self.steps:
            if step.when and not _expression(step.when, ctx, f"steps.{step.id}.when"):
                continue
            kept.append(step)
        kept_ids = {s.id for s in kept}
        steps = []
        for step in kept:
            where = f"steps.{step.id}"
            steps.append(Step(
                id=step.id, function=step.function, tool=step.tool,
                arguments={k: _render(v, ctx, f"{where}.arguments.{k}")
                           for k, v in step.arguments.items()},
                depends_on=tuple(d for d in step.depends_on if d in kept_ids),
                risk=step.risk, rationale=step.rationale,
                expected_cost=float(_render(step.expected_cost, ctx, f"{where}.expected_cost")),
                expected_value=float(_render(step.expected_value, ctx, f"{where}.expected_value")),
            ))
        return Plan(decision_id=decision_id, version=version, planner="playbook",
                    playbook=self.name, steps=tuple(steps), all_or_nothing=self.all_or_nothing,
                    rationale=self.description)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _context(prediction: Prediction) -> dict[str, Any]:
    data = prediction.model_dump(mode="json")
    return {"prediction": data, "features": data["features"], "score": prediction.score,
            "expected_value": prediction.expected_value or 0.0}


@lru_cache(maxsize=4096)
def _compiled_expression(source: str) -> Callable[..., Any]:
    return _ENV.compile_expression(source, undefined_to_none=False)


@lru_cache(maxsize=4096)
def _compiled_template(source: str) -> Any:
    return _ENV.from_string(source)


def _failed(exc: Exception, ctx: dict[str, Any], where: str) -> InvalidInputError:
    """Why a template could not be evaluated for this prediction, in the prediction's
    terms: the value it lacks (``features.site``), or what it could not compute from."""
    if isinstance(exc, _MissingValue):
        owner = next((name for name in ("features", "prediction") if exc.owner is ctx.get(name)),
                     None)
        if owner is not None and exc.name is not None:
            missing = f"{owner}.{exc.name}"
        elif exc.name is not None and exc.name not in ctx:
            missing = exc.name
        else:
            missing = None
        if missing is not None:
            return InvalidInputError(f"the prediction has no {missing}, which this playbook "
                                     f"needs here (add it to the prediction)", field=where)
        return InvalidInputError(f"the prediction lacks a value this playbook needs here: "
                                 f"{exc.message}", field=where)
    return InvalidInputError(f"could not be computed from the prediction: {exc}", field=where)


def _expression(source: str, ctx: dict[str, Any], where: str) -> Any:
    try:
        value = _compiled_expression(source)(**ctx)
    except (TemplateError, TypeError, ValueError, ArithmeticError) as exc:
        raise _failed(exc, ctx, where) from exc
    if isinstance(value, Undefined):
        # StrictUndefined raises only when used; a bare undefined value must fail too.
        raise _failed(_MissingValue(value._undefined_obj, value._undefined_name,
                                    value._undefined_message), ctx, where)
    return value


def _render(value: Any, ctx: dict[str, Any], where: str) -> Any:
    if isinstance(value, str) and "{{" in value:
        whole = _WHOLE.match(value)
        if whole and "{{" not in whole.group(1):
            return _expression(whole.group(1).strip(), ctx, where)
        try:
            return _compiled_template(value).render(**ctx)
        except (TemplateError, TypeError, ValueError, ArithmeticError) as exc:
            raise _failed(exc, ctx, where) from exc
    if isinstance(value, dict):
        return {k: _render(v, ctx, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, ctx, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


class PlaybookBook(BaseModel):
    """All loaded playbooks, by name."""

    model_config = ConfigDict(frozen=True)
    playbooks: dict[str, Playbook]
    own: dict[str, Path] = {}
    """The playbooks loaded from the user's ``playbooks_dir``, by name: the file each is
    in (``problems`` checks those, naming the file)."""
    off: dict[str, str] = {}
    """Bundled playbooks set aside by ``fitting``, and why."""

    def fitting(self, functions: Mapping[str, Sequence[str]]) -> PlaybookBook:
        """This book without the bundled playbooks the function policies (function → the
        tools it may use) leave no way to run: a step of a function they do not have, or
        a tool its function may not use. Every decision such a playbook started would end
        needs_human; set aside (``off``, with why), a prediction of its kind waits for a
        person from triage on (no playbook answers it), as it does for any kind no
        playbook answers. The user's own playbooks are checked at start instead
        (``problems``: refused, naming the step)."""
        off: dict[str, str] = {}
        for name, playbook in self.playbooks.items():
            if name in self.own:
                continue
            lacking = sorted({s.function for s in playbook.steps if s.function not in functions})
            barred = sorted({f"{s.function} may not use {s.tool}" for s in playbook.steps
                             if s.function in functions and s.tool not in functions[s.function]})
            if lacking or barred:
                off[name] = "; ".join(
                    ([f"the function policies have no {', '.join(lacking)}"] if lacking else [])
                    + barred)
        if not off:
            return self
        return PlaybookBook(playbooks={n: p for n, p in self.playbooks.items() if n not in off},
                            own=self.own, off={**self.off, **off})

    def problems(self, *, functions: Mapping[str, Sequence[str]],
                 parameters: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """What is wrong with the user's playbooks against the function policies
        (function → the tools it may use) and the registered tools (name → JSON schema of
        its arguments), every problem of every step: found at start, not on the first
        live prediction. A playbook never tried because one before it answers every
        prediction of its kind is a problem too."""
        found = []
        for name in sorted(self.own):
            playbook = self.playbooks[name]
            at = f"{self.own[name]}: playbook {name!r}"
            for step in playbook.steps:
                where = f"{at}: steps.{step.id}"
                if step.function not in functions:
                    found.append(f"{where}.function: unknown function {step.function!r} "
                                 f"(known: {', '.join(sorted(functions))})")
                if step.tool not in parameters:
                    found.append(f"{where}.tool: unknown tool {step.tool!r}")
                    continue
                if step.function in functions and step.tool not in functions[step.function]:
                    found.append(f"{where}.tool: {step.tool} is not allowed for "
                                 f"{step.function} (functions.yaml)")
                schema = parameters[step.tool]
                lacking = [a for a in schema.get("required", ()) if a not in step.arguments]
                if lacking:
                    found.append(f"{where}.arguments: {step.tool} needs {', '.join(lacking)}")
                unknown = sorted(set(step.arguments) - set(schema.get("properties") or {}))
                if unknown and schema.get("additionalProperties") is False:
                    found.append(f"{where}.arguments: {step.tool} takes no "
                                 f"{', '.join(unknown)}")
            first = next((p for p in self._candidates(playbook.kind)), None)
            if first is not None and first.name != name and first.match is None:
                found.append(f"{at}: never used: {first.name!r} (priority "
                             f"{first.priority}) answers every {playbook.kind} prediction "
                             f"first; give {name!r} a lower priority, or the name "
                             f"{first.name!r} to replace it")
        return found

    def _candidates(self, kind: str) -> list[Playbook]:
        return sorted((p for p in self.playbooks.values() if p.kind == kind),
                      key=lambda p: (p.priority, p.name))

    def first_for_kind(self, kind: str) -> Playbook | None:
        """The playbook tried first for predictions of ``kind`` (None: none answers it)."""
        candidates = self._candidates(kind)
        return candidates[0] if candidates else None

    def for_prediction(self, prediction: Prediction) -> Playbook | None:
        for playbook in self._candidates(prediction.kind):
            if playbook.matches(prediction):
                return playbook
        return None

    def get(self, name: str) -> Playbook:
        try:
            return self.playbooks[name]
        except KeyError:
            raise ConfigError(f"unknown playbook {name!r}") from None

    def kinds(self) -> set[str]:
        return {p.kind for p in self.playbooks.values()}


def _load_dir(folder: Path) -> dict[str, tuple[Playbook, Path]]:
    """The playbooks in ``folder``'s YAML files, by name, each with its file."""
    found: dict[str, tuple[Playbook, Path]] = {}
    for path in sorted(folder.glob("*.y*ml")):
        data = load_yaml(path)
        items = data if isinstance(data, list) else [data]
        for index, item in enumerate(items):
            name = item.get("name") if isinstance(item, dict) else None
            label = f"playbook {name!r}" if name else f"playbook #{index + 1}"
            playbook = validate_config(Playbook, item, path=path, name=label)
            if playbook.name in found:
                raise ConfigError(f"{path}: {label}: name is used twice")
            found[playbook.name] = (playbook, path)
    return found


def load_playbooks(extra_dir: Path | None = None) -> PlaybookBook:
    """Bundled playbooks, with those in ``extra_dir`` added or replacing by name."""
    ref = resources.files("decisionops.agent") / "data" / "playbooks"
    with resources.as_file(ref) as bundled:
        playbooks = {name: p for name, (p, _) in _load_dir(bundled).items()}
    if extra_dir is not None:
        if not extra_dir.is_dir():
            raise ConfigError(f"{extra_dir}: playbooks_dir is not a folder")
        own = _load_dir(extra_dir)
        playbooks.update({name: p for name, (p, _) in own.items()})
    else:
        own = {}
    try:
        return PlaybookBook(playbooks=playbooks,
                            own={name: path for name, (_, path) in own.items()})
    except ValidationError as exc:  # pragma: no cover - dict of validated models
        raise ConfigError(str(exc)) from exc
