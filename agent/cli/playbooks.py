"""``decisionops playbooks``: what the loaded playbooks answer — each one's kind, trigger
(minimum score, minimum expected value, cooldown) and the functions and tools its steps
involve. Read from the bundled playbooks and ``playbooks_dir``; no store is opened."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from decisionops.agent.cli._common import (
    console,
    fail,
    print_json,
    say,
    settings,
)
from decisionops.agent.errors import ConfigError, status_for
from decisionops.agent.playbooks import Playbook, PlaybookBook, load_playbooks
from decisionops.agent.policy import load_policies

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="The playbooks that answer prediction kinds.\n\n"
                  "Example: decisionops playbooks list")


def _row(playbook: Playbook) -> dict[str, Any]:
    trigger = playbook.trigger
    return {"name": playbook.name, "kind": playbook.kind, "version": playbook.version,
            "priority": playbook.priority, "match": playbook.match,
            "description": playbook.description,
            "trigger": {"min_score": trigger.min_score,
                        "min_expected_value": trigger.min_expected_value,
                        "cooldown_days": trigger.cooldown_days},
            "needs_value_at_stake": trigger.min_expected_value > 0,
            "functions": sorted({s.function for s in playbook.steps}),
            "tools": sorted({s.tool for s in playbook.steps}),
            "steps": len(playbook.steps)}


@app.command("list")
def list_(kind: Annotated[str | None, typer.Option(help="Only playbooks of this kind.")] = None,
          as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False
          ) -> None:
    """Each playbook: the kind it answers, its trigger (min score, min expected value =
    score * value at stake, cooldown days) and the business functions it involves. A
    prediction whose kind is not listed has no playbook. A bundled playbook is off when
    the function policies leave no way to run it (a function they do not have, a tool it
    may not use): its kind's predictions then wait for a person.

    Example: decisionops playbooks list

    Example: decisionops playbooks list --kind churn --json
    """
    s = settings()
    try:
        book = load_playbooks(s.playbooks_dir)
    except ConfigError as exc:
        raise fail(f"playbooks: {exc.message}", status=status_for(exc),
                   field=exc.details.get("field")) from None
    try:  # bundled playbooks the function policies leave no way to run are off
        off = book.fitting({n: p.tools for n, p in
                            load_policies(s.functions_file).functions.items()}).off
    except ConfigError:
        off = {}  # the policies do not load: the refusal below says why
    rows = sorted(({**_row(p), "off": off.get(p.name)} for p in book.playbooks.values()),
                  key=lambda r: (r["kind"], r["priority"], r["name"]))
    if kind is not None:
        if kind not in book.kinds():
            raise fail(f"--kind: no playbook answers {kind!r}; kinds: "
                       + ", ".join(sorted(book.kinds())))
        rows = [r for r in rows if r["kind"] == kind]
    if as_json:  # one JSON document: the refusal alone, when there is one
        _refuse_if_run_would(book)
        print_json(rows)
        return
    if not rows:
        say("[dim]no playbooks loaded[/]")
    else:
        _print(rows)
    _refuse_if_run_would(book)


def _refuse_if_run_would(book: PlaybookBook) -> None:
    """The checks `run` makes at its start, with the tools as the runtime builds them."""
    from decisionops.agent.cli.toolbox import built_registry, refuse_if_run_would

    with built_registry() as (s, policies, registry):
        refuse_if_run_would("the playbooks", s, policies, registry, book)


def _print(rows: list[dict[str, Any]]) -> None:
    table = Table(title="Playbooks", title_justify="left", box=box.SIMPLE_HEAD,
                  pad_edge=False, collapse_padding=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("playbook", no_wrap=True)
    for column in ("min score", "min EV", "cooldown"):  # EV: expected value
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("functions", overflow="fold", min_width=12)
    for r in rows:
        trigger = r["trigger"]
        table.add_row(r["kind"], r["name"] + (" (off)" if r["off"] else ""),
                      f"{trigger['min_score']:.2f}",
                      f"{trigger['min_expected_value']:,.0f}", f"{trigger['cooldown_days']:g} d",
                      " ".join(r["functions"]))
    console.print(table)
    for r in rows:
        if r["off"]:
            say("[yellow]{} is off[/]: {}; its {} predictions wait for a person", r["name"],
                r["off"], r["kind"], highlight=False)
    if any(r["needs_value_at_stake"] for r in rows):
        say("[dim]min EV: minimum expected value (score * value_at_stake); a prediction needs "
            "value_at_stake for it (ingest --value-column).[/]")
