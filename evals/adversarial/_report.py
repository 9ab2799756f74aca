"""The suite's output: a table of the cases, each case with effects outside policy
listed with why, and the summary line; the JSON report written to a file."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from decisionops.evals.adversarial._suite import SuiteReport

__all__ = ["print_suite", "write_suite"]

_STYLE = {"passed": "green", "xfail": "yellow", "outside": "bold red", "failed": "red",
          "error": "red", "xpass": "red"}


def print_suite(report: SuiteReport, console: Console) -> None:
    table = Table(title="adversarial suite", title_justify="left")
    for column in ("case", "finding", "attack", "effects", "outside", "result"):
        table.add_column(column, overflow="fold")
    for r in report.results:
        style = _STYLE.get(r.status, "")
        table.add_row(r.id, r.finding, r.title, str(r.effects),
                      str(len(r.outside)), f"[{style}]{r.status}[/]")
    console.print(table)
    for r in report.results:
        if r.outside or r.message or r.status == "xfail":
            console.print(f"[bold]{escape(r.id)}[/] ({r.status}): {escape(r.title)}")
            if r.expected_failure:
                console.print(f"  expected to fail: {escape(str(r.expected_failure))}")
            for violation in r.outside:
                console.print(f"  outside policy {escape(violation.line())}", highlight=False)
            if r.message:
                console.print(f"  {escape(r.message.strip())}", highlight=False)
    console.print(f"[bold]{report.line()}[/] ({sum(r.effects for r in report.results)} effects "
                  f"audited, {len(report.results)} cases, {report.seconds:.1f} s)")


def write_suite(report: SuiteReport, path: Path) -> Path:
    """The JSON report (``SuiteReport.to_json``) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n", "utf-8")
    return path
