"""Function policies: who approves each business function's part of a plan, which tools
the function may use, the limits on their arguments, and when its part is approved
automatically.

Loaded from ``functions.yaml`` (bundled in ``agent/data``; replaceable by settings).

Two kinds of limit:

- per call (``limits``): bounds on one argument of one tool call;
- totals (``totals``): bounds on the sum of one argument of a tool's calls, per
  decision, per entity (the values of the tool's target arguments: the account, the
  currency…) or across everything, optionally over a rolling window of days. Splitting
  one credit into several small ones buys nothing: the pieces add up.

``auto_approve`` has both kinds too: a function's part is approved without a person
only within them. The rules here are pure; what has been used already is read from the
store by the caller (``agent.approvals`` for routing and answers, the executor inside
its write-ahead transaction, where the limit binds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from decisionops.agent._yaml import load_yaml, validate_config
from decisionops.agent.errors import ConfigError, NotFoundError, PermissionDenied
from decisionops.agent.models import USER_NAME_RULE, Risk, Step, is_user_name

__all__ = ["ArgumentLimit", "AutoApprove", "Autonomy", "FunctionPolicy", "Policies", "Total", "load_policies",
           "total_problems"]


class ArgumentLimit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    min: float | None = None
    max: float | None = None
    allowed: tuple[Any, ...] | None = None
    max_length: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _min_not_above_max(self) -> ArgumentLimit:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {_num(self.min)} is above max {_num(self.max)}: every "
                             "value would be refused")
        return self

    def problems(self, name: str, value: Any) -> list[str]:
        out = []
        if isinstance(value, int | float) and not isinstance(value, bool):
            if self.max is not None and value > self.max:
                out.append(f"{name}: {_num(value)} is over the limit of {_num(self.max)}")
            if self.min is not None and value < self.min:
                out.append(f"{name}: {_num(value)} is under the minimum of {_num(self.min)}")
        if self.allowed is not None and value not in self.allowed:
            allowed = ", ".join(str(a) for a in self.allowed)
            out.append(f"{name}: {value!r} is not one of the allowed values ({allowed})")
        if self.max_length is not None and isinstance(value, str) and len(value) > self.max_length:
            out.append(f"{name}: longer than {self.max_length} characters")
        return out


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


Limits = dict[str, dict[str, ArgumentLimit]]
"""tool name → argument name → limit."""


class Total(BaseModel):
    """An aggregate limit: the sum of argument ``sum`` over ``tool``'s calls."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    tool: str
    sum: Annotated[str, Field(min_length=1, max_length=64)]
    """The (numeric) argument added up, e.g. ``amount``."""
    per: Literal["decision", "entity", "all"] = "decision"
    """``decision``: within one decision; ``entity``: per target of the tool (its target
    arguments' values, e.g. account and currency); ``all``: everything together."""
    within_days: float | None = Field(None, gt=0)
    """For ``entity`` and ``all``: a rolling window; None counts every call ever made."""
    max: float = Field(ge=0)

    def scope(self) -> str:
        window = f" within {_num(self.within_days)} days" if self.within_days else ""
        return {"decision": "per decision", "entity": "per target",
                "all": "in total"}[self.per] + window


UsedAmount = Callable[[Total, str], float]
"""What calls of other work have used of a total already: (total, target key) → sum."""


def total_problems(totals: Sequence[Total], steps: Sequence[Step], *,
                   key_of: Callable[[Step], str], used: UsedAmount | None = None,
                   what: str = "the total") -> list[str]:
    """The totals ``steps`` would exceed, each as ``steps.<id>.arguments.<arg>: …``.
    ``key_of`` names a step's target (its target arguments' values); ``used`` adds what
    other work has used of an ``entity``/``all`` total (None: nothing)."""
    problems: list[str] = []
    for total in totals:
        groups: dict[str, list[tuple[Step, float]]] = {}
        for step in steps:
            value = step.arguments.get(total.sum)
            if step.tool != total.tool or not _is_number(value):
                continue
            key = "" if total.per == "decision" else ("*" if total.per == "all" else key_of(step))
            groups.setdefault(key, []).append((step, float(value)))
        for key, group in groups.items():
            amount = sum(v for _, v in group)
            prior = used(total, key) if used is not None and total.per != "decision" else 0.0
            if prior + amount > total.max + 1e-9:
                last = group[-1][0]
                target = f" for {key}" if total.per == "entity" and key else ""
                already = f", {_num(prior)} used already" if prior else ""
                problems.append(
                    f"steps.{last.id}.arguments.{total.sum}: {total.tool} {total.sum} adds up "
                    f"to {_num(prior + amount)}{target}, over {what} of {_num(total.max)} "
                    f"{total.scope()} ({_num(amount)} in this plan{already})")
    return problems


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class AutoApprove(BaseModel):
    """A function's part is approved without a human when every one of its steps has risk
    at most ``max_risk`` and arguments within ``limits`` and ``totals``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_risk: Risk | None = None
    """None: never auto-approve."""
    limits: Limits = Field(default_factory=dict)
    totals: tuple[Total, ...] = ()


class Autonomy(BaseModel):
    """Earned autonomy (``agent.autonomy``): a step class whose last ``after`` human
    answers were approvals without an edit, by at least ``approvers`` people, with
    outcomes not worse than the control group's at ``confidence``, is approved without a
    person, within this function's limits and totals, up to ``max_risk``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    after: int = Field(20, ge=2, le=10_000)
    approvers: int = Field(2, ge=2, le=100)
    confidence: float = Field(0.9, gt=0.5, lt=1.0)
    max_risk: Risk = Risk.MEDIUM


class FunctionPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    description: str = ""
    approvers: tuple[str, ...] = Field(min_length=1)
    tools: tuple[str, ...] = Field(min_length=1)
    """Allow-list: tools this function's steps may call."""
    limits: Limits = Field(default_factory=dict)
    totals: tuple[Total, ...] = ()
    """Aggregate limits on what this function's steps may add up to (see ``Total``)."""
    auto_approve: AutoApprove = AutoApprove()
    autonomy: Autonomy | None = None
    """Opt-in: step classes approved often enough, as they are, stop needing a person."""
    sla_hours: float = Field(24.0, gt=0)
    on_timeout: str = Field("reject", pattern="^(reject|approve)$")
    """What an approval request that reaches its deadline unanswered becomes."""
    escalate_to: str = "#ops-escalations"
    """Slack channel (``#…``) or e-mail told when a request nears its deadline."""
    bulk_max_risk: Risk | None = Risk.LOW
    """The highest step risk an approver of this function may approve in bulk (several
    requests in one go, each still checked on its own); None: never in bulk."""
    four_eyes: bool = False
    """Separation of duties: the approver who finally approves this function's part must be
    neither who requested that plan version (submitted the prediction, or asked for the
    revision that produced it) nor who edited its arguments; an edit becomes a proposal
    that a second approver of the function approves. Enforced by the approval service,
    in every channel."""

    @model_validator(mode="after")
    def _limits_name_allowed_tools(self) -> FunctionPolicy:
        for tool in list(self.limits) + list(self.auto_approve.limits):
            if tool not in self.tools:
                raise ValueError(f"limits name tool {tool!r}, which is not in this function's tools")
        for total in self.totals + self.auto_approve.totals:
            if total.tool not in self.tools:
                raise ValueError(f"totals name tool {total.tool!r}, which is not in this "
                                 "function's tools")
        named = [a.strip() for a in self.approvers]
        if not all(named):
            raise ValueError("approvers: an approver's name is empty")
        twice = sorted({a for a in named if named.count(a) > 1})
        if twice:
            raise ValueError(f"approvers: {', '.join(twice)} listed twice")
        for approver in self.approvers:
            if not is_user_name(approver):
                # `users add` refuses such a name: nobody could ever answer as it.
                raise ValueError(f"approvers: {approver!r} can never be a user's name "
                                 f"(a name is {USER_NAME_RULE})")
        for tool, arguments in self.auto_approve.limits.items():
            for argument, auto in arguments.items():
                hard = self.limits.get(tool, {}).get(argument)
                if hard is not None and hard.max is not None and auto.max is not None \
                        and auto.max > hard.max:
                    raise ValueError(
                        f"auto_approve.limits.{tool}.{argument}: max {_num(auto.max)} is "
                        f"above the hard limit {_num(hard.max)} (policy may never approve "
                        "more than a person may)")
        if self.four_eyes and self.on_timeout == "approve":
            # An expiry approves with nobody's eyes on it: a requester's own plan would
            # run unseen by a second person (found in a black-box trial).
            raise ValueError("four_eyes: true needs on_timeout: reject (an expiry that "
                             "approves would let a plan run that only its requester saw)")
        return self

    def all_totals(self) -> tuple[Total, ...]:
        """Every total that binds some approval of this function (auto or not)."""
        return self.totals + self.auto_approve.totals

    def limit_problems(self, tool: str, arguments: Mapping[str, Any],
                       limits: Limits | None = None) -> list[str]:
        table = self.limits if limits is None else limits
        out: list[str] = []
        for arg, limit in table.get(tool, {}).items():
            if arg in arguments:
                out.extend(limit.problems(arg, arguments[arg]))
        return out

    def needs_human(self, steps: Iterable[Step], *, key_of: Callable[[Step], str] | None = None,
                    used: UsedAmount | None = None) -> str | None:
        """Why this function's steps need a human, or None when policy approves them.
        ``key_of``/``used`` (see ``total_problems``) bring in what other work used of
        the auto-approve totals; without them only this plan's steps count."""
        rule = self.auto_approve
        if rule.max_risk is None:
            return "policy: every plan needs an approver"
        steps = list(steps)
        for step in steps:
            if step.risk.rank > rule.max_risk.rank:
                return f"step {step.id}: risk {step.risk} is above auto-approve level {rule.max_risk}"
            problems = self.limit_problems(step.tool, step.arguments, rule.limits)
            if problems:
                return f"step {step.id}: {problems[0]} for auto-approval"
        problems = total_problems(rule.totals, steps, key_of=key_of or (lambda _s: ""),
                                  used=used, what="the auto-approve total")
        if problems:
            where, _, message = problems[0].partition(": ")
            return f"step {where.split('.')[1]}: {message}"
        return None


class Policies(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    functions: dict[str, FunctionPolicy]

    @model_validator(mode="before")
    @classmethod
    def _names(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("functions"), dict):
            data = dict(data)
            data["functions"] = {name: {"name": name, **(body or {})}
                                 for name, body in data["functions"].items()}
        return data

    def get(self, function: str) -> FunctionPolicy:
        try:
            return self.functions[function]
        except KeyError:
            raise NotFoundError(f"unknown function {function!r}; known: "
                                f"{', '.join(sorted(self.functions))}", field="function") from None

    def authorize(self, function: str, approver: str) -> FunctionPolicy:
        policy = self.get(function)
        if approver not in policy.approvers:
            raise PermissionDenied(f"{approver} is not an approver of {function} "
                                   f"(approvers: {', '.join(policy.approvers)})")
        return policy


def load_policies(path: Path | None = None) -> Policies:
    """Load function policies from ``path``, or the bundled defaults."""
    if path is None:
        ref = resources.files("decisionops.agent") / "data" / "functions.yaml"
        with resources.as_file(ref) as bundled:
            return load_policies(bundled)
    data = load_yaml(path)
    if not isinstance(data, dict) or "functions" not in data:
        raise ConfigError(f"{path}: expected a mapping with a top-level 'functions' key")
    return validate_config(Policies, data, path=path, name="functions")
