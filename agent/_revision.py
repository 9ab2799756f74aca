"""What the playbook planner can change when approvers ask for a revision, and how it
reads their feedback.

A playbook declares its revisable parts (nothing else is ever changed)::

    revise:
      remove: [goodwill_credit, proactive_case]      # steps that may be left out
      set:
        retention_offer.discount_pct: {min: 5, max: 30, words: [discount], unit: percent}
        retention_offer.duration_months: {min: 1, max: 12, words: [months, duration]}

Feedback is read with a few fixed patterns, never evaluated:

- removal: ``drop``/``remove``/``skip``/``omit``/``cut``/``delete`` followed within three
  words by a removable step's id (``goodwill credit``) or by a word of its id that no other
  removable step has (``the credit``), or ``no``/``without`` at most a word before it
  (``no support case``), or a refusal to do it: ``will not``/``won't``/``can't``/``don't``/
  ``refuse to`` with ``fund``/``approve``/``pay for``/``give``/``issue``/``grant``/``offer``/
  ``open``/``send``/``create``/``schedule`` and the step's name, at most an article and a
  word between (``finance won't fund a credit``); a removal with a negation anywhere
  before it in its clause (``don't drop the credit``, ``do not, under any circumstances,
  drop …``, ``we cannot skip …``), asked as a question, beside a ``keep`` of the same
  step, or a ``no``/``without`` followed by another noun (``no credit risk``) removes
  nothing. The step's dependents go too.
- a number for an argument: one of its words followed by the number with only
  connectors between (``discount to 15%``, ``duration: 6``), or the number followed by
  its unit or one of its words (``15% discount``, ``6 months``); numbers as written
  (``1,000``). A value moved from (``from 8 hours to 3``, ``4, not 8``) is not the one
  asked for. A duration in hours or days converts from the unit written after it
  (``due within 7 days`` is 168 hours), ``2k`` is 2,000; a unit it cannot take is
  refused (``2 months`` or ``10 business days`` for hours), and so are ranges (``2-3``)
  and two different values for one argument: which is meant is not guessed. Outside
  ``min`` to ``max`` the change is refused and said so.

Everything else in the feedback is not applied; the re-plan's rationale says plainly
what was applied, what was not, and what the planner can change. Several feedback
entries apply in order (oldest first), so a re-draft is deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from decisionops.agent.models import Plan, Step

__all__ = ["Revisable", "Revision", "nothing_applied", "revise"]

_VERB = r"\b(?:drop|remove|skip|omit|cut|leave out|delete)\b(?:\W+\w+){0,3}?\W+"
"""A removal verb, then up to three words before the step's name (``drop the goodwill``)."""
_NONE = r"\b(?:no|without)\s+(?:the\s+|a\s+|any\s+)?(?:\w+\s+)?"
"""``no``/``without``, then the step's name, at most one word between (``no credit``,
``no support case``; not ``no problem with the credit``)."""
_REFUSE = (r"\b(?:will not|won't|wont|would not|wouldn't|cannot|can't|cant|can not|do not|"
           r"don't|dont|does not|doesn't|refuse to|not going to)\s+(?:\w+\s+)?"
           r"(?:fund|approve|pay for|pay|give|issue|grant|offer|open|send|create|schedule)\s+"
           r"(?:(?:a|an|the|any|this|that|another)\s+)?(?:\w+\s+)?")
"""A refusal to do the step (``won't fund a credit``, ``can't approve the goodwill credit``)."""
_NEGATION = re.compile(r"\b(?:not|never|don't|dont|cannot|can't|cant|mustn't|mustnt|"
                       r"shouldn't|shouldnt|won't|wont|wouldn't|wouldnt|no need to|"
                       r"under no|by no means|in no way|nobody|no one|no sense|mistake)\b")
"""A negation anywhere in the clause before a removal undoes it (``do not, under any
circumstances, drop …``, ``we cannot skip …``): a removal misread is worse than none."""
_CLAUSE = re.compile(r"[.;!?]|\bbut\b|\bhowever\b")
_NUMBER = (r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d{1,3}(?: \d{3})+(?![\d.,])|\d+(?:\.\d+)?)"
           r"(?![\d.,]\d|e\d)")
"""A number as written (``1,000``, ``1 000``, ``2.5``); not a piece of one (``1e2``,
``v2.1.0``)."""
_MOVED_FROM = re.compile(r"\b(?:from|instead of|rather than|not)\s+" + _NUMBER
                         + r"(?:\s*(?:%|[a-z]+))?")
"""A value moved from (``from 8 hours to 3``, ``4, not 8``): not the one asked for."""
_NONE_END = (r"(?=\s*(?:$|[,.;:!?)]|and\b|or\b|but\b|please\b|this\b|for\b|at all\b|"
             r"either\b|any ?more\b|here\b|now\b|then\b|(?:step|task|case|call|ticket|"
             r"order|offer|credit|part|item|action)s?\b))")
"""What may follow ``no credit``: the end of the phrase or a word for a step, not
another noun (``no credit risk here`` is about risk, not the credit)."""
_QUESTION = re.compile(r"[^.;!?]*\?")
_RANGE_AFTER = re.compile(r"\s*(?:-|\u2013|to)\s*\d[\d.,]*")
_RANGE_BEFORE = re.compile(r"\d[\d.,]*\s*(?:-|\u2013|to)\s*$")
_MULTIPLIER = re.compile(r"\s*(k|thousand|million)\b")
_MULTIPLIERS = {"k": 1e3, "thousand": 1e3, "million": 1e6}
_FOREIGN_UNIT = re.compile(r"\s*((?:business|working)\s+(?:days?|hours?)|years?|yrs?|"
                           r"quarters?|decades?|seconds?|secs?)\b")
"""Units none of the planner's arguments takes: refused, never read as the argument's."""
_UNIT_AFTER = re.compile(r"\s*(%|percent\b|pct\b|months?\b|weeks?\b|days?\b|hours?\b|"
                         r"hrs?\b|h\b|minutes?\b|mins?\b)")
_UNIT_NAMES = {"%": "percent", "pct": "percent", "month": "months", "week": "weeks",
               "day": "days", "hour": "hours", "hr": "hours", "hrs": "hours", "h": "hours",
               "minute": "minutes", "min": "minutes", "mins": "minutes"}
_IN_HOURS = {"minutes": 1 / 60, "hours": 1.0, "days": 24.0, "weeks": 168.0}
"""Units a duration in hours or days converts from."""
_CONNECT = (r"(?:\s*(?:to|of|at|=|:|is|be|should be|set to|down to|up to|within|in|"
            r"in the next)\s*)*\s*")
_UNITS = {"percent": r"(?:%|\s*percent\b|\s*pct\b)", "months": r"\s*months?\b",
          "days": r"\s*days?\b", "hours": r"\s*(?:hours?|h)\b", "amount": r"(?!\s*%)"}


class Setting(BaseModel):
    """One argument the planner may set from feedback, within bounds."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    min: float
    max: float
    words: tuple[str, ...] = ()
    """Words approvers use for it; default: the argument's name split on ``_``."""
    unit: Literal["percent", "months", "days", "hours", "amount"] | None = None


class Revisable(BaseModel):
    """A playbook's ``revise`` block."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    remove: tuple[str, ...] = ()
    set: dict[str, Setting] = Field(default_factory=dict)
    """``step_id.argument`` → its bounds."""

    def problems(self, steps: dict[str, set[str]]) -> Iterable[str]:
        """What does not name a step (or a step's argument) of the playbook."""
        for step in self.remove:
            if step not in steps:
                yield f"revise.remove: unknown step {step!r}"
        for key, setting in self.set.items():
            step, _, argument = key.partition(".")
            if argument not in steps.get(step, set()):
                yield f"revise.set: {key!r} is no step argument of the playbook"
            if setting.min > setting.max:
                yield f"revise.set.{key}: min is above max"

    def offer(self, steps: Iterable[str] | None = None) -> str:
        """What the planner can change, in words; ``steps``: of a plan with these steps
        only (a step an earlier revise removed can be neither removed nor set)."""
        present = None if steps is None else set(steps)
        removable = [s for s in self.remove if present is None or s in present]
        parts = ["remove " + ", ".join(removable)] if removable else []
        parts += [f"set {key} ({_fmt(s.min)} to {_fmt(s.max)})" for key, s in self.set.items()
                  if present is None or key.partition(".")[0] in present]
        if parts:
            return "; ".join(parts)
        return ("nothing (this playbook declares nothing revisable)" if present is None
                or not (self.remove or self.set) else "nothing left in this plan version")

    def offers(self, steps: Iterable[str]) -> bool:
        """Whether a revise can change anything in a plan with these steps."""
        present = set(steps)
        return any(s in present for s in self.remove) or any(
            key.partition(".")[0] in present for key in self.set)


class Revision(BaseModel):
    """What a re-draft did with the feedback."""

    model_config = ConfigDict(extra="forbid")
    applied: list[str] = []
    refused: list[str] = []
    unchanged: list[str] = []
    """Arguments the feedback set to the value they have."""

    def rationale(self, rules: Revisable | None, steps: Iterable[str] | None = None) -> str:
        """What the re-draft did, and what the planner can change in it (``steps``)."""
        can = (rules or Revisable()).offer(steps)
        if self.applied:
            text = ("Revised after feedback: " + "; ".join(self.applied) + ". Anything else "
                    "the feedback asks for was not applied.")
        else:
            text = ("Feedback not applied: the playbook planner cannot apply free-text "
                    "feedback, only named changes.")
        if self.refused:
            text += " Refused: " + "; ".join(self.refused) + "."
        return (text + f" It can: {can}. Anything else needs an edit by an approver "
                "or the LLM planner.")


def _fmt(value: float) -> str:
    return f"{value:g}"


def _words(step_id: str) -> list[str]:
    return [w for w in step_id.split("_") if len(w) > 2]


def _phrase(words: Sequence[str]) -> str:
    """``words`` in a row (spaces, ``_`` or ``-`` between), each also singular."""
    stems = [w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words]
    return r"\b" + r"[\s_-]+".join(re.escape(w) + r"\w*" for w in stems) + r"\b"


def _removals(text: str, rules: Revisable, present: set[str]) -> list[str]:
    candidates = [s for s in rules.remove if s in present]
    shared: dict[str, int] = {}
    for step in candidates:
        for word in set(_words(step)):
            shared[word] = shared.get(word, 0) + 1
    found = []
    for step in candidates:
        names = [_phrase(step.split("_"))] + [_phrase([w]) for w in _words(step)
                                               if shared[w] == 1]
        name = "(?:" + "|".join(names) + ")"
        if re.search(r"\bkeep\b(?:\W+\w+){0,3}?\W+" + name, text):
            continue  # asked to keep it too: not guessed
        for match in (*re.finditer(f"(?:{_VERB}|{_REFUSE}){name}", text),
                      *re.finditer(f"{_NONE}{name}{_NONE_END}", text)):
            clause = _CLAUSE.split(text[:match.start()])[-1]
            asked = _QUESTION.match(text, match.end())  # "drop the credit? no, keep it"
            if not _NEGATION.search(clause) and not (
                    asked and "." not in text[match.end():asked.end()]):
                found.append(step)
                break
    return found


def _number(text: str, key: str, setting: Setting) -> tuple[float | None, str]:
    """The value the feedback asks for ``key`` (None: it names none), or why it cannot
    be read: a unit the argument cannot take, or several values."""
    words = setting.words or tuple(w for w in key.partition(".")[2].split("_")
                                   if w not in {"pct", "id"})
    unit = _UNITS.get(setting.unit or "", "")
    text = _MOVED_FROM.sub(" ", text)
    values: dict[float, str] = {}
    for word in words:
        name = _phrase([word])
        after = re.finditer(name + _CONNECT + _NUMBER + (unit if setting.unit == "percent"
                                                         else ""), text)
        before = re.finditer(_NUMBER + f"(?:{unit})?" + r"\s*(?:-\s*)?" + name, text)
        for match in (*after, *before):
            written, end = match.group(1), match.end(1)
            if ranged := _range(text, match.start(1), end):
                return None, f"{key}: {ranged} is a range; name one value"
            number = float(written.replace(",", "").replace(" ", ""))
            if scaled := _MULTIPLIER.match(text, end):
                number *= _MULTIPLIERS[scaled.group(1)]
                end = scaled.end()
            if foreign := _FOREIGN_UNIT.match(text, end):
                return None, (f"{key}: {written} {foreign.group(1)} is not in "
                              f"{setting.unit or 'the unit of ' + key}")
            value, problem = _in_unit(number, setting, _UNIT_AFTER.match(text, end))
            if problem:
                return None, f"{key}: {written}{problem}"
            values.setdefault(value, written)
    if len(values) > 1:
        return None, (f"{key}: the feedback names {' and '.join(values.values())}; "
                      "name one value")
    return next(iter(values), None), ""


def _range(text: str, start: int, end: int) -> str:
    """The range the number at ``text[start:end]`` is an end of (``2-3``, ``2 to 3``), or
    ""."""
    if after := _RANGE_AFTER.match(text, end):
        return text[start:after.end()]
    if before := _RANGE_BEFORE.search(text[:start]):
        return text[before.start():end]
    return ""


def _in_unit(value: float, setting: Setting, written: re.Match[str] | None
             ) -> tuple[float, str]:
    """``value`` in the argument's unit, from the unit written after it (none: the
    argument's own); or why it cannot be (``" months is not in percent"``)."""
    if written is None or setting.unit in (None, "amount"):
        return value, ""
    said = written.group(1)
    unit = _UNIT_NAMES.get(said, said)
    if unit == setting.unit:
        return value, ""
    if unit in _IN_HOURS and setting.unit in ("hours", "days"):
        converted = value * _IN_HOURS[unit] / _IN_HOURS[setting.unit]
        return round(converted, 6), ""
    return value, f" {said} is not in {setting.unit}"


def revise(plan: Plan, rules: Revisable | None, feedback: Sequence[str]) -> tuple[Plan, Revision]:
    """``plan`` with the changes the feedback names, within ``rules``."""
    revision = Revision()
    if rules is None:
        return plan, revision
    steps = {s.id: s for s in plan.steps}
    for entry in feedback:
        text = entry.lower()
        for step_id in _removals(text, rules, set(steps)):
            gone = _with_dependents(step_id, steps.values())
            if gone >= set(steps):
                revision.refused.append(f"removing {step_id} would leave no step")
                continue
            for dropped in gone:
                steps.pop(dropped, None)
            extra = sorted(gone - {step_id})
            revision.applied.append(f"removed {step_id}" + (
                f" (and its dependent {', '.join(extra)})" if extra else ""))
        for key, setting in rules.set.items():
            step_id, _, argument = key.partition(".")
            if step_id not in steps:
                continue
            value, problem = _number(text, key, setting)
            if problem:
                revision.refused.append(problem)
                continue
            if value is None:
                continue
            if not setting.min <= value <= setting.max:
                revision.refused.append(f"{key} {_fmt(value)} is outside "
                                        f"{_fmt(setting.min)} to {_fmt(setting.max)}")
                continue
            step = steps[step_id]
            before = step.arguments.get(argument)
            if isinstance(before, int) and not isinstance(before, bool) \
                    and not value.is_integer():
                revision.refused.append(f"{key} {_fmt(value)} is not a whole number")
                continue
            new: Any = int(value) if isinstance(before, int) and value.is_integer() else value
            if new != before:
                steps[step_id] = step.model_copy(
                    update={"arguments": {**step.arguments, argument: new}})
                revision.applied.append(f"{key} {before} → {_fmt(value)}")
            else:
                revision.unchanged.append(f"{key} is {before} already")
    kept = tuple(s.model_copy(update={"depends_on": tuple(d for d in s.depends_on
                                                          if d in steps)})
                 for s in steps.values())
    return plan.model_copy(update={"steps": kept}), revision


def nothing_applied(plan: Plan, rules: Revisable | None, feedback: str) -> str | None:
    """Why a re-draft of ``plan`` with ``feedback`` added would be ``plan`` again (the
    feedback names nothing the playbook lets the planner change, or only values outside
    their bounds or already set), or None when it changes something. A revise is
    answered by this before it is recorded (``ApprovalService.answer``): one that
    changes nothing would withdraw every function's request only to ask them the same."""
    _, revision = revise(plan, rules, [feedback])
    if revision.applied:
        return None
    said = [*revision.refused, *revision.unchanged]
    can = (rules or Revisable()).offer(s.id for s in plan.steps)
    return ("the playbook planner can apply none of this feedback"
            + (f" ({'; '.join(said)})" if said else "") + f". It can: {can}."
            " Name one of those changes, or edit the request's arguments or reject it; "
            "anything else needs the LLM planner")


def _with_dependents(step_id: str, steps: Iterable[Step]) -> set[str]:
    steps = list(steps)
    gone = {step_id}
    grew = True
    while grew:
        grew = False
        for step in steps:
            if step.id not in gone and gone & set(step.depends_on):
                gone.add(step.id)
                grew = True
    return gone
