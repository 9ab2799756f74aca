"""``decisionops ledger``: verify the hash chain (against anchors too) and the rows written
with it, prove one row against its batch's entry, take an anchor, list entries, archive
old entries."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from decisionops.agent.cli._common import (
    console,
    err_console,
    exit_for,
    fail,
    limited,
    print_json,
    print_table,
    runtime,
    say,
    say_more,
)
from decisionops.agent.errors import InvalidInputError, LedgerCorrupt, RuntimeFailure
from decisionops.agent.housekeeping import post_configured_anchor
from decisionops.agent.models import utcnow
from decisionops.agent.store._anchor import Anchor, check_receiver, load_anchor, write_anchor
from decisionops.agent.store._ledger_rows import summary
from decisionops.agent.store.ledger import anchor as take_anchor
from decisionops.agent.store.ledger import verify as verify_chain

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="The append-only, hash-chained ledger.\n\n"
                  "Example: decisionops ledger verify --anchor anchors/2026-05-01.json")


@app.command("verify")
def verify(
    anchor_files: Annotated[list[Path] | None, typer.Option(
        "--anchor", metavar="FILE", help="Also check an anchor taken before with `decisionops "
        "ledger anchor`: the chain must still reach its entry, with its hash (repeatable)."
    )] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Check the whole chain; name the first entry that does not verify (exit 1). Then
    check the stored rows against what the ledger recorded: each approval's request and
    answer (status, approver, answer, approved arguments); each decision's status,
    prediction and expected value; each tool call's step, tool, arguments, status and
    receipt; each outcome (subject, treated or control, label, value, when, who recorded
    it); each prediction acted on or held out (its verdict); each stored prediction
    against its batch's entry (its row hash, and the columns copied from it: score, value
    at stake…); name every row that disagrees, with the field, the row's value and the
    ledger's, and every outcome or tool call made up or removed (exit 1).
    On its own the chain proves only that it is consistent: a tail cut off, or an entry
    rewritten with every hash after it recomputed, by someone who can write the
    database, still verifies. An anchor kept elsewhere (--anchor) catches both.

    Example: decisionops ledger verify

    Example: decisionops ledger verify --anchor april.json --anchor may.json
    """
    anchors: list[Anchor] = []
    for path in anchor_files or []:
        try:
            anchors.append(load_anchor(path))
        except InvalidInputError as exc:
            raise fail(f"--anchor: {exc.message}") from None
    with runtime() as rt, Progress(SpinnerColumn(), TextColumn("{task.description}",
                                                               markup=False),
                                   console=err_console, transient=True,
                                   disable=as_json) as shown:
        task = shown.add_task("verifying the ledger", total=None)

        def checked(done: int, total: int) -> None:
            shown.update(task, description=f"checking stored predictions: {done:,} of "
                                           f"{total:,}")

        report = verify_chain(rt.store.engine, anchors, progress=checked)
    if as_json:
        print_json(asdict(report))
    elif report.ok:
        held = f"; {report.anchors} anchor(s) hold" if anchors else ""
        say("[green]ledger verifies[/]: {} entries ({} of them from archived segments), head "
            "{}; {} approvals, {} decisions, {} plan versions, {} holds, {} users, {} tool "
            "calls, {} outcomes, {} triage verdicts and {} predictions agree with it{}",
            report.entries, report.archived, report.head_hash[:16], report.approvals,
            report.decisions, report.plans, report.holds, report.users, report.executions,
            report.outcomes, report.predictions, report.rows, held, highlight=False,
            soft_wrap=True)
    elif report.disagreeing:
        say("[bold red]ledger does not verify[/]: {} (changed without a ledger entry; the "
            "ledger's values are the record):", summary(report.disagreeing), err=True,
            highlight=False)
        for found in report.disagreements:
            say("  {}", str(found), err=True, highlight=False)
        if report.disagreeing > len(report.disagreements):
            say("  and {} more", report.disagreeing - len(report.disagreements), err=True,
                highlight=False)
    else:
        where = f" at entry {report.first_bad_seq}" if report.first_bad_seq is not None else ""
        say("[bold red]ledger does not verify[/]{}: {}", where, report.problem, err=True,
            highlight=False)
    if not report.ok:
        raise typer.Exit(1)


@app.command("anchor")
def anchor(
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", metavar="FILE", help="Write the anchor to this JSON file (replaced).")
    ] = None,
    post: Annotated[str | None, typer.Option(
        "--post", metavar="URL", help="Send the anchor as JSON in an HTTP POST to URL; exit 1 "
        "unless it answers 2xx.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the anchor document.")
                       ] = False,
) -> None:
    """Take an anchor: a small JSON document naming the head of the chain (its entry and
    hash), once the whole chain verifies. Keep it where whoever can write the database
    cannot (another system, another person); `decisionops ledger verify --anchor FILE`
    later proves the chain still holds it: no entry up to it removed or rewritten.

    Example: decisionops ledger anchor --out anchors/2026-05-01.json

    Example: decisionops ledger anchor --post https://audit.example.com/ledger-anchors --json
    """
    if out is not None:
        if out.is_dir():
            raise fail(f"--out: {out} is a folder; name the JSON file to write")
        if not out.parent.is_dir():
            raise fail(f"--out: the folder {out.parent} does not exist")
    shown = None
    if post is not None:
        try:
            shown = check_receiver(post)
        except InvalidInputError as exc:
            raise fail(f"--post: {exc.message}") from None
    with runtime() as rt:
        settings_used = rt.settings
        try:
            taken = take_anchor(rt.store.engine)
        except LedgerCorrupt as exc:
            raise exit_for(exc) from None
    if out is not None:
        try:
            write_anchor(taken, out)
        except OSError as exc:
            raise fail(f"--out: cannot write {out} ({exc.strerror or exc})", 1) from None
    status = None
    if post is not None:
        try:
            status = post_configured_anchor(settings_used, taken, post)
        except RuntimeFailure as exc:
            written = f" (the anchor was written to {out})" if out is not None else ""
            raise fail(f"--post: {exc.message}{written}", 1) from None
    if as_json:
        print_json(taken.model_dump(mode="json"))
        return
    at = taken.at.isoformat() if taken.at is not None else "-"
    console.print(f"ledger anchor: entry {taken.seq}, hash {taken.hash}, at {at}",
                  highlight=False)
    if out is not None:
        console.print(f"written to {out}", highlight=False)
    if status is not None:
        console.print(f"posted to {shown}: {status}", highlight=False)


@app.command("list")
def list_(decision: Annotated[str | None, typer.Option(help="Only this decision's entries.")
                              ] = None,
          limit: Annotated[int, typer.Option(min=1, max=100_000)] = 200,
          as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """List ledger entries, oldest first.

    Example: decisionops ledger list --decision dec_5a1c…
    """
    with runtime() as rt:
        entries, more = limited(rt.store.ledger.entries(decision, limit=limit + 1), limit)
    if as_json:
        print_json([e.model_dump(mode="json") for e in entries])
    else:
        print_table("ledger", ["seq", "at", "actor", "event", "decision", "hash"],
                    [[e.seq, f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.event, e.decision_id,
                      e.hash[:12]] for e in entries], empty="the ledger is empty")
    if more:
        say_more(limit, 100_000, as_json=as_json)


@app.command("prove-row")
def prove_row(prediction_id: Annotated[str, typer.Argument(help="The prediction's id.")],
              as_json: Annotated[bool, typer.Option("--json", help="Print the proof as JSON.")
                                 ] = False) -> None:
    """Prove one stored prediction against the ledger entry of the batch it came in: its
    row hash, recomputed from the stored row, and the Merkle path from it to the root the
    entry records (checkable without the database). Exit 1 when it does not hold; the
    chain around the entry is what ledger verify checks.

    Example: decisionops ledger prove-row churn-2026-11-20-ACC-10004 --json
    """
    with runtime() as rt:
        proof = rt.store.predictions.proof(prediction_id)
    if as_json:
        print_json(proof.as_dict())
    elif proof.ok:
        say("[green]row proven[/]: {} is row {} of {} in ledger entry {} (root {}…, {} hashes "
            "from its row hash)", prediction_id, proof.index + 1, proof.rows, proof.seq,
            proof.root[:16], len(proof.path), highlight=False)
    else:
        for problem in proof.problems:
            say("[bold red]row not proven[/]: {}", problem, err=True, highlight=False)
    if not proof.ok:
        raise typer.Exit(1)


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
        with Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False),
                      console=err_console,
                      transient=True, disable=as_json) as progress:
            task = progress.add_task("archiving ledger entries", total=None)
            while (done := rt.store.ledger.archive(
                    cutoff, max_entries=rt.settings.ledger_segment_entries))["segments"]:
                for key in totals:
                    totals[key] += done[key]
                if not as_json:
                    progress.console.print(
                        f"segment {totals['segments']}: entries {done['first_seq']} to "
                        f"{done['last_seq']}, {_size(done['raw_bytes'])} stored in "
                        f"{_size(done['stored_bytes'])}", highlight=False)
                progress.update(task, description=f"archived {totals['entries']:,} entries")
        held_back = None if totals["segments"] else rt.store.ledger.held_back(cutoff)
    if as_json:
        print_json({"cutoff": cutoff, **totals, "held_back_by": held_back})
    elif not totals["segments"]:
        if held_back:
            console.print(f"nothing to archive: entries older than {days:g} days stay while "
                          f"unfinished work reads them; the oldest: {held_back} (entries "
                          "since then wait for it to finish)", highlight=False)
        else:
            console.print(f"nothing to archive: no ledger entry is older than {days:g} days")
    else:
        console.print(f"archived {totals['entries']:,} entries in {totals['segments']} "
                      f"segment(s): {_size(totals['raw_bytes'])} as JSON, "
                      f"{_size(totals['stored_bytes'])} stored "
                      f"({totals['raw_bytes'] / max(totals['stored_bytes'], 1):.1f}x smaller)")


def _size(n: int) -> str:
    return f"{n / 1024:,.1f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:,.1f} MB"
