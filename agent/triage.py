"""Triage: pure rules that run before any graph does.

Given a prediction, the playbook that would answer it, when the entity was last acted
on for the same kind, and whether it falls in the holdout sample, decide: act, drop
(with a reason), hold, or needs_human. Nothing goes silently away (DESIGN invariant 9):
a score under the threshold, a low expected value or a cooldown is a visible ``drop``;
what the loop cannot plan — a kind no playbook answers, a missing value at stake where
the playbook needs an expected value and the kind has no configured default
(``value_at_stake_defaults``) — is ``needs_human``, a person's to decide
(``agent.triage_queue``). Dropped predictions never start a decision thread, so they
cost no checkpoint. No I/O here; the caller looks up the last action and records the
verdict.

``bulk_drops`` says which of these rules a store can apply to many rows at once in SQL
(a kind no playbook answers: needs_human; a score under the threshold of the one
playbook every prediction of a kind gets: drop): the same verdicts, reached without a
row in Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from decisionops.agent.hashing import digest
from decisionops.agent.models import Prediction, TriageAction, TriageVerdict
from decisionops.agent.playbooks import Playbook, PlaybookBook

__all__ = ["Acted", "BulkDrop", "article", "bulk_drops", "gaps", "in_cooldown", "in_holdout",
           "needs_value_at_stake", "triage"]


@dataclass(frozen=True)
class BulkDrop:
    """Give every untriaged prediction of ``kind`` (with ``below``: whose score is under
    it) this verdict, reason and playbook. The detail is ``detail`` (with ``below``:
    after ``score {score:.2f}``)."""

    kind: str
    reason: str
    playbook: str | None
    detail: str
    below: float | None = None
    action: TriageAction = TriageAction.DROP


def _no_playbook(kind: str) -> str:
    return (f"no playbook answers kind {kind!r} for this entity; a person picks a playbook "
            "or dismisses it")


def _under(min_score: float) -> str:
    return f" < {min_score:.2f}"


def bulk_drops(book: PlaybookBook, kinds: Iterable[str]) -> list[BulkDrop]:
    """The drops of ``triage`` that hold for a whole kind, so SQL can apply them."""
    drops = []
    for kind in kinds:
        first = book.first_for_kind(kind)
        if first is None:
            drops.append(BulkDrop(kind, "no_playbook", None, _no_playbook(kind),
                                  action=TriageAction.NEEDS_HUMAN))
        elif first.match is None:  # every prediction of the kind gets this playbook
            drops.append(BulkDrop(kind, "below_threshold", first.name,
                                  _under(first.trigger.min_score), first.trigger.min_score))
    return drops


def needs_value_at_stake(playbook: Playbook) -> bool:
    """Whether triage can judge a prediction for ``playbook`` only with a value at stake
    (its trigger asks for an expected value)."""
    return playbook.trigger.min_expected_value > 0


def gaps(predictions: Iterable[Prediction], book: PlaybookBook,
         value_defaults: Mapping[str, float] | None = None) -> dict[str, int]:
    """How many ``predictions`` lack what triage needs, before any is triaged:
    ``unknown_kind`` (no playbook answers the kind) and ``no_value_at_stake`` (the kind's
    first playbook needs an expected value and ``value_defaults`` has none for the kind).
    Intake reports these counts; triage sends such rows to a person."""
    value_defaults = value_defaults or {}
    out = {"unknown_kind": 0, "no_value_at_stake": 0}
    firsts: dict[str, Playbook | None] = {}
    for p in predictions:
        if p.kind not in firsts:
            firsts[p.kind] = book.first_for_kind(p.kind)
        playbook = firsts[p.kind]
        if playbook is None:
            out["unknown_kind"] += 1
        elif (p.value_at_stake is None and needs_value_at_stake(playbook)
              and p.kind not in value_defaults):
            out["no_value_at_stake"] += 1
    return out


def in_holdout(prediction: Prediction, share: float) -> bool:
    """Deterministic sampling: the same prediction always lands on the same side."""
    if share <= 0:
        return False
    bucket = int(digest(["holdout", prediction.kind, prediction.entity_id, prediction.id])[:8], 16)
    return bucket / 0xFFFFFFFF < share


class Acted(NamedTuple):
    """The loop's last decisions on an entity for a kind: when it last decided to act
    (``at``; None: it only held out), the newest moment the model observed among the
    predictions it acted on (``observed``) and among those it held out as control
    (``held``)."""

    at: datetime | None
    observed: datetime | None
    held: datetime | None = None


def triage(prediction: Prediction, playbook: Playbook | None, *, last_acted: Acted | None,
           now: datetime, holdout_share: float = 0.0,
           value_default: float | None = None,
           newest_observed_at: datetime | None = None) -> TriageVerdict:
    """The verdict on one prediction. ``last_acted``: the loop's last action on its
    entity for its kind; the cooldown runs from when it decided to act, whenever the model
    scored either prediction (a backfill of old scores must not act on one account once
    per row), and the loop acts once on each reading: a prediction observed no later
    than one it acted on is superseded, whatever the cooldown (two scores of one moment
    are one reading sent twice). ``value_default``: the value at stake configured
    for its kind, used (and named in the detail) when the prediction has none and the
    playbook needs an expected value. ``newest_observed_at``: when the newest stored
    prediction of its kind on its entity was observed; a later one than this
    prediction's supersedes it (predictions can arrive out of order: the newest says
    what the model thinks now)."""
    ev = prediction.expected_value
    defaulted: float | None = None

    def verdict(action: TriageAction, reason: str, detail: str) -> TriageVerdict:
        return TriageVerdict(prediction_id=prediction.id, action=action, reason=reason,
                             detail=detail, playbook=playbook.name if playbook else None,
                             expected_value=ev, value_at_stake=defaulted)

    if playbook is None:
        return verdict(TriageAction.NEEDS_HUMAN, "no_playbook", _no_playbook(prediction.kind))
    trigger = playbook.trigger
    if prediction.score < trigger.min_score:
        return verdict(TriageAction.DROP, "below_threshold",
                       f"score {prediction.score:.2f}" + _under(trigger.min_score))
    # After the rules SQL applies to a whole backlog (``bulk_drops``), so both reach the
    # same verdicts; before anything that would ask a person about an old prediction.
    if newest_observed_at is not None and newest_observed_at > prediction.observed_at:
        return verdict(TriageAction.DROP, "superseded",
                       f"a newer {prediction.kind} prediction on {prediction.entity_id} "
                       f"(observed {newest_observed_at:%Y-%m-%d %H:%M:%S}Z) is stored: the "
                       "newest one decides")
    # What a value could not change first (trial 29: a copy of a decided reading, sent
    # without a value, was asked of a person, whose pick then acted on it twice).
    for seen, what in ((last_acted and last_acted.observed, "acted on"),
                       (last_acted and last_acted.held, "held out as control")):
        if seen is not None and seen >= prediction.observed_at:
            return verdict(TriageAction.DROP, "superseded",
                           f"{article(prediction.kind)} {prediction.kind} prediction on "
                           f"{prediction.entity_id} "
                           f"observed {seen:%Y-%m-%d %H:%M:%S}Z was already {what}: the "
                           "loop decides once on each reading")
    if cooling := in_cooldown(prediction.kind, prediction.entity_id, playbook, last_acted, now):
        return verdict(TriageAction.DROP, "cooldown", cooling)
    if needs_value_at_stake(playbook):
        if ev is None and value_default is not None:
            defaulted = value_default
            ev = round(prediction.score * value_default, 2)
        if ev is None:
            return verdict(TriageAction.NEEDS_HUMAN, "missing_value",
                           f"no value_at_stake, and playbook {playbook.name} needs an expected "
                           f"value of {trigger.min_expected_value:,.0f}; no default is "
                           f"configured for kind {prediction.kind!r} "
                           "(value_at_stake_defaults): a person supplies one or dismisses it")
        if ev < trigger.min_expected_value:
            return verdict(TriageAction.DROP, "low_expected_value",
                           f"expected value {ev:,.0f} < {trigger.min_expected_value:,.0f}"
                           + _defaulted(defaulted))
    if in_holdout(prediction, holdout_share):
        return verdict(TriageAction.HOLD, "holdout",
                       f"sampled into the {holdout_share:.0%} control group; not acted on")
    return verdict(TriageAction.ACT, "act", f"score {prediction.score:.2f}, expected value "
                   + (f"{ev:,.0f}" if ev is not None else "unknown") + _defaulted(defaulted))


def in_cooldown(kind: str, entity_id: str, playbook: Playbook, last_acted: Acted | None,
                now: datetime) -> str:
    """Why acting on a ``kind`` prediction about ``entity_id`` with ``playbook`` now
    would be inside the entity's cooldown (the loop acted on it for the kind less than the
    playbook's ``cooldown_days`` ago), or ""."""
    days = playbook.trigger.cooldown_days
    if last_acted is None or last_acted.at is None or days <= 0:
        return ""
    until = last_acted.at + timedelta(days=days)
    if now >= until:
        return ""
    return (f"{entity_id} was acted on for {kind} at "
            f"{last_acted.at:%Y-%m-%d %H:%M}Z; cooldown until {until:%Y-%m-%d}")


def article(word: str) -> str:
    """``a`` or ``an`` before ``word`` (a kind: "an upsell prediction")."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def _defaulted(value: float | None) -> str:
    return "" if value is None else f" (value_at_stake: the kind's default {value:,.0f})"
