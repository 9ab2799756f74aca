"""The value report as plain text for a terminal (``decisionops report --text``): the
same figures as the HTML page (``_render``), as fixed-width tables, without charts."""

from __future__ import annotations

from collections.abc import Sequence

from decisionops.agent.report._figures import ReportData, UpliftRow
from decisionops.agent.report._render import duration
from decisionops.agent.report._stats import CI_METHOD

__all__ = ["render_text"]


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _num(value: float | None, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _section(title: str, headers: Sequence[str], rows: list[list[str]], empty: str
             ) -> list[str]:
    return ["", title, *(_table(headers, rows) if rows else [f"  {empty}"])]


def _uplift(row: UpliftRow) -> list[str]:
    """A rate in points of percentage, a mean value in money; the 95 % interval."""
    def show(value: float | None) -> str:
        if value is None:
            return "-"
        return f"{value * 100:+.1f} pt" if row.metric == "success_rate" else f"{value:+,.0f}"

    def level(value: float | None) -> str:
        return _pct(value) if row.metric == "success_rate" else _num(value)

    interval = ("needs >= 2 per group" if row.ci_low is None or row.ci_high is None
                else f"{show(row.ci_low)} .. {show(row.ci_high)}")
    return [row.kind, row.currency, row.metric.replace("_", " "), f"{row.treated_n}/{row.control_n}",
            level(row.treated), level(row.control), show(row.uplift), interval]


def render_text(data: ReportData) -> str:
    when = "%Y-%m-%d %H:%M UTC"
    out = [f"DecisionOps value report: {data.since:{when}} to {data.until:{when}}",
           f"{data.outcomes} outcome(s) observed in the period"
           + (f", {data.simulated_outcomes} of them simulated (demo data)"
              if data.simulated_outcomes else "")
           + (f"; {data.counted_outcomes} counted (a prediction's latest: "
              f"{data.outcomes - data.counted_outcomes} earlier one(s) it superseded)"
              if data.counted_outcomes != data.outcomes else "")]
    # capture = realized / the expected value of the treated predictions with an outcome
    # (their own column): every figure of the ratio is on the line (trial: it was not).
    out += _section("Value captured", ["kind", "currency", "decisions", "expected", "outcomes",
                                       "their expected", "realized", "capture",
                                       "incremental"],
                    [[v.kind, v.currency, str(v.decisions), _num(v.expected_value),
                      str(v.treated_outcomes), _num(v.treated_expected),
                      _num(v.treated_realized), _pct(v.capture_ratio),
                      _num(v.incremental_value)] for v in data.value],
                    "No decisions or outcomes in this period.")
    if data.value:
        out.append("  capture: realized / their expected (the treated predictions with an "
                   "outcome in the period); expected: of the decisions started in it")
    out += _section("Uplift over the control group (treated minus control)",
                    ["kind", "currency", "metric", "n treated/control", "treated", "control",
                     "uplift",
                     "interval"], [_uplift(u) for u in data.uplift],
                    "No uplift yet: it needs outcomes of treated and control predictions.")
    # What counts as success, as the HTML page says it: a label of one's own
    # (fraud_prevented) counts only when named with --success.
    out.append(f"  success labels: {', '.join(data.success_labels)} (others: report "
               "--success LABEL)")
    if data.uplift:
        out.append(f"  interval: {CI_METHOD}")
    out += [f"  ! {w}" for w in data.warnings]
    out += _section("Approvals", ["function", "requested", "by people", "auto", "pending",
                                  "p50", "p95"],
                    [[a.function, str(a.requested), str(a.answered_by_people),
                      str(a.auto_approved), str(a.pending), duration(a.p50_seconds),
                      duration(a.p95_seconds)] for a in data.approvals],
                    "No approval requests in this period.")
    out += _section("Steps per tool", ["tool", "calls", "succeeded", "failed", "success"],
                    [[t.tool, str(t.calls), str(t.succeeded), str(t.failed),
                      _pct(t.success_rate)] for t in data.tools],
                    "No tool calls in this period.")
    llm = data.llm
    out += _section(f"LLM spend: {llm.calls} call(s), {llm.tokens_in + llm.tokens_out} "
                    f"tokens, cost {llm.cost:.4f}",
                    ["model", "calls", "tokens in", "tokens out", "cost"],
                    [[m.model, str(m.calls), str(m.tokens_in), str(m.tokens_out),
                      f"{m.cost:.4f}"] for m in llm.by_model],
                    "No LLM calls in this period.")
    out.append(llm.cap_summary())
    return "\n".join(out) + "\n"
