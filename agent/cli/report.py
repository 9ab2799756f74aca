"""``decisionops report``: the value report for a period, as a self-contained HTML file
with its charts also written beside it as PNG files, or as JSON figures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from decisionops.agent.cli._common import console, fail, print_json, say, settings
from decisionops.agent.cli.outcomes import open_store
from decisionops.agent.models import utcnow
from decisionops.agent.report import (
    SUCCESS_LABELS,
    build_report,
    parse_since,
    render_text,
    success_labels,
    write_report,
)

__all__ = ["report"]


def report(
    since: Annotated[str, typer.Option(
        "--since", help="Start of the period: 12h, 7d, 30d, 2w, or an ISO date (2026-11-01) "
        "or time.")] = "30d",
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="HTML file to write; charts go beside it as `<name>-<chart>.png`. "
        "Default report.html (with --json: no files unless given).", dir_okay=False)] = None,
    success: Annotated[list[str] | None, typer.Option(
        "--success", help="An outcome label that counts as success (repeatable). Default: "
        + ", ".join(SUCCESS_LABELS) + ".")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    as_text: Annotated[bool, typer.Option(
        "--text", help="Print the report as plain text (no files unless --out is given).")
    ] = False,
) -> None:
    """Value captured (realized vs expected), uplift over the control group with 95%
    confidence intervals, approval latency per function (p50/p95), step success per
    tool, and LLM spend per model with today's use of the daily spend cap
    (llm_daily_spend_cap), for the period since --since.

    Example: decisionops report --since 30d --out report.html

    Example: decisionops report --since 7d --text

    Example: decisionops report --since 2026-11-01 --json
    """
    if as_json and as_text:
        raise fail("--text: give --text or --json, not both")
    now = utcnow()
    try:
        start = parse_since(since, now=now)
    except ValueError as exc:
        raise fail(f"--since: {exc}") from None
    try:
        labels = success_labels(success) if success else list(SUCCESS_LABELS)
    except ValueError as exc:
        raise fail(f"--success: {exc}") from None
    target = out if out is not None else (None if as_json or as_text else Path("report.html"))
    if target is not None:
        if target.is_dir():
            raise fail(f"--out: {target} is a folder; name the HTML file to write")
        if not target.parent.is_dir():
            raise fail(f"--out: the folder {target.parent} does not exist")
    warning = settings().uplift_warning
    if warning and not as_json:  # --json carries it in "warnings"
        say("[yellow]warning:[/] {}", warning, err=True, highlight=False)
    with open_store() as store:
        data = build_report(store, since=start, success_labels=labels,
                            daily_spend_cap=settings().llm_daily_spend_cap,
                            warnings=[warning] if warning else [])
    files = write_report(data, target) if target is not None else None
    if as_json:
        print_json(data.model_dump(mode="json"))
        return
    if as_text:
        print(render_text(data), end="")
        return
    assert files is not None
    console.print(f"wrote {files.html} and {len(files.charts)} charts beside it "
                  f"({', '.join(p.name for p in files.charts.values())})", highlight=False)
    console.print(f"LLM: {data.llm.calls} call(s), cost {data.llm.cost:.4f} in the period; "
                  + data.llm.cap_summary(), highlight=False, markup=False)
    if data.simulated_outcomes:
        say("[yellow]note: {} of {} outcomes are simulated (demo data)[/]",
            data.simulated_outcomes, data.outcomes)
