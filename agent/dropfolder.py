"""The drop folder: prediction files a producer drops into a folder, ingested once they
are finished, then moved out of the way so each is read once.

- Only finished files: a file is taken when its size and modification time are the same
  at two looks (two polls); a file still being written changes between them. A writer
  may pause longer than that: a file that does not end as a finished one of its format
  does (a line format: with a newline; JSON: with ``]`` or ``}``; Parquet: its footer)
  also waits, until it does or it has rested ``QUIET_SECONDS`` unchanged (a producer that
  writes no final newline). Names
  starting with ``.`` or ``~`` and ``*.part``/``*.tmp``/``*.partial``/``*.crdownload``
  files are never taken (write to ``x.csv.part``, then rename to ``x.csv``).
- A file with at least one usable row (or none bad) goes to ``processed/``; a file with
  no usable row, or refused whole (unreadable, header lacking a column…), goes to
  ``rejected/``. Either way, when rows were rejected, ``NAME.errors.txt`` (one line per
  problem) and ``NAME.errors.json`` (row, line, field, message; for a file refused
  whole, ``error``: the body ``ingest --json`` prints) are written beside it, and a
  warning is logged.
- Nothing is overwritten: a file whose name is already in ``processed/`` or
  ``rejected/`` is moved as ``NAME-2.csv``, ``NAME-3.csv``…

What the first look saw is kept in the source's cursor (JSON), so several workers and
restarts agree. Reading formats lives in ``agent.sources``; scheduling in
``agent.housekeeping``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from decisionops.agent.errors import InvalidInputError, error_body, error_fields, status_for
from decisionops.agent.sources import FieldMapping, IngestTally
from decisionops.agent.sources._parallel import iter_prepared

__all__ = ["DropReport", "poll_folder"]

log = logging.getLogger("decisionops.sources")

SUFFIXES = frozenset({".csv", ".tsv", ".jsonl", ".ndjson", ".json", ".parquet", ".pq"})
QUIET_SECONDS = 60.0
"""How long a file that does not end as a finished file ends must rest before it is taken."""
UNFINISHED = frozenset({".part", ".tmp", ".partial", ".crdownload", ".swp"})


@dataclass
class DropReport:
    """One poll of a drop folder."""

    ingested: int = 0
    """Predictions new to the store."""
    processed: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    """Files seen for the first time or still changing: taken at a later look."""
    cursor: str | None = None
    """What this look saw, for the next one (the source state's cursor)."""


def _candidates(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith((".", "~"))
                  and p.suffix.lower() in SUFFIXES and p.suffix.lower() not in UNFINISHED)


def _seen(cursor: str | None) -> dict[str, list[int]]:
    try:
        seen = json.loads(cursor) if cursor else {}
    except ValueError:
        return {}
    return seen if isinstance(seen, dict) else {}


def poll_folder(rt: Any, folder: Path, *, name: str, fmt: str, mapping: FieldMapping,
                cursor: str | None) -> DropReport:
    """Ingest the finished files of ``folder`` (see the module docstring)."""
    before = _seen(cursor)
    report = DropReport()
    now: dict[str, list[int]] = {}
    for path in _candidates(folder):
        try:
            stat = path.stat()
        except OSError:
            continue  # gone between the listing and now
        signature = [stat.st_size, stat.st_mtime_ns]
        seen = before.get(path.name)
        if seen is None or seen[:2] != signature:
            now[path.name] = [*signature, time.time()]  # when it was first seen like this
            report.waiting.append(path.name)
            continue
        resting = time.time() - (seen[2] if len(seen) > 2 else 0.0)
        if not _ends_finished(path) and resting < QUIET_SECONDS:
            now[path.name] = seen
            report.waiting.append(path.name)
            continue
        _take(rt, path, name=name, fmt=fmt, mapping=mapping, report=report)
    report.cursor = json.dumps(now, sort_keys=True)
    return report


def _ends_finished(path: Path) -> bool:
    """Whether the file ends as a finished file of its format does (see the module
    docstring); an empty file does (it is refused as such)."""
    suffix = path.suffix.lower()
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - 64))
            tail = handle.read()
    except OSError:
        return False
    if not tail:
        return True
    if suffix in (".parquet", ".pq"):
        return tail.endswith(b"PAR1")
    if suffix == ".json":
        return tail.rstrip().endswith((b"]", b"}"))
    return tail.endswith(b"\n")


def _take(rt: Any, path: Path, *, name: str, fmt: str, mapping: FieldMapping,
          report: DropReport) -> None:
    tally = IngestTally()  # the counts every channel reports (``IngestSummary``)
    problems: list[str] = []
    refusal: dict[str, Any] | None = None
    try:
        for chunk in iter_prepared(path, fmt, mapping, aliases=rt.settings.kind_aliases):
            tally.add(chunk, rt.ingest(chunk.rows, source=f"{name}:{path.name}"))
    except InvalidInputError as exc:  # the whole file is unusable
        problems = [exc.message]
        refusal = error_body(status_for(exc), exc.message, **error_fields(exc))["error"]
    summary = tally.summary()
    report.ingested += summary.ingested
    usable = not problems and (summary.ingested + summary.already_stored > 0
                               or not summary.rejected)
    target = path.parent / ("processed" if usable else "rejected")
    target.mkdir(exist_ok=True)
    dest = _unique(target / path.name)
    shutil.move(str(path), dest)
    (report.processed if usable else report.rejected).append(dest.name)
    if not (problems or summary.errors):
        return
    text = problems + [str(e) for e in summary.errors]
    (target / f"{dest.name}.errors.txt").write_text("\n".join(text) + "\n", encoding="utf-8")
    detail = {"file": path.name, "moved_to": str(dest),
              "refused": problems[0] if problems else None, "error": refusal,
              **summary.model_dump(mode="json")}
    (target / f"{dest.name}.errors.json").write_text(json.dumps(detail, indent=2) + "\n",
                                                     encoding="utf-8")
    log.warning("drop folder %s: %s %s (%s); see %s.errors.txt", name, path.name,
                "rejected" if not usable else f"taken with {summary.rejected} rejected rows",
                problems[0] if problems
                else f"{summary.rejected} of {summary.rows_read} rows rejected", dest)


def _unique(dest: Path) -> Path:
    """``dest``, or ``NAME-2.ext``, ``NAME-3.ext``… when that is taken (never overwrite)."""
    if not dest.exists():
        return dest
    stem, suffix = dest.name[: -len(dest.suffix)] if dest.suffix else dest.name, dest.suffix
    n = 2
    while (candidate := dest.with_name(f"{stem}-{n}{suffix}")).exists():
        n += 1
    return candidate
