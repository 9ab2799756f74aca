"""``decisionops export``: data for other tools. ``export outcomes`` writes decisions,
prediction features and outcomes (control-group rows flagged) for model retraining."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from decisionops.agent.cli._common import console, fail, print_json
from decisionops.agent.cli.outcomes import open_store
from decisionops.agent.models import utcnow
from decisionops.agent.report import parse_since, write_export

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help=(
    "Export data for other tools.\n\n"
    "Example: decisionops export outcomes --format parquet --out outcomes.parquet"))

_FORMATS = ("parquet", "csv")


@app.command("outcomes")
def outcomes(
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write (replaced).",
                                      dir_okay=False)],
    fmt: Annotated[str | None, typer.Option(
        "--format", "-f", help="parquet or csv (default: from the --out suffix).")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="Only predictions observed since: 7d, 30d, 12h or an ISO date.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """One row per treated or control prediction and outcome: the prediction (score,
    features as feature_* columns, explanation), its triage and decision, and the outcome
    (label, success, value realized); rows without an outcome yet have empty outcome
    columns. Control-group rows have control=true. In CSV, text cells starting with
    = + - @ are prefixed with ' so spreadsheets do not run them as formulas.

    Example: decisionops export outcomes --format parquet --out outcomes.parquet

    Example: decisionops export outcomes --format csv --out outcomes.csv --since 90d
    """
    chosen = fmt or {".parquet": "parquet", ".csv": "csv"}.get(out.suffix.lower())
    if chosen not in _FORMATS:
        raise fail(f"--format: {(fmt or out.suffix or '(none)')!r} is not one of parquet, csv"
                   + ("" if fmt else " (give --format, or an --out ending in .parquet or .csv)"))
    if out.is_dir():
        raise fail(f"--out: {out} is a folder; name the file to write")
    if not out.parent.is_dir():
        raise fail(f"--out: the folder {out.parent} does not exist")
    start = None
    if since is not None:
        try:
            start = parse_since(since, now=utcnow())
        except ValueError as exc:
            raise fail(f"--since: {exc}") from None
    with open_store() as store:
        rows = write_export(store, out, chosen, since=start)  # type: ignore[arg-type]
    if as_json:
        print_json({"out": str(out), "format": chosen, "rows": rows})
    else:
        console.print(f"wrote {rows} rows to {out} ({chosen})", highlight=False)
