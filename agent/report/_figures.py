"""The figures of the value report, computed from the store for one period.

- value captured per prediction kind: decisions started in the period and their expected
  value; for outcomes observed in the period, realized vs expected value (treated) and the
  realized value of the control group;
- uplift per kind (treated minus control) in success rate and in mean realized value,
  with confidence intervals (see ``_stats`` for the method). The unit is a prediction:
  when one has several outcomes in the period, the latest counts. Treated means *assigned
  to act* (a decision was started, whatever its approvals did), so the comparison with the
  randomly held-out control group is intent-to-treat;
- approval latency per function: p50/p95 from request to a person's answer (policy
  auto-approvals are counted, not timed);
- step success per tool: tool calls that succeeded among those that finished;
- LLM cost: calls, tokens and cost, per model and per day; the daily spend cap
  (``llm_daily_spend_cap``) and what today (UTC) has used of it, counted as the planners'
  meter counts it (``agent.llm.spend_today``).

Charts and HTML live in ``_charts`` and ``_render``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from decisionops.agent.llm import spend_today
from decisionops.agent.models import CLOCK_SKEW, DEFAULT_CURRENCY, SUCCESS_LABELS, utcnow
from decisionops.agent.report._stats import CI_METHOD, Estimate, mean_uplift, percentile, rate_uplift
from decisionops.agent.store import Store

__all__ = ["SUCCESS_LABELS", "DayCost", "LatencyRow", "LlmCost", "ModelCost", "ReportData",
           "ToolRow", "UpliftRow", "ValueRow", "build_report"]

"""Outcome labels that count as success unless the caller names others."""


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True)


class ValueRow(_Row):
    kind: str
    currency: str = DEFAULT_CURRENCY
    """The predictions' currency: every money figure of the row is in it (money in two
    currencies is two rows, never added up)."""
    decisions: int
    """Decisions started in the period."""
    expected_value: float
    """Their expected value (probability * value at stake)."""
    treated_outcomes: int
    treated_expected: float
    """Expected value of the treated predictions with an outcome in the period."""
    treated_realized: float
    capture_ratio: float | None
    """Realized / expected among treated outcomes."""
    control_outcomes: int
    control_realized: float
    incremental_value: float | None
    """Mean-value uplift * treated outcomes: the value the actions added over control."""
    incremental_low: float | None
    incremental_high: float | None


class UpliftRow(_Row):
    kind: str
    currency: str = DEFAULT_CURRENCY
    """The predictions' currency (a mean value's, and the group the rates are of)."""
    metric: Literal["success_rate", "mean_value"]
    treated_n: int
    control_n: int
    treated: float | None
    control: float | None
    uplift: float | None
    ci_low: float | None
    ci_high: float | None


class LatencyRow(_Row):
    function: str
    requested: int
    answered_by_people: int
    auto_approved: int
    pending: int
    p50_seconds: float | None
    p95_seconds: float | None


class ToolRow(_Row):
    tool: str
    calls: int
    succeeded: int
    failed: int
    other: int
    """Started but not finished, skipped or compensated."""
    attempts: int
    success_rate: float | None
    """Succeeded / (succeeded + failed)."""


class ModelCost(_Row):
    model: str
    calls: int
    tokens_in: int
    tokens_out: int
    cost: float


class DayCost(_Row):
    day: date
    calls: int
    cost: float


class LlmCost(_Row):
    calls: int
    tokens_in: int
    tokens_out: int
    cost: float
    by_model: list[ModelCost]
    by_day: list[DayCost]
    today: date
    """The UTC day of the report's making (the cap's day), whatever the period."""
    spent_today: float
    """Cost of the LLM calls recorded today: what the daily cap is checked against."""
    daily_spend_cap: float | None
    """The ``llm_daily_spend_cap`` setting; None: no cap."""
    cap_used: float | None
    """``spent_today / daily_spend_cap`` (None without a cap; 1.0 when a cap of 0)."""

    def cap_summary(self) -> str:
        """Today's spend against the cap, in one sentence (the HTML and text reports)."""
        spent = f"{self.spent_today:.4f} spent today ({self.today.isoformat()}, UTC)"
        if self.daily_spend_cap is None:
            return f"{spent}; no daily spend cap (llm_daily_spend_cap is unset)."
        left = max(self.daily_spend_cap - self.spent_today, 0.0)
        reached = " - reached: LLM planners fall back to playbooks" if left <= 0 else ""
        return (f"{spent} of the daily spend cap of {self.daily_spend_cap:.2f} "
                f"(llm_daily_spend_cap): {self.cap_used or 0.0:.1%} used, {left:.4f} "
                f"left{reached}.")


class ReportData(_Row):
    """Everything the report shows; ``--json`` prints this."""

    generated_at: datetime
    since: datetime
    until: datetime
    success_labels: list[str]
    ci_method: str
    outcomes: int
    """Outcome records observed in the period (every one, before taking the latest per
    prediction)."""
    counted_outcomes: int = 0
    """Of ``outcomes``: the ones the figures count, a prediction's latest (one each)."""
    simulated_outcomes: int
    """Of ``outcomes``: produced by the demo's simulator, not observed."""
    value: list[ValueRow]
    uplift: list[UpliftRow]
    approvals: list[LatencyRow]
    tools: list[ToolRow]
    llm: LlmCost
    warnings: list[str] = []
    """What limits the figures (no control group: uplift cannot be measured)."""


def build_report(store: Store, *, since: datetime, until: datetime | None = None,
                 success_labels: Sequence[str] = SUCCESS_LABELS,
                 daily_spend_cap: float | None = None,
                 warnings: Sequence[str] = ()) -> ReportData:
    """The report's figures; ``daily_spend_cap`` is the setting of that name (None: no
    cap), shown beside today's spend; ``warnings`` are shown above them. Without
    ``until`` the period ends now and holds everything recorded so far, times a source
    stamped up to ``CLOCK_SKEW`` ahead included (intake takes them: its clock runs fast)."""
    now = utcnow()
    bound = until or now + CLOCK_SKEW
    until = until or now
    outcomes = store.outcomes.outcome_list(since=since, until=bound)
    latest: dict[str, dict[str, Any]] = {}
    for o in outcomes:  # newest first: the first one per prediction is its latest
        latest.setdefault(o["prediction_id"], o)
    ahead = sum(1 for o in outcomes if _aware(o["observed_at"]) > now)
    if ahead:  # counted, past the period's end as shown: said
        warnings = [*warnings, f"{ahead} outcome(s) counted are stamped after this report's "
                               "end, up to an hour ahead (their source's clock runs fast)"]
    value, uplift = _value_and_uplift(store.outcomes.decision_totals(since=since, until=bound),
                                      list(latest.values()), set(success_labels))
    return ReportData(
        generated_at=utcnow(), since=since, until=until, success_labels=list(success_labels),
        ci_method=CI_METHOD, outcomes=len(outcomes), counted_outcomes=len(latest),
        simulated_outcomes=sum(1 for o in outcomes if o["source"].startswith("simulated")),
        value=value, uplift=uplift,
        approvals=_latency(store.outcomes.approval_times(since=since, until=bound)),
        tools=_tools(store.outcomes.execution_totals(since=since, until=bound)),
        llm=_llm(store.outcomes.llm_call_rows(since=since, until=bound), today=now.date(),
                 spent_today=spend_today(store.llm, now), daily_spend_cap=daily_spend_cap),
        warnings=list(warnings))


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _value_and_uplift(totals: list[dict[str, Any]], outcomes: list[dict[str, Any]],
                      success: set[str]) -> tuple[list[ValueRow], list[UpliftRow]]:
    """Per kind and currency (money in two currencies is never added up)."""
    started = {(r["kind"], r["currency"]): r for r in totals}
    groups: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: {"treated": [], "control": []})
    for o in outcomes:
        groups[o["kind"], o["currency"]][o["arm"]].append(o)
    values, uplifts = [], []
    for kind, money in sorted(set(started) | set(groups)):
        treated, control = groups[kind, money]["treated"], groups[kind, money]["control"]
        rate = rate_uplift([o["label"] in success for o in treated],
                           [o["label"] in success for o in control])
        mean = mean_uplift([o["value_realized"] for o in treated],
                           [o["value_realized"] for o in control])
        uplifts += [_uplift(kind, money, "success_rate", rate),
                    _uplift(kind, money, "mean_value", mean)]
        expected = sum(o["expected_value"] or 0.0 for o in treated)
        realized = sum(o["value_realized"] for o in treated)
        begun = started.get((kind, money), {})
        values.append(ValueRow(
            kind=kind, currency=money, decisions=begun.get("decisions", 0),
            expected_value=begun.get("expected_value", 0.0),
            treated_outcomes=len(treated), treated_expected=expected,
            treated_realized=realized, capture_ratio=realized / expected if expected else None,
            control_outcomes=len(control),
            control_realized=sum(o["value_realized"] for o in control),
            incremental_value=_times(mean.uplift, len(treated)),
            incremental_low=_times(mean.ci_low, len(treated)),
            incremental_high=_times(mean.ci_high, len(treated))))
    return values, uplifts


def _times(x: float | None, n: int) -> float | None:
    return None if x is None else x * n


def _uplift(kind: str, money: str, metric: Literal["success_rate", "mean_value"],
            e: Estimate) -> UpliftRow:
    return UpliftRow(kind=kind, currency=money, metric=metric, treated_n=e.treated_n, control_n=e.control_n,
                     treated=e.treated, control=e.control, uplift=e.uplift, ci_low=e.ci_low,
                     ci_high=e.ci_high)


def _latency(rows: list[dict[str, Any]]) -> list[LatencyRow]:
    by_function: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_function[r["function"]].append(r)
    out = []
    for function, items in sorted(by_function.items()):
        waits = [(r["answered_at"] - r["requested_at"]).total_seconds() for r in items
                 if r["human"] and r["answered_at"] is not None]
        out.append(LatencyRow(
            function=function, requested=len(items), answered_by_people=len(waits),
            auto_approved=sum(1 for r in items if r["status"] == "auto_approved"),
            pending=sum(1 for r in items if r["status"] == "pending"),
            p50_seconds=percentile(waits, 50), p95_seconds=percentile(waits, 95)))
    return out


def _tools(rows: list[dict[str, Any]]) -> list[ToolRow]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        counts[r["tool"]][r["status"]] += r["n"]
        counts[r["tool"]]["_attempts"] += r["attempts"]
    out = []
    for tool, c in sorted(counts.items()):
        succeeded, failed = c["succeeded"], c["failed"]
        calls = sum(n for s, n in c.items() if s != "_attempts")
        out.append(ToolRow(tool=tool, calls=calls, succeeded=succeeded, failed=failed,
                           other=calls - succeeded - failed, attempts=c["_attempts"],
                           success_rate=(succeeded / (succeeded + failed)
                                         if succeeded + failed else None)))
    return out


def _llm(rows: list[dict[str, Any]], *, today: date, spent_today: float,
         daily_spend_cap: float | None) -> LlmCost:
    models: dict[str, list[dict[str, Any]]] = defaultdict(list)
    days: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        models[r["model"]].append(r)
        days[r["at"].date()].append(r)
    return LlmCost(
        calls=len(rows), tokens_in=sum(r["tokens_in"] for r in rows),
        tokens_out=sum(r["tokens_out"] for r in rows), cost=sum(r["cost"] for r in rows),
        by_model=[ModelCost(model=m, calls=len(rs), tokens_in=sum(r["tokens_in"] for r in rs),
                            tokens_out=sum(r["tokens_out"] for r in rs),
                            cost=sum(r["cost"] for r in rs)) for m, rs in sorted(models.items())],
        by_day=[DayCost(day=d, calls=len(rs), cost=sum(r["cost"] for r in rs))
                for d, rs in sorted(days.items())],
        today=today, spent_today=spent_today, daily_spend_cap=daily_spend_cap,
        cap_used=(None if daily_spend_cap is None else
                  spent_today / daily_spend_cap if daily_spend_cap else 1.0))
