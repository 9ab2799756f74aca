"""What one intake did, in rows: ``IngestSummary``, the counts every channel reports under
the same names (``decisionops ingest --json``, the HTTP ingest routes), and
``IngestTally``, which adds them up batch by batch as the store takes them.

The channels only add what is theirs around it: the CLI the file, its batches and its
speed; the HTTP API the ids it stored. Not here: reading (``_files``, ``_serving``),
storing (``Runtime.ingest``), printing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from decisionops.agent.sources._batch import RowError, SourceBatch, clip
from decisionops.agent.sources._prepared import PreparedChunk

if TYPE_CHECKING:  # the store imports this package: only the type, not the module
    from decisionops.agent.store import IngestResult

__all__ = ["KEPT_ERRORS", "IngestSummary", "IngestTally"]

KEPT_ERRORS = 1000
"""Problems a summary lists; past them only the rows are counted (``errors_omitted``)."""


def _no_needs() -> dict[str, int]:
    return {"unknown_kind": 0, "no_value_at_stake": 0, "no_entity": 0}


class IngestSummary(BaseModel):
    """Counts in rows: a row with three problems is one rejected row."""

    rows_read: int = Field(0, description="Data rows read, good and bad (blank lines are "
                                          "not rows).")
    ingested: int = Field(0, description="Rows stored by this intake.")
    already_stored: int = Field(0, description="Rows whose id the store held before this "
                                               "intake (left as they were).")
    rejected: int = Field(0, description="Rows refused, each listed in errors (an id "
                                         "repeated in the input is one).")
    empty_rows: int = Field(0, description="CSV rows whose every cell is empty (a "
                                           "spreadsheet's leftover ',,,,'): nothing stored, "
                                           "nothing wrong.")
    needs: dict[str, int] = Field(default_factory=_no_needs, description=(
        "Rows lacking what triage needs: unknown_kind (no playbook answers it), "
        "no_value_at_stake, no_entity (rejected)."))
    kinds_without_playbook: list[str] = Field(default_factory=list, description=(
        "The kinds of stored rows no playbook answers (triage sends them to a person)."))
    already_stored_changed: int = Field(0, description=(
        "Of already_stored, the rows whose content differs from the stored prediction's "
        "(a re-scored row sent under its old id): the stored one stands, ids are "
        "immutable; send a correction under a new id."))
    already_stored_changed_ids: list[str] = Field(default_factory=list, description=(
        f"The first {KEPT_ERRORS} of those ids."))
    errors: list[RowError] = Field(default_factory=list, description=(
        f"The first {KEPT_ERRORS} problems of the rejected rows, with row and line."))
    errors_omitted: int = Field(0, description="Problems past those listed.")


@dataclass
class IngestTally:
    """An ``IngestSummary`` added up over the batches of one input, and the ledger
    entries of those batches (an id one of them stored is a repeat within the input)."""

    rows_read: int = 0
    ingested: int = 0
    already_stored: int = 0
    rejected: int = 0
    empty_rows: int = 0
    needs: dict[str, int] = field(default_factory=_no_needs)
    errors: list[RowError] = field(default_factory=list)
    omitted: int = 0
    changed: list[str] = field(default_factory=list)
    changed_count: int = 0
    unknown_kinds: set[str] = field(default_factory=set)
    batches: set[int] = field(default_factory=set)
    """The ledger entries of this input's batches."""

    def add(self, read: PreparedChunk | SourceBatch, result: IngestResult) -> None:
        """One batch: what was read of it and what the store did with its rows."""
        self.rows_read += read.rows_read
        self.empty_rows += read.empty_rows
        self.ingested += len(result.new)
        self.unknown_kinds.update(result.unknown_kinds)
        for key, count in result.needs.items():
            self.needs[key] = self.needs.get(key, 0) + count
        errors = list(read.errors)
        # An id an earlier batch of this input stored is a duplicate row of the input.
        repeats = [i for i in result.duplicates if result.stored_by.get(i) in self.batches]
        if repeats:
            ids = [r.id for r in (read.rows if isinstance(read, PreparedChunk)
                                  else read.predictions)]
            where = dict(zip(ids, zip(read.numbers, read.lines or [None] * len(ids),
                                      strict=True), strict=True))
            errors += [RowError(row=where[i][0], line=where[i][1], field="id", value=clip(i),
                                message="duplicate id; an earlier row was kept")
                       for i in repeats]
        if result.seq is not None:
            self.batches.add(result.seq)
        self.already_stored += len(result.duplicates) - len(repeats)
        repeated = set(repeats)
        changed = [i for i in result.changed if i not in repeated]
        self.changed_count += len(changed)
        self.changed += changed[:KEPT_ERRORS - len(self.changed)]
        self.rejected += len({e.row for e in errors})
        # Rows with no entity id at all (one refused for an id it cannot take has a value).
        self.needs["no_entity"] += len({e.row for e in errors
                                        if e.field == "entity_id" and e.value is None})
        room = KEPT_ERRORS - len(self.errors)
        self.errors += errors[:room]
        self.omitted += max(0, len(errors) - room)

    def summary(self) -> IngestSummary:
        return IngestSummary(rows_read=self.rows_read, ingested=self.ingested,
                             already_stored=self.already_stored, rejected=self.rejected,
                             already_stored_changed=self.changed_count,
                             already_stored_changed_ids=list(self.changed),
                             empty_rows=self.empty_rows,
                             needs=dict(self.needs),
                             kinds_without_playbook=sorted(self.unknown_kinds),
                             errors=list(self.errors), errors_omitted=self.omitted)
