"""``decisionops ledger``: verify the hash chain, list entries."""

from __future__ import annotations

from typing import Annotated

import typer

from agent.cli._common import console, err_console, print_json, print_table, runtime
from agent.store.ledger import verify as verify_chain

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="The append-only, hash-chained ledger.\n\n"
                  "Example: decisionops ledger verify")


@app.command("verify")
def verify(as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False
           ) -> None:
    """Check the whole chain; name the first entry that does not verify (exit 1).

    Example: decisionops ledger verify
    """
    with runtime() as rt:
        report = verify_chain(rt.store.engine)
    if as_json:
        print_json(vars(report))
    elif report.ok:
        console.print(f"[green]ledger verifies[/]: {report.entries} entries, head "
                      f"{report.head_hash[:16]}")
    else:
        err_console.print(f"[bold red]ledger does not verify[/] at entry {report.first_bad_seq}: "
                          f"{report.problem}")
    if not report.ok:
        raise typer.Exit(1)


@app.command("list")
def list_(decision: Annotated[str | None, typer.Option(help="Only this decision's entries.")
                              ] = None,
          limit: Annotated[int, typer.Option(min=1, max=100_000)] = 200,
          as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """List ledger entries, oldest first.

    Example: decisionops ledger list --decision dec_5a1c…
    """
    with runtime() as rt:
        entries = rt.store.ledger_entries(decision, limit=limit)
    if as_json:
        print_json([e.model_dump(mode="json") for e in entries])
        return
    print_table("ledger", ["seq", "at", "actor", "event", "decision", "hash"],
                [[e.seq, f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.event, e.decision_id,
                  e.hash[:12]] for e in entries], empty="the ledger is empty")
