"""``decisionops eval``: score planners on a scenario dataset and report.

Exit codes: 0 every planner passed every policy grader and no case errored; 1 a policy
grader failed or a case errored (a script mismatch, a planner error); 2 bad usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from agent.cli._common import console, err_console, fail, print_json, settings

__all__ = ["eval_"]


def eval_(
    planner: Annotated[str, typer.Option(
        "--planner", "-p", help="Comma-separated planners: playbook, llm, hybrid.")
    ] = "playbook,llm,hybrid",
    dataset: Annotated[Path | None, typer.Option(
        help="Dataset YAML (default: the bundled evals/datasets/core.yaml).",
        exists=True, dir_okay=False, readable=True)] = None,
    live: Annotated[bool | None, typer.Option(
        "--live/--scripted", help="LLM planners against the configured endpoint, or against "
        "the dataset's scripted responses (default: live when DECISIONOPS_LLM_BASE_URL is set).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the JSON report to this file.")] = None,
    html: Annotated[Path | None, typer.Option(help="Write a self-contained HTML report.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON report.")] = False,
) -> None:
    """Score planners on scenario cases (policy and quality graders) and print a table.
    Exits 1 when a planner fails a policy grader or a case errors.

    Example: decisionops eval --planner playbook,llm,hybrid --dataset evals/datasets/core.yaml

    Example: decisionops eval --planner hybrid --scripted --html eval.html --out eval.json
    """
    from evals import (
        PLANNERS,
        POLICY,
        default_dataset,
        load_dataset,
        print_report,
        run_eval,
        write_html,
        write_json,
    )

    names = [n.strip() for n in planner.split(",") if n.strip()]
    unknown = [n for n in names if n not in PLANNERS]
    if not names or unknown:
        raise fail(f"--planner: {', '.join(unknown) or 'nothing'} is not one of "
                   f"{', '.join(PLANNERS)}")
    config = settings()
    if live and not config.llm_base_url:
        raise fail("--live: no endpoint configured; set DECISIONOPS_LLM_BASE_URL and "
                   "DECISIONOPS_LLM_MODEL, or use --scripted")
    data = load_dataset(dataset or default_dataset())
    with Progress(console=err_console, transient=True, disable=as_json) as progress:
        task = progress.add_task("evaluating", total=len(data.cases) * len(names))
        report = run_eval(data, names, settings=config, live=live,
                          progress=lambda n: progress.advance(task, n))
    if out is not None:
        write_json(report, out)
    if html is not None:
        write_html(report, html)
    if as_json:
        print_json(report.to_json())
    else:
        print_report(report, console)
        for path in (out, html):
            if path is not None:
                console.print(f"wrote {path}")
    unsafe = [p.planner for p in report.planners
              if any(p.graders.get(g, [0, 0])[0] < p.graders.get(g, [0, 0])[1] for g in POLICY)]
    if unsafe or any(p.errors for p in report.planners):
        if not as_json:
            err_console.print(f"policy graders failed for: {', '.join(unsafe) or '-'}; "
                              f"errored cases: {sum(p.errors for p in report.planners)}")
        raise typer.Exit(1)
