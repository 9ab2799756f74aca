"""The report's charts as PNG bytes, drawn with matplotlib's Agg canvas.

Each chart is its own ``Figure`` on a ``FigureCanvasAgg``: no pyplot, no global backend
or figure registry, so rendering is safe in any process (CLI, API worker) and leaves no
state behind. A chart with nothing to show says so instead of being left out.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from decisionops.agent.report._figures import ReportData

__all__ = ["CHARTS", "render_charts"]

CHARTS = ("value", "uplift", "approval_latency", "tool_success", "llm_cost")
"""Chart names, in the order the report shows them (also the PNG file suffixes)."""

_TREATED, _CONTROL, _MUTED = "#2f6f9f", "#d08c2b", "#8a8f98"


def render_charts(data: ReportData) -> dict[str, bytes]:
    """Chart name → PNG bytes, for every name in ``CHARTS``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    drawers: dict[str, Callable[[Any, ReportData], None]] = {
        "value": _value, "uplift": _uplift, "approval_latency": _latency,
        "tool_success": _tools, "llm_cost": _llm}
    out: dict[str, bytes] = {}
    for name in CHARTS:
        fig = Figure(figsize=(7.2, 3.4), dpi=100, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ax.spines[["top", "right"]].set_visible(False)
        drawers[name](ax, data)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
        out[name] = buffer.getvalue()
    return out


def _empty(ax: Any, message: str) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", color=_MUTED, fontsize=11,
            transform=ax.transAxes)


def _bars(ax: Any, labels: list[str], series: list[tuple[str, list[float], str]]) -> None:
    width = 0.8 / len(series)
    for i, (name, values, color) in enumerate(series):
        ax.bar([x + (i - (len(series) - 1) / 2) * width for x in range(len(labels))], values,
               width, label=name, color=color)
    ax.set_xticks(range(len(labels)), labels)
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _value(ax: Any, data: ReportData) -> None:
    rows = [r for r in data.value if r.treated_outcomes]
    if not rows:
        return _empty(ax, "no treated outcomes in this period")
    _bars(ax, [f"{r.kind} ({r.currency})" for r in rows], [
        ("expected (treated with outcome)", [r.treated_expected for r in rows], _MUTED),
        ("realized (treated)", [r.treated_realized for r in rows], _TREATED)])
    ax.set_title("Value captured: realized vs expected", fontsize=10)
    ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:,.0f}")
    return None


def _uplift(ax: Any, data: ReportData) -> None:
    rows = [r for r in data.uplift if r.metric == "success_rate" and r.uplift is not None]
    if not rows:
        return _empty(ax, "no uplift yet: needs outcomes of treated and control predictions")
    xs = range(len(rows))
    ups = [r.uplift * 100 for r in rows if r.uplift is not None]
    lows = [(r.uplift - r.ci_low) * 100 if r.ci_low is not None and r.uplift is not None else 0
            for r in rows]
    highs = [(r.ci_high - r.uplift) * 100 if r.ci_high is not None and r.uplift is not None
             else 0 for r in rows]
    ax.errorbar(xs, ups, yerr=[lows, highs], fmt="o", color=_TREATED, capsize=6)
    ax.axhline(0, color=_MUTED, linewidth=0.8)
    ax.set_xlim(-0.5, len(rows) - 0.5)
    ax.set_xticks(list(xs), [f"{r.kind} ({r.currency})\n(n={r.treated_n} vs {r.control_n})"
                             for r in rows])
    ax.set_ylabel("percentage points")
    ax.set_title("Uplift in success rate, treated - control (95% CI)", fontsize=10)
    return None


def _latency(ax: Any, data: ReportData) -> None:
    rows = [r for r in data.approvals if r.p50_seconds is not None]
    if not rows:
        return _empty(ax, "no approvals answered by people in this period")
    longest = max(r.p95_seconds or 0 for r in rows)
    unit, scale = (("seconds", 1) if longest < 120 else ("minutes", 60) if longest < 7200
                   else ("hours", 3600))
    _bars(ax, [r.function for r in rows], [
        ("p50", [(r.p50_seconds or 0) / scale for r in rows], _TREATED),
        ("p95", [(r.p95_seconds or 0) / scale for r in rows], _CONTROL)])
    ax.set_ylabel(unit)
    ax.set_title("Approval latency per function (request → answer)", fontsize=10)
    return None


def _tools(ax: Any, data: ReportData) -> None:
    rows = [r for r in data.tools if r.success_rate is not None]
    if not rows:
        return _empty(ax, "no finished tool calls in this period")
    ax.figure.set_figheight(max(3.4, 0.8 + 0.28 * len(rows)))
    ax.barh(range(len(rows)), [(r.success_rate or 0) * 100 for r in rows], color=_TREATED)
    ax.set_yticks(range(len(rows)), [r.tool for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of finished calls that succeeded")
    ax.set_title("Step success rate per tool", fontsize=10)
    return None


def _llm(ax: Any, data: ReportData) -> None:
    days = data.llm.by_day
    if not days:
        return _empty(ax, "no LLM calls in this period")
    ax.bar([d.day.isoformat() for d in days], [d.cost for d in days], color=_TREATED)
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    ax.set_ylabel("cost")
    ax.set_title("LLM cost per day", fontsize=10)
    return None
