"""Whether the stored predictions are the rows their batches' ledger entries commit to:
``_ledger_rows``'s check, for the predictions table (trial 14: a prediction's score and
value at stake rewritten in the database passed ``ledger verify``; only ``ledger
prove-row`` of that one id caught it).

Each batch accepted is one ``predictions.ingested`` entry holding how many rows it
stored and the Merkle root over their row hashes in id order (``_predictions``); each
row keeps the entry's seq (``ingest_seq``). Read once, batch by batch: every row's hash
is recomputed from its stored JSON and the batch's root and count compared with the
entry's, and the columns stored beside the JSON (what triage, listings and the report
read) must say what the JSON says (a row today's rules no longer accept, taken under
earlier ones, is covered by its hash alone). A root that differs names the batch, not the row (a
root commits to the whole batch); a column names the row. Predictions stored before
batch entries (no ``ingest_seq``) had an entry each and are not checked here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, Text, cast, select

from decisionops.agent.hashing import merkle_leaf, merkle_root
from decisionops.agent.models import Prediction
from decisionops.agent.store._ledger_value import stream
from decisionops.agent.store._tables import predictions

__all__ = ["COPIED", "STORED_TEXT", "check_batches", "copies_differ", "stored_leaf"]

COPIED = ("kind", "entity_type", "entity_id", "model", "model_version", "score",
          "value_at_stake", "observed_at")
"""The columns stored beside a row's JSON, copied from it: a row's proof covers them."""

Add = Callable[..., None]
"""``Found.add(table, id, field, row, ledger, seq)``."""
Progress = Callable[[int, int], None]
"""Called with (rows checked, rows the entries record) as the check goes."""
_EVERY = 20_000

STORED_TEXT = cast(predictions.c.payload, Text).label("text")
"""A row's JSON as stored: the text intake hashed (``model_dump_json``; SQLite's text and
PostgreSQL's ``json`` keep it as written), so a row accepted under earlier validation
rules hashes as it did then."""
_ROWS = (select(predictions.c.ingest_seq, predictions.c.id, STORED_TEXT,
                *(predictions.c[name] for name in COPIED))
         .where(predictions.c.ingest_seq.is_not(None))
         .order_by(predictions.c.ingest_seq))


def stored_leaf(text: str) -> bytes:
    """The row hash of a prediction stored as ``text`` (``STORED_TEXT``)."""
    return merkle_leaf(text.encode("utf-8"))


def copies_differ(proven: Prediction, columns: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """The copied columns that no longer say what ``proven`` says: (column, stored, the
    row's)."""
    differ = []
    for name in COPIED:
        want, got = getattr(proven, name), columns[name]
        if isinstance(want, datetime) and isinstance(got, datetime):
            same = want == (got if got.tzinfo else got.replace(tzinfo=UTC))
        else:
            same = want == got
        if not same:
            differ.append((name, got, want))
    return differ


def check_batches(conn: Connection, batches: Mapping[int, tuple[str, int]], add: Add,
                  progress: Progress | None = None) -> int:
    """Every stored row of a batch entry against it (``batches``: seq → the root and
    the row count the entry records); how many rows were read. A batch whose rows are
    all gone is named too. About 35 µs a row (the row read, validated and hashed as
    intake hashed it): ``progress`` hears of it every 20,000 rows."""
    count = 0
    total = sum(rows for _, rows in batches.values())
    unread = set(batches)
    for seq, group in groupby(stream(conn, _ROWS), key=lambda r: r.ingest_seq):
        rows = sorted(group, key=lambda r: r.id)  # leaves in id order (code points)
        if progress is not None and (count + len(rows)) // _EVERY > count // _EVERY:
            progress(count + len(rows), total)
        count += len(rows)
        unread.discard(seq)
        leaves = [stored_leaf(row.text) for row in rows]
        recorded = batches.get(seq)
        whole = (recorded is not None and len(leaves) == recorded[1]
                 and merkle_root(leaves) == recorded[0])
        for row in rows:
            try:
                stored_row = Prediction.model_validate_json(row.text)
            except ValidationError:
                continue  # accepted under earlier rules: its hash still covers it
            for name, got, want in copies_differ(stored_row, row._mapping):
                if whole:  # the payload is the one the ledger proves: the column changed
                    add("predictions", row.id, name, got, want, seq)
                else:  # the batch does not prove its payloads: either may be the forgery
                    add("predictions", row.id, f"payload.{name}", want,
                        f"not proven by its batch's root; column {name}: {got!r}", seq)
        if recorded is None:
            add("predictions", f"batch {seq}", "rows", len(rows), None, None)
            continue
        root, stored = recorded
        if not whole:
            add("predictions", f"batch {seq}", "rows",
                f"{len(rows)} rows hashing to {merkle_root(leaves)[:16]}…",
                f"{stored} rows, root {root[:16]}…", seq)
    for seq in sorted(unread):
        _, stored = batches[seq]
        add("predictions", f"batch {seq}", "row", None, f"{stored} rows", seq)
    return count

