"""``decisionops eval``: score planners on a scenario dataset (``--suite core``, the
default), or attack the whole runtime and audit every effect (``--suite adversarial``).

Exit codes: 0 every planner passed every policy grader and no case errored (core), or
no effect was outside policy and every adversarial case held (adversarial); 1 a policy
grader failed, an effect was outside policy (known holes included), or a case failed or
errored; 2 bad usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from decisionops.agent.cli._common import console, err_console, fail, print_json, settings

__all__ = ["eval_"]

SUITES = ("core", "adversarial")
_PLANNERS = "playbook,llm,hybrid"


def eval_(
    suite: Annotated[str, typer.Option(
        "--suite", "-s", help="core: score planners on scenario cases; adversarial: attack "
        "approvals, executor and planners on throw-away runtimes and audit every effect.")
    ] = "core",
    planner: Annotated[str | None, typer.Option(
        "--planner", "-p", help=f"core: comma-separated planners (default {_PLANNERS}).")
    ] = None,
    dataset: Annotated[Path | None, typer.Option(
        help="core: dataset YAML (default: the bundled evals/datasets/core.yaml).",
        exists=True, dir_okay=False, readable=True)] = None,
    live: Annotated[bool | None, typer.Option(
        "--live/--scripted", help="core: LLM planners against the configured endpoint, or "
        "against the dataset's scripted responses (default: live when DECISIONOPS_LLM_BASE_URL "
        "is set).")] = None,
    case: Annotated[list[str] | None, typer.Option(
        "--case", help="adversarial: only cases whose id contains this (repeatable).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the JSON report to this file.")] = None,
    html: Annotated[Path | None, typer.Option(help="core: write a self-contained HTML report.")
                    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON report.")] = False,
) -> None:
    """Score planners on scenario cases (policy and quality graders) and print a table;
    or, with --suite adversarial, run the adversarial suite and print
    'effects outside policy: X of N'. Exits 1 when a policy grader fails or a case
    errors (core: quality and end-to-end graders are scored, not gating), or when an
    effect is outside policy or an adversarial case fails.

    Example: decisionops eval --planner playbook,llm,hybrid --dataset evals/datasets/core.yaml

    Example: decisionops eval --planner hybrid --scripted --html eval.html --out eval.json

    Example: decisionops eval --suite adversarial --case inj- --json
    """
    if suite not in SUITES:
        raise fail(f"--suite: {suite!r} is not one of {', '.join(SUITES)}")
    if suite == "adversarial":
        given = [name for name, value in (("--planner", planner), ("--dataset", dataset),
                                          ("--live/--scripted", live), ("--html", html))
                 if value is not None]
        if given:
            raise fail(f"{given[0]}: applies to --suite core, not adversarial")
        _adversarial(case or [], out, as_json)
        return
    if case:
        raise fail("--case: applies to --suite adversarial")
    _core(planner or _PLANNERS, dataset, live, out, html, as_json)


def _core(planner: str, dataset: Path | None, live: bool | None, out: Path | None,
          html: Path | None, as_json: bool) -> None:
    from decisionops.evals import (
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
        print_report(report, _styled_console())
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


def _styled_console() -> Console:
    """For the report printers of ``decisionops.evals``, which write their styling as
    markup (``[red]error[/]``): a console with markup on (the CLI's own are off)."""
    return Console(markup=True)


def _adversarial(patterns: list[str], out: Path | None, as_json: bool) -> None:
    # The suite builds its own runtimes on temporary files: no DECISIONOPS_* setting
    # (database, endpoint, model) is read or touched.
    from decisionops.evals.adversarial import all_cases, print_suite, run_suite, write_suite

    cases = [c for c in all_cases() if not patterns or any(p in c.id for p in patterns)]
    if not cases:
        raise fail(f"--case: no adversarial case id contains {' or '.join(patterns)!r}")
    with Progress(console=err_console, transient=True, disable=as_json) as progress:
        task = progress.add_task("attacking", total=len(cases))
        report = run_suite(cases, progress=lambda r: progress.update(
            task, advance=1, description=escape(f"{r.id}: {r.status}")))
    if out is not None:
        write_suite(report, out)
    if as_json:
        print_json(report.to_json())
    else:
        print_suite(report, _styled_console())
        if out is not None:
            console.print(f"wrote {out}")
    if not report.passed:
        if not as_json:
            broken = ", ".join(r.id for r in report.broken) or "-"
            err_console.print(f"{report.line()}; failed or errored cases: {broken}",
                              highlight=False)
        raise typer.Exit(1)
