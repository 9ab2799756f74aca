"""``decisionops ledger``: verify the hash chain, list entries, archive old entries."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from agent.cli._common import console, err_console, fail, print_json, print_table, runtime
from agent.models import utcnow
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
        console.print(f"[green]ledger verifies[/]: {report.entries} entries "
                      f"({report.archived} of them from archived segments), head "
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


@app.command("archive")
def archive(
    older_than_days: Annotated[float | None, typer.Option(
        "--older-than-days", help="Archive entries older than this many days (default: the "
        "retention_days setting).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Archive old ledger entries now: move them, oldest first, out of the ledger table
    into compressed segments in the store (the loop does this after retention_days on its
    own). Every reader and `ledger verify` still see the one chain. Entries that unfinished
    work still reads stay: those of decisions not finished and of predictions not decided
    yet.

    Example: decisionops ledger archive

    Example: decisionops ledger archive --older-than-days 90 --json
    """
    if older_than_days is not None and older_than_days < 0:
        raise fail(f"--older-than-days: must be 0 or more, not {older_than_days:g}")
    totals = {"segments": 0, "entries": 0, "raw_bytes": 0, "stored_bytes": 0}
    with runtime() as rt:
        days = rt.settings.retention_days if older_than_days is None else older_than_days
        cutoff = utcnow() - timedelta(days=days)
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err_console,
                      transient=True, disable=as_json) as progress:
            task = progress.add_task("archiving ledger entries", total=None)
            while (done := rt.store.archive_ledger(
                    cutoff, max_entries=rt.settings.ledger_segment_entries))["segments"]:
                for key in totals:
                    totals[key] += done[key]
                if not as_json:
                    progress.console.print(
                        f"segment {totals['segments']}: entries {done['first_seq']} to "
                        f"{done['last_seq']}, {_size(done['raw_bytes'])} stored in "
                        f"{_size(done['stored_bytes'])}", highlight=False)
                progress.update(task, description=f"archived {totals['entries']:,} entries")
    if as_json:
        print_json({"cutoff": cutoff, **totals})
    elif not totals["segments"]:
        console.print(f"nothing to archive: no ledger entry is older than {days:g} days "
                      "(entries that unfinished work still reads stay)")
    else:
        console.print(f"archived {totals['entries']:,} entries in {totals['segments']} "
                      f"segment(s): {_size(totals['raw_bytes'])} as JSON, "
                      f"{_size(totals['stored_bytes'])} stored "
                      f"({totals['raw_bytes'] / max(totals['stored_bytes'], 1):.1f}x smaller)")


def _size(n: int) -> str:
    return f"{n / 1024:,.1f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:,.1f} MB"
