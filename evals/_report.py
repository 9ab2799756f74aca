"""Eval reports: a table on the terminal, JSON, and a self-contained HTML page
(Jinja2 with autoescaping, inline CSS, no external assets)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from jinja2 import StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from decisionops.evals._graders import POLICY, QUALITY
from decisionops.evals._runner import EvalReport

__all__ = ["print_report", "render_html", "write_html", "write_json"]


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def print_report(report: EvalReport, console: Console, *, failures: int = 20) -> None:
    table = Table(title=f"eval {report.dataset} ({report.mode}, {len(report.kinds)} kinds: "
                  f"{', '.join(report.kinds)}; calls are LLM calls)", title_justify="left",
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for column in ("planner", "policy", "quality", "passed", "calls", "tokens", "cost",
                   "fallbacks", "errors"):
        table.add_column(column, justify="left" if column == "planner" else "right",
                         no_wrap=True)
    for p in report.planners:
        table.add_row(p.planner, _pct(p.policy), _pct(p.quality), f"{p.passed_cases}/{p.cases}",
                      str(p.llm_calls), str(p.tokens), f"{p.cost:.4f}", str(p.fallbacks),
                      str(p.errors))
    console.print(table)
    console.print(_end_to_end(report))
    graders = Table(title="per grader (passed/applicable)", title_justify="left",
                    box=box.SIMPLE_HEAD)
    graders.add_column("grader")
    graders.add_column("family")
    for p in report.planners:
        graders.add_column(p.planner, justify="right")
    for name in (*POLICY, *QUALITY):
        family = "policy" if name in POLICY else "quality"
        graders.add_row(name, family, *(f"{p.graders.get(name, [0, 0])[0]}/"
                                        f"{p.graders.get(name, [0, 0])[1]}"
                                        for p in report.planners))
    console.print(graders)
    failed = [(r, g) for r in report.results for g in r.grades if g.passed is False]
    errors = [r for r in report.results if r.error]
    for r in errors[:failures]:
        console.print(f"[red]error[/] {escape(f'{r.planner} {r.case}: {r.error}')}",
                      highlight=False)
    for r, g in failed[:failures]:
        console.print(f"[yellow]fail[/] {escape(f'{r.planner} {r.case} {g.grader}: {g.detail}')}",
                      highlight=False)
    if len(failed) > failures:
        console.print(f"… and {len(failed) - failures} more failed grades (see --out/--html)")


def _end_to_end(report: EvalReport) -> Table:
    """Where the cases ended (after triage, plan, guard, target check and routing) and
    how many met their ``expect_outcome`` / ``expect_routing``."""
    ends = ("routed", "needs_human", "drop", "hold")
    table = Table(title="end to end (cases by where they ended; expected: passed/applicable)",
                  title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("planner", "outcome", "routing", *ends):
        table.add_column(column, justify="left" if column == "planner" else "right",
                         no_wrap=True)
    for p in report.planners:
        mine = [r for r in report.results if r.planner == p.planner]
        table.add_row(p.planner, *(_fraction(p.graders.get(g)) for g in
                                   ("end_to_end_expected", "routing_expected")),
                      *(str(sum(r.end == end for r in mine)) for end in ends))
    return table


def _fraction(counts: list[int] | None) -> str:
    return f"{counts[0]}/{counts[1]}" if counts else "0/0"


def write_json(report: EvalReport, path: Path) -> None:
    path.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n",
                    encoding="utf-8")


def render_html(report: EvalReport) -> str:
    env = SandboxedEnvironment(undefined=StrictUndefined,
                               autoescape=select_autoescape(default=True))
    source = (resources.files("decisionops.evals") / "templates" / "report.html.j2").read_text("utf-8")
    return env.from_string(source).render(report=report.to_json(), policy=POLICY,
                                          quality=QUALITY, pct=_pct)


def write_html(report: EvalReport, path: Path) -> None:
    path.write_text(render_html(report), encoding="utf-8")
