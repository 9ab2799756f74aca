"""Function policies: who approves each business function's part of a plan, which tools
the function may use, the limits on their arguments, and when its part is approved
automatically.

Loaded from ``functions.yaml`` (bundled in ``agent/data``; replaceable by settings).
Limits are checked three times: by the guard on every plan, on every edit an approver
makes, and by the executor right before a call (an approved step outside policy is
still refused).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent._yaml import load_yaml, validate_config
from agent.errors import ConfigError, NotFoundError, PermissionDenied
from agent.models import Risk, Step

__all__ = ["ArgumentLimit", "AutoApprove", "FunctionPolicy", "Policies", "load_policies"]


class ArgumentLimit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    min: float | None = None
    max: float | None = None
    allowed: tuple[Any, ...] | None = None
    max_length: int | None = Field(None, ge=0)

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


class AutoApprove(BaseModel):
    """A function's part is approved without a human when every one of its steps has risk
    at most ``max_risk`` and arguments within ``limits``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_risk: Risk | None = None
    """None: never auto-approve."""
    limits: Limits = Field(default_factory=dict)


class FunctionPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    description: str = ""
    approvers: tuple[str, ...] = Field(min_length=1)
    tools: tuple[str, ...] = Field(min_length=1)
    """Allow-list: tools this function's steps may call."""
    limits: Limits = Field(default_factory=dict)
    auto_approve: AutoApprove = AutoApprove()
    sla_hours: float = Field(24.0, gt=0)
    on_timeout: str = Field("reject", pattern="^(reject|approve)$")
    """What an approval request that reaches its deadline unanswered becomes."""
    escalate_to: str = "#ops-escalations"
    """Slack channel (``#…``) or e-mail told when a request nears its deadline."""
    four_eyes: bool = False
    """Separation of duties: the approver who finally approves this function's part must be
    neither who requested that plan version (submitted the prediction, or asked for the
    revision that produced it) nor who edited its arguments; an edit becomes a proposal
    that a second approver of the function approves. Enforced by the HTTP API."""

    @model_validator(mode="after")
    def _limits_name_allowed_tools(self) -> FunctionPolicy:
        for tool in list(self.limits) + list(self.auto_approve.limits):
            if tool not in self.tools:
                raise ValueError(f"limits name tool {tool!r}, which is not in this function's tools")
        return self

    def limit_problems(self, tool: str, arguments: Mapping[str, Any],
                       limits: Limits | None = None) -> list[str]:
        table = self.limits if limits is None else limits
        out: list[str] = []
        for arg, limit in table.get(tool, {}).items():
            if arg in arguments:
                out.extend(limit.problems(arg, arguments[arg]))
        return out

    def needs_human(self, steps: Iterable[Step]) -> str | None:
        """Why this function's steps need a human, or None when policy approves them."""
        rule = self.auto_approve
        if rule.max_risk is None:
            return "policy: every plan needs an approver"
        for step in steps:
            if step.risk.rank > rule.max_risk.rank:
                return f"step {step.id}: risk {step.risk} is above auto-approve level {rule.max_risk}"
            problems = self.limit_problems(step.tool, step.arguments, rule.limits)
            if problems:
                return f"step {step.id}: {problems[0]} for auto-approval"
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
        ref = resources.files("agent") / "data" / "functions.yaml"
        with resources.as_file(ref) as bundled:
            return load_policies(bundled)
    data = load_yaml(path)
    if not isinstance(data, dict) or "functions" not in data:
        raise ConfigError(f"{path}: expected a mapping with a top-level 'functions' key")
    return validate_config(Policies, data, path=path, name="functions")
