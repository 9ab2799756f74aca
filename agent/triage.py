"""Triage: pure rules that run before any graph does.

Given a prediction, the playbook that would answer it, when the entity was last acted
on for the same kind, and whether it falls in the holdout sample, decide: act, drop
(with a reason) or hold. Dropped predictions never start a decision thread, so they cost
no checkpoint. No I/O here; the caller looks up the last action and records the verdict.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from agent.hashing import digest
from agent.models import Prediction, TriageAction, TriageVerdict
from agent.playbooks import Playbook

__all__ = ["in_holdout", "triage"]


def in_holdout(prediction: Prediction, share: float) -> bool:
    """Deterministic sampling: the same prediction always lands on the same side."""
    if share <= 0:
        return False
    bucket = int(digest(["holdout", prediction.kind, prediction.entity_id, prediction.id])[:8], 16)
    return bucket / 0xFFFFFFFF < share


def triage(prediction: Prediction, playbook: Playbook | None, *, last_acted_at: datetime | None,
           now: datetime, holdout_share: float = 0.0) -> TriageVerdict:
    ev = prediction.expected_value

    def verdict(action: TriageAction, reason: str, detail: str) -> TriageVerdict:
        return TriageVerdict(prediction_id=prediction.id, action=action, reason=reason,
                             detail=detail, playbook=playbook.name if playbook else None,
                             expected_value=ev)

    if playbook is None:
        return verdict(TriageAction.DROP, "no_playbook",
                       f"no playbook answers kind {prediction.kind!r} for this entity")
    trigger = playbook.trigger
    if prediction.score < trigger.min_score:
        return verdict(TriageAction.DROP, "below_threshold",
                       f"score {prediction.score:.2f} < {trigger.min_score:.2f}")
    if trigger.min_expected_value > 0:
        if ev is None:
            return verdict(TriageAction.DROP, "low_expected_value",
                           "no value_at_stake, and the playbook needs an expected value of "
                           f"{trigger.min_expected_value:,.0f}")
        if ev < trigger.min_expected_value:
            return verdict(TriageAction.DROP, "low_expected_value",
                           f"expected value {ev:,.0f} < {trigger.min_expected_value:,.0f}")
    if last_acted_at is not None and trigger.cooldown_days > 0:
        until = last_acted_at + timedelta(days=trigger.cooldown_days)
        if prediction.observed_at < until and now < until:
            return verdict(TriageAction.DROP, "cooldown",
                           f"{prediction.entity_id} was acted on for {prediction.kind} at "
                           f"{last_acted_at:%Y-%m-%d %H:%M}Z; cooldown until {until:%Y-%m-%d}")
    if in_holdout(prediction, holdout_share):
        return verdict(TriageAction.HOLD, "holdout",
                       f"sampled into the {holdout_share:.0%} control group; not acted on")
    return verdict(TriageAction.ACT, "act", f"score {prediction.score:.2f}, expected value "
                   + (f"{ev:,.0f}" if ev is not None else "unknown"))
