"""SIMULATED outcomes, for ``decisionops demo`` and tests only: never real data.

Given treated predictions (a decision acted) and control predictions (held out by
triage), draw a plausible outcome for each, deterministically from a seed and the
prediction id: the bad event (churn, failure, stockout) happens with the prediction's
score as probability; a completed decision cuts that probability by
``treatment_effect``, so treated entities are retained / spared the failure more often
than control ones. A success realizes the prediction's value at stake, an event none.

Every outcome is labelled as simulated: its source is ``simulated:seed-<n>`` (the report
counts these and says so in a banner; the export flags them) and its note says so.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from decisionops.agent.hashing import digest
from decisionops.agent.models import DecisionStatus, utcnow
from decisionops.agent.report._ingest import OutcomeImport, record_outcomes
from decisionops.agent.store import Store
from decisionops.agent.store._outcomes import OutcomeSubject

__all__ = ["SIMULATED_NOTE", "simulate_and_record", "simulate_outcomes"]

SIMULATED_NOTE = "simulated by the demo's outcome simulator; not an observed outcome"
_LABELS = {"churn": ("churned", "retained"), "failure": ("failure", "failure_avoided"),
           "stockout": ("stockout", "stockout_avoided")}
"""kind → (label when the predicted event happened, label when it did not)."""


def _uniform(*parts: Any) -> float:
    """A number in [0, 1) fixed by ``parts``."""
    return int(digest(["simulate", *parts])[:13], 16) / 16**13


def simulate_outcomes(subjects: Sequence[OutcomeSubject], *, as_of: datetime, seed: int = 0,
                      treatment_effect: float = 0.5, max_delay_days: int = 14
                      ) -> list[dict[str, Any]]:
    """One simulated outcome record per treated or control subject, observed 1 to
    ``max_delay_days`` days after its prediction but no later than ``as_of`` (subjects
    predicted after ``as_of`` get none). Records name the prediction id, so they can be
    passed to ``agent.report.record_outcomes``."""
    if not 0.0 <= treatment_effect <= 1.0:
        raise ValueError("treatment_effect must be within 0..1")
    following: dict[str, datetime] = {}
    last: dict[tuple[str, str], OutcomeSubject] = {}
    for s in sorted(subjects, key=lambda s: (s.observed_at, s.prediction_id)):
        if s.arm is not None:
            earlier = last.get((s.kind, s.entity_id))
            if earlier is not None:
                following[earlier.prediction_id] = s.observed_at
            last[(s.kind, s.entity_id)] = s
    records = []
    for s in subjects:
        if s.arm is None or s.observed_at > as_of:
            continue
        p_event = s.score
        if s.arm == "treated" and s.decision_status == DecisionStatus.COMPLETED.value:
            p_event *= 1.0 - treatment_effect
        event = _uniform(seed, "event", s.prediction_id) < p_event
        happened, spared = _LABELS.get(s.kind, ("event", "success"))
        delay = timedelta(days=1 + _uniform(seed, "delay", s.prediction_id) * (max_delay_days - 1))
        # An entity's outcome comes before its next prediction, so matching by entity
        # and window would pick this prediction too, and no two outcomes share a time.
        limit = min(as_of, following.get(s.prediction_id, as_of) - timedelta(seconds=1))
        records.append({"prediction_id": s.prediction_id,
                        "label": happened if event else spared,
                        "value_realized": 0.0 if event else float(s.value_at_stake or 0.0),
                        "observed_at": max(min(s.observed_at + delay, limit),
                                           s.observed_at).isoformat(),
                        "note": SIMULATED_NOTE})
    return records


def simulate_and_record(store: Store, *, actor: str, seed: int = 0,
                        as_of: datetime | None = None, treatment_effect: float = 0.5,
                        only: Collection[str] | None = None) -> OutcomeImport:
    """Simulate outcomes for every treated or control prediction that has none yet and
    record them (source ``simulated:seed-<n>``). Repeating it adds nothing new.
    ``only``: the predictions (ids) it may simulate for (the demo's samples: never a
    user's own, whose real outcome a later simulated one would outweigh)."""
    subjects = [s for s in store.outcomes.unrecorded_subjects()
                if only is None or s.prediction_id in only]
    rows = simulate_outcomes(subjects, as_of=as_of or utcnow(), seed=seed,
                             treatment_effect=treatment_effect)
    return record_outcomes(store, rows, source=f"simulated:seed-{seed}", actor=actor,
                           now=as_of)
