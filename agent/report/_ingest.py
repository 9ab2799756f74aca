"""Recording outcomes: match each row to the prediction it is about, then save.

Matching, for a row that names ``kind`` + ``entity_id``: among that entity's predictions
of that kind that were acted on (treated: they have a decision) or held out on purpose
(control: triage ``hold``/``holdout``), take the latest one observed no later than the
outcome and no earlier than ``window`` before it (default 90 days). A row that names a
``decision_id`` or ``prediction_id`` is matched to it directly (no window; it must still
not predate the prediction). Rows that match nothing are returned as ``UnmatchedRow``
with the reason, never dropped silently. Saving is idempotent (stable outcome ids).

Entry points: :func:`record_outcomes` (parsed JSON records, e.g. an API body),
:func:`record_parsed` (rows read by ``_rows``),
:func:`import_outcome_file` (CSV/JSONL) and :func:`import_outcome_sql` (a SELECT).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from decisionops.agent.errors import InvalidInputError
from decisionops.agent.models import CLOCK_SKEW, utcnow
from decisionops.agent.report._rows import (
    OutcomeFormat,
    OutcomeRow,
    Parsed,
    UnmatchedRow,
    parse_records,
    read_outcome_file,
    read_outcome_sql,
)
from decisionops.agent.store import Store
from decisionops.agent.store._outcomes import NewOutcome, OutcomeSubject

__all__ = ["DEFAULT_WINDOW", "OutcomeImport", "import_outcome_file", "import_outcome_sql",
           "record_outcomes", "record_parsed"]

DEFAULT_WINDOW = timedelta(days=90)


class OutcomeImport(BaseModel):
    """What an import did: ids recorded, ids already there, rows not recorded."""

    model_config = ConfigDict(frozen=True)

    source: str
    rows_read: int
    recorded: list[str] = Field(default_factory=list)
    treated: int = 0
    """Of ``recorded``: outcomes of decisions."""
    control: int = 0
    """Of ``recorded``: outcomes of held-out (control) predictions."""
    duplicates: list[str] = Field(default_factory=list)
    """Already recorded (same subject and value): nothing changed."""
    unmatched: list[UnmatchedRow] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unmatched


def record_outcomes(store: Store, records: Iterable[Mapping[str, Any]], *, source: str,
                    actor: str, window: timedelta = DEFAULT_WINDOW,
                    now: datetime | None = None) -> OutcomeImport:
    """Match and record already-parsed outcome records (a webhook or API body)."""
    return record_parsed(store, parse_records((None, r) for r in records), source=source, actor=actor,
                   window=window, now=now)


def import_outcome_file(store: Store, path: str | os.PathLike[str], *,
                        format: OutcomeFormat = "auto", actor: str,
                        window: timedelta = DEFAULT_WINDOW, now: datetime | None = None
                        ) -> OutcomeImport:
    """Read a CSV or JSON Lines file of outcomes, match and record them."""
    parsed = read_outcome_file(path, format)
    return record_parsed(store, parsed, source=f"file:{os.path.basename(path)}", actor=actor,
                   window=window, now=now)


def import_outcome_sql(store: Store, url: str, query: str, *, actor: str, source: str = "sql",
                       window: timedelta = DEFAULT_WINDOW, now: datetime | None = None
                       ) -> OutcomeImport:
    """Run a SELECT against another database and record its rows as outcomes."""
    return record_parsed(store, read_outcome_sql(url, query), source=source, actor=actor,
                   window=window, now=now)


def record_parsed(store: Store, parsed: Parsed, *, source: str, actor: str,
                  window: timedelta = DEFAULT_WINDOW, now: datetime | None = None
                  ) -> OutcomeImport:
    """Match and record rows already read (``read_outcome_file``, ``read_outcome_sql``):
    read first, then open the store, so an unreadable input touches nothing."""
    if window <= timedelta(0):
        raise InvalidInputError("must be positive", field="window")
    good, unmatched = parsed
    rows_read = len(good) + len({u.row for u in unmatched})
    now = now or utcnow()
    subjects = store.outcomes.outcome_subjects(
        keys=[(r.kind, r.entity_id) for _, _, r in good
              if r.kind and r.entity_id and not (r.decision_id or r.prediction_id)],
        prediction_ids=[r.prediction_id for _, _, r in good if r.prediction_id],
        decision_ids=[r.decision_id for _, _, r in good if r.decision_id])
    index = _Index(subjects)
    pending: list[NewOutcome] = []
    rows_of: dict[str, tuple[int, int | None]] = {}
    first_of: dict[str, NewOutcome] = {}
    duplicates: list[str] = []
    for number, line, row in good:
        if row.observed_at > now + CLOCK_SKEW:
            unmatched.append(UnmatchedRow(row=number, line=line, field="observed_at",
                                          reason="is in the future",
                                          value=row.observed_at.isoformat()))
            continue
        subject, reason, field = index.match(row, window)
        if subject is None:
            unmatched.append(UnmatchedRow(
                row=number, line=line, field=field, reason=reason,
                problem="not_found" if isinstance(reason, _NotFound) else "invalid"))
            continue
        new = NewOutcome(subject=subject, label=row.label, value_realized=row.value_realized,
                         observed_at=row.observed_at, source=source, note=row.note)
        earlier = first_of.get(new.id)
        if earlier is not None:
            if (earlier.subject.prediction_id, earlier.value_realized) == (
                    subject.prediction_id, new.value_realized):
                duplicates.append(new.id)
            else:
                unmatched.append(UnmatchedRow(
                    row=number, line=line, field="value_realized", problem="conflict",
                    reason=f"the same outcome (row {rows_of[new.id][0]}) has another value"))
            continue
        first_of[new.id] = new
        rows_of[new.id] = (number, line)
        pending.append(new)
    saved = store.outcomes.save_outcomes(pending, actor=actor)
    for oid, message in saved.conflicts.items():
        number, line = rows_of[oid]
        unmatched.append(UnmatchedRow(row=number, line=line, field="value_realized",
                                      reason=message, problem="conflict"))
    for oid, message in saved.contradictions.items():
        number, line = rows_of[oid]
        unmatched.append(UnmatchedRow(row=number, line=line, field="label", reason=message,
                                      problem="conflict"))
    arms = {o.id: o.subject.arm for o in pending}
    return OutcomeImport(
        source=source, rows_read=rows_read,
        recorded=saved.new, treated=sum(1 for i in saved.new if arms[i] == "treated"),
        control=sum(1 for i in saved.new if arms[i] == "control"),
        duplicates=duplicates + saved.duplicates,
        unmatched=sorted(unmatched, key=lambda u: (u.row, u.field or "")))


class _NotFound(str):
    """Why a row was not matched, when it names no decision, prediction or entity known."""


class _Index:
    """The subjects an import needs, by prediction, by decision and by (kind, entity)."""

    def __init__(self, subjects: list[OutcomeSubject]) -> None:
        self.by_prediction = {s.prediction_id: s for s in subjects}
        self.by_decision = {s.decision_id: s for s in subjects if s.decision_id}
        self.by_entity: dict[tuple[str, str], list[OutcomeSubject]] = {}
        for s in subjects:  # oldest first
            self.by_entity.setdefault((s.kind, s.entity_id), []).append(s)

    def match(self, row: OutcomeRow, window: timedelta
              ) -> tuple[OutcomeSubject | None, str, str | None]:
        """(subject, "", None) or (None, reason, field)."""
        if row.decision_id or row.prediction_id:
            return self._direct(row)
        assert row.kind and row.entity_id  # OutcomeRow guarantees a locator
        every = self.by_entity.get((row.kind, row.entity_id), [])
        if not every:
            return None, _NotFound(f"no {row.kind} prediction for entity {row.entity_id}"), \
                "entity_id"
        eligible = [s for s in every if s.arm is not None]
        if not eligible:
            why = sorted({f"{s.triage_action or 'untriaged'}/{s.triage_reason or '-'}"
                          for s in every})
            return None, (f"no {row.kind} prediction for {row.entity_id} was acted on or held "
                          f"out (triage: {', '.join(why)})"), "entity_id"
        before = [s for s in eligible if s.observed_at <= row.observed_at]
        if not before:
            return None, (f"every acted-on or held-out {row.kind} prediction for "
                          f"{row.entity_id} is later than the outcome "
                          f"(first: {eligible[0].observed_at:%Y-%m-%d %H:%M}Z)"), "observed_at"
        latest = before[-1]
        if row.observed_at - latest.observed_at > window:
            days = (row.observed_at - latest.observed_at).days
            return None, (f"the latest acted-on or held-out {row.kind} prediction for "
                          f"{row.entity_id} ({latest.observed_at:%Y-%m-%d}) is {days} days "
                          f"before the outcome; the window is {window.days} days"), "observed_at"
        return latest, "", None

    def _direct(self, row: OutcomeRow) -> tuple[OutcomeSubject | None, str, str | None]:
        if row.decision_id:
            subject, field = self.by_decision.get(row.decision_id), "decision_id"
            if subject is None:
                return None, _NotFound(f"no decision {row.decision_id}"), field
            if row.prediction_id and row.prediction_id != subject.prediction_id:
                return None, (f"decision {row.decision_id} is about prediction "
                              f"{subject.prediction_id}, not {row.prediction_id}"), "prediction_id"
        else:
            assert row.prediction_id
            subject, field = self.by_prediction.get(row.prediction_id), "prediction_id"
            if subject is None:
                return None, _NotFound(f"no prediction {row.prediction_id}"), field
            if subject.arm is None:
                return None, (f"prediction {row.prediction_id} was neither acted on nor held "
                              f"out (triage: {subject.triage_action or 'untriaged'}/"
                              f"{subject.triage_reason or '-'})"), field
        for name in ("kind", "entity_id"):
            given = getattr(row, name)
            if given and given != getattr(subject, name):
                return None, (f"{field} {getattr(row, field)} is about {name} "
                              f"{getattr(subject, name)}, not {given}"), name
        early = subject.predates(row.observed_at)
        if early is not None:
            return None, early, "observed_at"
        return subject, "", None
