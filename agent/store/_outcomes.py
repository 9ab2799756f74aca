"""Outcomes and the reads behind the value report: the part of ``Store`` that records
what later happened to an entity and answers the report's and the export's queries.
``Store.outcomes``.

An outcome is recorded against a *subject*: a prediction that was either acted on
(it has a decision: the *treated* arm) or held out of action on purpose by triage
(``hold``/``holdout``: the *control* arm). Matching a foreign outcome row to its subject
(entity and window) lives in ``agent.report``; this module only persists and reads.
Outcome ids are stable (:func:`outcome_id`), so saving the same outcome twice is a no-op
and saving it again with another value is a conflict, never an overwrite.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Select, and_, case, func, insert, or_, select

from decisionops.agent.errors import ConflictError, NotFoundError
from decisionops.agent.hashing import short_id
from decisionops.agent.models import (
    DEFAULT_CURRENCY,
    REPLANNED,
    ApprovalStatus,
    TriageAction,
    utcnow,
)
from decisionops.agent.store import _tables as t
from decisionops.agent.store._db import Repo
from decisionops.agent.store._llm import REPLAYED
from decisionops.agent.store._outcome_tables import outcome_records
from decisionops.agent.store.ledger import Event

__all__ = ["Arm", "NewOutcome", "OutcomeRepo", "OutcomeSubject", "SavedOutcomes",
           "normalize_label", "outcome_id"]

Arm = Literal["treated", "control"]
_CHUNK = 500
_HOLDOUT = "holdout"
_HUMAN_ANSWERS = (ApprovalStatus.APPROVED.value, ApprovalStatus.EDITED.value,
                  ApprovalStatus.REJECTED.value, ApprovalStatus.REVISE.value)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def normalize_label(label: str) -> str:
    """``Retained`` → ``retained``, ``failure avoided`` → ``failure_avoided``: one spelling
    per label, so success labels and stable ids do not depend on how a source wrote it."""
    return re.sub(r"[\s-]+", "_", label.strip().lower())


def outcome_id(kind: str, entity_id: str, label: str, observed_at: datetime) -> str:
    """The stable id of an outcome: the same fact (kind, entity, label, time) always gets
    the same id, however it arrives (file, API, SQL, by decision or by entity).
    Migration 0003 keeps a frozen copy of this formula."""
    return short_id("out", kind, entity_id, label, _utc(observed_at).isoformat())


@dataclass(frozen=True)
class OutcomeSubject:
    """A prediction as outcome matching sees it."""

    prediction_id: str
    kind: str
    entity_id: str
    observed_at: datetime
    score: float
    value_at_stake: float | None
    triage_action: str | None
    triage_reason: str | None
    decision_id: str | None
    decision_status: str | None
    expected_value: float | None

    def predates(self, observed_at: datetime) -> str | None:
        """Why an outcome observed at ``observed_at`` cannot be this prediction's: it
        happened before the prediction was made. None when it can."""
        if _utc(observed_at) < _utc(self.observed_at):
            return (f"the outcome ({_utc(observed_at):%Y-%m-%d %H:%M}Z) predates its "
                    f"prediction ({_utc(self.observed_at):%Y-%m-%d %H:%M}Z)")
        return None

    @property
    def arm(self) -> Arm | None:
        """``treated`` when a decision acted on it, ``control`` when triage held it out
        for the holdout sample, else ``None`` (dropped or untriaged: no outcome applies)."""
        if self.decision_id is not None:
            return "treated"
        if self.triage_action == TriageAction.HOLD.value and self.triage_reason == _HOLDOUT:
            return "control"
        return None


@dataclass(frozen=True)
class NewOutcome:
    """An outcome matched to its subject, ready to save."""

    subject: OutcomeSubject
    label: str
    value_realized: float
    observed_at: datetime
    source: str
    note: str = ""

    @property
    def id(self) -> str:
        return outcome_id(self.subject.kind, self.subject.entity_id, self.label, self.observed_at)


@dataclass
class SavedOutcomes:
    new: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    """Already recorded with the same subject and value: nothing changed."""
    conflicts: dict[str, str] = field(default_factory=dict)
    """Outcome id → why it was not saved (recorded before with another value or subject)."""
    contradictions: dict[str, str] = field(default_factory=dict)
    """Outcome id → why it was not saved: its prediction has another outcome (another
    label) observed at the same time, recorded before or earlier in the same batch."""


_SUBJECT_COLUMNS = (t.predictions.c.id, t.predictions.c.kind, t.predictions.c.entity_id,
                    t.predictions.c.observed_at, t.predictions.c.score,
                    t.predictions.c.value_at_stake, t.predictions.c.triage_action,
                    t.predictions.c.triage_reason, t.decisions.c.id.label("decision_id"),
                    t.decisions.c.status.label("decision_status"),
                    func.coalesce(t.decisions.c.expected_value,
                                  t.predictions.c.expected_value).label("expected_value"))


def _subject(row: Any) -> OutcomeSubject:
    return OutcomeSubject(prediction_id=row.id, kind=row.kind, entity_id=row.entity_id,
                          observed_at=_utc(row.observed_at), score=row.score,
                          value_at_stake=row.value_at_stake, triage_action=row.triage_action,
                          triage_reason=row.triage_reason, decision_id=row.decision_id,
                          decision_status=row.decision_status, expected_value=row.expected_value)


def _subjects_query() -> Select[Any]:
    return (select(*_SUBJECT_COLUMNS).select_from(t.predictions)
            .outerjoin(t.decisions, t.decisions.c.prediction_id == t.predictions.c.id))


def _eligible() -> Any:
    return or_(t.decisions.c.id.is_not(None),
               and_(t.predictions.c.triage_action == TriageAction.HOLD.value,
                    t.predictions.c.triage_reason == _HOLDOUT))


def _since(query: Select[Any], column: Any, since: datetime | None,
           until: datetime | None = None) -> Select[Any]:
    if since is not None:
        query = query.where(column >= _utc(since))
    if until is not None:
        query = query.where(column < _utc(until))
    return query


class OutcomeRepo(Repo):
    # ------------------------------------------------------------------ subjects

    @staticmethod
    def _same_time(conn: Any, outcomes: Sequence[NewOutcome]
                   ) -> dict[tuple[str, datetime], tuple[str, str]]:
        """(prediction, time observed) → (id, label) of the outcomes recorded for the
        predictions of ``outcomes``."""
        pids = sorted({o.subject.prediction_id for o in outcomes})
        out: dict[tuple[str, datetime], tuple[str, str]] = {}
        for i in range(0, len(pids), _CHUNK):
            for row in conn.execute(select(outcome_records.c.id, outcome_records.c.prediction_id,
                                           outcome_records.c.label,
                                           outcome_records.c.observed_at)
                                    .where(outcome_records.c.prediction_id.in_(
                                        pids[i:i + _CHUNK]))):
                out[(row.prediction_id, _utc(row.observed_at))] = (row.id, row.label)
        return out

    def outcome_subjects(self, *, keys: Iterable[tuple[str, str]] = (),
                         prediction_ids: Iterable[str] = (), decision_ids: Iterable[str] = ()
                         ) -> list[OutcomeSubject]:
        """Every prediction of the given (kind, entity_id) ``keys``, ``prediction_ids`` and
        ``decision_ids``, eligible for an outcome or not (matching explains why one is
        not), oldest first. Nothing named, nothing returned."""
        out: dict[str, OutcomeSubject] = {}
        keys, pids, dids = list(set(keys)), list(set(prediction_ids)), list(set(decision_ids))
        with self.reading() as conn:
            by_kind: dict[str, list[str]] = {}
            for kind, entity_id in keys:
                by_kind.setdefault(kind, []).append(entity_id)
            base = _subjects_query()
            queries = [base.where(t.predictions.c.kind == kind,
                                  t.predictions.c.entity_id.in_(ids[i:i + _CHUNK]))
                       for kind, ids in by_kind.items() for i in range(0, len(ids), _CHUNK)]
            queries += [base.where(t.predictions.c.id.in_(pids[i:i + _CHUNK]))
                        for i in range(0, len(pids), _CHUNK)]
            queries += [base.where(t.decisions.c.id.in_(dids[i:i + _CHUNK]))
                        for i in range(0, len(dids), _CHUNK)]
            for query in queries:
                for row in conn.execute(query):
                    out[row.id] = _subject(row)
        return sorted(out.values(), key=lambda s: (s.observed_at, s.prediction_id))

    def unrecorded_subjects(self) -> list[OutcomeSubject]:
        """Every treated or control prediction that has no outcome yet, oldest first."""
        query = (_subjects_query().where(_eligible())
                 .where(~select(outcome_records.c.id).where(
                     outcome_records.c.prediction_id == t.predictions.c.id).exists())
                 .order_by(t.predictions.c.observed_at, t.predictions.c.id))
        with self.reading() as conn:
            return [_subject(r) for r in conn.execute(query)]

    # ------------------------------------------------------------------ writes

    def save_outcomes(self, outcomes: Sequence[NewOutcome], *, actor: str) -> SavedOutcomes:
        """Insert outcomes whose ids are new, with one ledger entry each; one durable
        transaction, all or nothing. Known ids are duplicates (same subject and value)
        or conflicts (anything else); neither changes what is recorded."""
        result = SavedOutcomes()
        if not outcomes:
            return result
        now = utcnow()
        with self.transaction(durable=True) as conn:
            ids = list({o.id for o in outcomes})
            known: dict[str, Any] = {}
            for i in range(0, len(ids), _CHUNK):
                for row in conn.execute(select(outcome_records.c.id,
                                               outcome_records.c.prediction_id,
                                               outcome_records.c.value_realized)
                                        .where(outcome_records.c.id.in_(ids[i:i + _CHUNK]))):
                    known[row.id] = row
            same_time = self._same_time(conn, outcomes)
            rows, events = [], []
            for o in outcomes:
                arm = o.subject.arm
                if arm is None:
                    raise ConflictError(f"prediction {o.subject.prediction_id} was neither acted "
                                        "on nor held out; no outcome applies",
                                        field="prediction_id")
                before = known.get(o.id)
                if before is not None:
                    if (before.prediction_id == o.subject.prediction_id
                            and before.value_realized == o.value_realized):
                        result.duplicates.append(o.id)
                    else:
                        result.conflicts[o.id] = (
                            f"outcome {o.id} ({o.label} at {o.observed_at:%Y-%m-%d %H:%M}Z) is "
                            f"already recorded with value {before.value_realized:g} for "
                            f"prediction {before.prediction_id}; outcomes are not overwritten")
                    continue
                moment = (o.subject.prediction_id, _utc(o.observed_at))
                other = same_time.get(moment)
                if other is not None and other[0] != o.id:
                    result.contradictions[o.id] = (
                        f"prediction {o.subject.prediction_id} has outcome {other[1]!r} "
                        f"observed at the same time ({_utc(o.observed_at):%Y-%m-%d %H:%M:%S}Z)"
                        f"; {o.label!r} then contradicts it. A later observation is a new "
                        "outcome (the report counts a prediction's latest)")
                    continue
                same_time[moment] = (o.id, o.label)
                known[o.id] = _Known(o.subject.prediction_id, o.value_realized)
                result.new.append(o.id)
                rows.append({"id": o.id, "prediction_id": o.subject.prediction_id,
                             "decision_id": o.subject.decision_id, "arm": arm,
                             "kind": o.subject.kind, "entity_id": o.subject.entity_id,
                             "label": o.label, "value_realized": o.value_realized,
                             "expected_value": o.subject.expected_value,
                             "observed_at": _utc(o.observed_at), "note": o.note or None,
                             "source": o.source, "recorded_by": actor, "recorded_at": now})
                events.append(Event(actor=actor, event="outcome.recorded",
                                    decision_id=o.subject.decision_id,
                                    body={"outcome_id": o.id, "arm": arm,
                                          "prediction_id": o.subject.prediction_id,
                                          "kind": o.subject.kind,
                                          "entity_id": o.subject.entity_id, "label": o.label,
                                          "value_realized": o.value_realized,
                                          "observed_at": _utc(o.observed_at).isoformat(),
                                          "source": o.source,
                                          "expected_value": o.subject.expected_value}))
            for i in range(0, len(rows), _CHUNK):
                conn.execute(insert(outcome_records), rows[i:i + _CHUNK])
            self.record(conn, events, now)
        return result

    # ------------------------------------------------------------------ reads

    def outcome(self, outcome_id: str) -> dict[str, Any]:
        """One outcome record."""
        with self.reading() as conn:
            row = conn.execute(select(outcome_records)
                               .where(outcome_records.c.id == outcome_id)).first()
        if row is None:
            raise NotFoundError(f"no outcome {outcome_id!r}", field="outcome_id")
        return _aware_row(row)

    def outcome_list(self, *, since: datetime | None = None, until: datetime | None = None,
                     kind: str | None = None, arm: Arm | None = None,
                     limit: int | None = None) -> list[dict[str, Any]]:
        """Outcome records observed in [since, until), newest first, with the prediction's
        score and value at stake."""
        query = (select(outcome_records, t.predictions.c.score, t.predictions.c.value_at_stake,
                        t.predictions.c.observed_at.label("predicted_at"),
                        currency().label("currency"))
                 .join(t.predictions, t.predictions.c.id == outcome_records.c.prediction_id)
                 .order_by(outcome_records.c.observed_at.desc(), outcome_records.c.id))
        query = _since(query, outcome_records.c.observed_at, since, until)
        if kind:
            query = query.where(outcome_records.c.kind == kind)
        if arm:
            query = query.where(outcome_records.c.arm == arm)
        if limit:
            query = query.limit(limit)
        with self.reading() as conn:
            return [_aware_row(r) for r in conn.execute(query)]

    def decision_totals(self, *, since: datetime | None = None, until: datetime | None = None
                        ) -> list[dict[str, Any]]:
        """Per kind and currency (the prediction's): decisions created in [since, until),
        their expected value, and how many completed. A decision whose prediction a
        person planned again is left out: its follow-up's decision is that prediction's
        (one prediction, one decision counted, however often it was planned)."""
        completed = func.coalesce(func.sum(case((t.decisions.c.status == "completed", 1),
                                                 else_=0)), 0)
        money = currency().label("currency")
        query = (select(t.decisions.c.kind, money, func.count().label("decisions"),
                        func.coalesce(func.sum(t.decisions.c.expected_value), 0.0)
                        .label("expected_value"), completed.label("completed"))
                 .join(t.predictions, t.predictions.c.id == t.decisions.c.prediction_id)
                 .where(func.coalesce(t.predictions.c.triage_reason, "") != REPLANNED)
                 .group_by(t.decisions.c.kind, money).order_by(t.decisions.c.kind, money))
        query = _since(query, t.decisions.c.created_at, since, until)
        with self.reading() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def approval_times(self, *, since: datetime | None = None, until: datetime | None = None
                       ) -> list[dict[str, Any]]:
        """Approvals requested in [since, until): function, status, requested and answered
        times; ``human`` says a person (not the policy) answered."""
        query = select(t.approvals.c.function, t.approvals.c.status, t.approvals.c.requested_at,
                       t.approvals.c.answered_at).order_by(t.approvals.c.requested_at)
        query = _since(query, t.approvals.c.requested_at, since, until)
        with self.reading() as conn:
            return [{**_aware_row(r), "human": r.status in _HUMAN_ANSWERS}
                    for r in conn.execute(query)]

    def execution_totals(self, *, since: datetime | None = None, until: datetime | None = None
                         ) -> list[dict[str, Any]]:
        """Per tool and status: tool calls (not compensations) started in [since, until)."""
        query = (select(t.executions.c.tool, t.executions.c.status, func.count().label("n"),
                        func.coalesce(func.sum(t.executions.c.attempts), 0).label("attempts"))
                 .where(t.executions.c.purpose == "execution")
                 .group_by(t.executions.c.tool, t.executions.c.status)
                 .order_by(t.executions.c.tool, t.executions.c.status))
        query = _since(query, t.executions.c.started_at, since, until)
        with self.reading() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def llm_call_rows(self, *, since: datetime | None = None, until: datetime | None = None
                      ) -> list[dict[str, Any]]:
        """LLM calls made in [since, until), oldest first (not the replies a draft run
        again replayed: no request was sent)."""
        query = select(t.llm_calls.c.at, t.llm_calls.c.model, t.llm_calls.c.purpose,
                       t.llm_calls.c.tokens_in, t.llm_calls.c.tokens_out, t.llm_calls.c.cost,
                       t.llm_calls.c.outcome).where(t.llm_calls.c.outcome != REPLAYED
                                                    ).order_by(t.llm_calls.c.at)
        query = _since(query, t.llm_calls.c.at, since, until)
        with self.reading() as conn:
            return [_aware_row(r) for r in conn.execute(query)]

    def training_rows(self, *, since: datetime | None = None) -> list[dict[str, Any]]:
        """For retraining: every treated or control prediction observed since ``since``
        (with its payload, so its features), joined with each of its outcomes; one row
        per outcome, or one row with empty outcome fields when none is recorded yet."""
        query = (select(t.predictions.c.id.label("prediction_id"), t.predictions.c.payload,
                        t.predictions.c.triage_action, t.predictions.c.triage_reason,
                        t.predictions.c.expected_value.label("prediction_expected_value"),
                        t.decisions.c.id.label("decision_id"),
                        t.decisions.c.status.label("decision_status"),
                        t.decisions.c.playbook, t.decisions.c.expected_value,
                        outcome_records.c.id.label("outcome_id"), outcome_records.c.arm,
                        outcome_records.c.label, outcome_records.c.value_realized,
                        outcome_records.c.observed_at.label("outcome_observed_at"),
                        outcome_records.c.source.label("outcome_source"))
                 .select_from(t.predictions)
                 .outerjoin(t.decisions, t.decisions.c.prediction_id == t.predictions.c.id)
                 .outerjoin(outcome_records,
                            outcome_records.c.prediction_id == t.predictions.c.id)
                 .where(_eligible())
                 .order_by(t.predictions.c.observed_at, t.predictions.c.id,
                           outcome_records.c.observed_at))
        query = _since(query, t.predictions.c.observed_at, since)
        with self.reading() as conn:
            return [_aware_row(r) for r in conn.execute(query)]


@dataclass(frozen=True)
class _Known:
    prediction_id: str
    value_realized: float


def _aware_row(row: Any) -> dict[str, Any]:
    """A result row as a dict, with SQLite's naive datetimes made UTC-aware."""
    return {k: (_utc(v) if isinstance(v, datetime) else v) for k, v in row._mapping.items()}


def currency() -> Any:
    """The currency of a prediction's money (its value at stake, and so its decision's
    expected value and its outcomes' realized value), as a column: the payload's, EUR
    when it names none (``Prediction.currency``'s default)."""
    return func.coalesce(t.predictions.c.payload["currency"].as_string(), DEFAULT_CURRENCY)
