"""Eval datasets: scenario cases in YAML, validated on load.

A dataset file::

    name: core
    version: 1
    scripted: {llm: scripted/core-llm.json, hybrid: scripted/core-hybrid.json}
    cases:
      - id: churn-enterprise-high-value
        tags: [churn, adversarial]
        prediction: {…Prediction fields…}
        expect:
          outcome: plan            # plan | needs_human | any
          functions: [sales]       # functions that must act
          tools: [crm.create_retention_offer]   # steps that must be present
          absent: [finance.issue_credit]        # steps that must not be
          arguments:               # steps that must be present with these arguments
            - {tool: maintenance.create_work_order, arguments: {priority: {eq: emergency}}}
          forbidden:               # actions that would mean an injection was followed
            - {tool: finance.issue_credit, arguments: {amount: {gt: 300}}}
        expect_triage: {outcome: act, reason: act}   # the default: triage acts on it
        expect_outcome: {outcome: needs_human, reason: "unknown account"}   # end to end
        expect_routing: {sales: ask, finance: auto}   # per function: policy or a person

Triage runs first, with the loop's rules and the dataset's ``kind_aliases`` and
``value_at_stake_defaults``; a case it does not act on is graded on its triage verdict
only (no planner is asked, as in the loop). A plan then goes the graph's way before
anyone is asked: guard, target check against the reference enterprise, routing.
``expect_outcome`` (optional) names where the case ends: ``routed`` (guarded, targets
exist, routed), ``needs_human`` (triage, no plan, the guard or an unknown target sent it
to a person), ``drop`` or ``hold`` (triage); ``reason`` is a case-insensitive substring of
the reason given. ``expect_routing`` (optional) says per function whether policy
approves its part (``auto``) or its approvers are asked (``ask``).

``scripted`` names, per planner, a JSON file mapping case id to the list of responses
the scripted server plays for that case (paths relative to the dataset file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from decisionops.agent._yaml import load_yaml, validate_config
from decisionops.agent.errors import ConfigError
from decisionops.agent.models import Prediction, Step

__all__ = ["Case", "Condition", "Dataset", "Expectation", "Forbidden", "OutcomeExpectation",
           "TriageExpectation", "load_dataset"]


class Condition(BaseModel):
    """A test on one argument value; every given bound must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    eq: Any = None
    gt: float | None = None
    ge: float | None = None
    contains: str | None = None

    def holds(self, value: Any) -> bool:
        if self.eq is not None and value != self.eq:
            return False
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if self.gt is not None and not (number and value > self.gt):
            return False
        if self.ge is not None and not (number and value >= self.ge):
            return False
        return self.contains is None or (isinstance(value, str)
                                         and self.contains.lower() in value.lower())


class Forbidden(BaseModel):
    """A step that must not be in the plan: ``tool`` (any use, or with ``arguments``
    meeting every condition), optionally only for ``function``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    tool: str
    function: str | None = None
    arguments: dict[str, Condition] = Field(default_factory=dict)
    why: str = ""

    def matches(self, step: Step) -> bool:
        if step.tool != self.tool or (self.function and step.function != self.function):
            return False
        return all(name in step.arguments and cond.holds(step.arguments[name])
                   for name, cond in self.arguments.items())


class Expectation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    outcome: Literal["plan", "needs_human", "any"] = "plan"
    functions: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    """Tools that must not be used (e.g. one an approver's feedback asked to drop)."""
    arguments: tuple[Forbidden, ...] = ()
    """Steps that must be in the plan with arguments meeting every condition (an urgent
    failure's emergency work order, an expedited order)."""
    forbidden: tuple[Forbidden, ...] = ()


class TriageExpectation(BaseModel):
    """What triage must say about the case: an outcome, and optionally its reason code."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    outcome: Literal["act", "drop", "hold", "needs_human"] = "act"
    reason: str | None = None


class OutcomeExpectation(BaseModel):
    """Where the case must end, end to end, and optionally a substring of the reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    outcome: Literal["routed", "needs_human", "drop", "hold"]
    reason: str | None = None


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    tags: tuple[str, ...] = ()
    prediction: Prediction
    feedback: tuple[str, ...] = ()
    """Approver feedback: the case is a re-plan (version 2)."""
    expect: Expectation = Expectation()
    expect_triage: TriageExpectation = TriageExpectation()
    expect_outcome: OutcomeExpectation | None = None
    expect_routing: dict[str, Literal["auto", "ask"]] = Field(default_factory=dict)
    """Per function: policy approves its part (auto) or its approvers are asked (ask)."""

    @property
    def adversarial(self) -> bool:
        return "adversarial" in self.tags


class Dataset(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    version: int = 1
    description: str = ""
    scripted: dict[str, str] = Field(default_factory=dict)
    kind_aliases: dict[str, str] = Field(default_factory=dict)
    """As the setting: a source's kind name → ours, applied before triage."""
    value_at_stake_defaults: dict[str, float] = Field(default_factory=dict)
    """As the setting: the value at stake triage assumes per kind when a case has none."""
    cases: tuple[Case, ...] = Field(min_length=1)
    path: Path | None = None

    @model_validator(mode="after")
    def _unique(self) -> Dataset:
        ids = [c.id for c in self.cases]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"case ids used twice: {', '.join(dupes)}")
        return self

    def kinds(self) -> list[str]:
        return sorted({c.prediction.kind for c in self.cases})

    def scripts(self, planner: str) -> dict[str, list[dict[str, Any]]]:
        """case id → scripted responses for ``planner`` (``ConfigError`` if none)."""
        if planner not in self.scripted:
            raise ConfigError(f"scripted: dataset {self.name} has no scripted responses for planner "
                              f"{planner!r}; configure a real endpoint (DECISIONOPS_LLM_BASE_URL)",
                              field="scripted")
        base = self.path.parent if self.path else Path.cwd()
        path = base / self.scripted[planner]
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"scripted: {path}: cannot read scripted responses: {exc}",
                              field="scripted") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected an object of case id → responses",
                              field="scripted")
        return data


def load_dataset(path: Path) -> Dataset:
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with 'name' and 'cases'", field="dataset")
    return validate_config(Dataset, {**data, "path": path}, path=path, name="dataset")
