"""The needs-a-human queue: a registered person picks a playbook (the loop then starts
the decision as any other), supplies a missing value (triaged again by the same rules)
or dismisses; each a ledger entry under their name; bad answers change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from decisionops.agent.errors import ConflictError, InvalidInputError, PermissionDenied
from decisionops.agent.prediction_queue import QueueUser
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from tests.agent.store.test_prediction_views import predict

OPS = QueueUser("olga@ops", "operator", "test")


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    with Runtime(Settings(home=tmp_path / "home", holdout_share=0.0), actor="w") as runtime:
        runtime.ingest([predict("p-fraud", "fraud", "ACC-10001", 0.96),
                        predict("p-novalue", "churn", "ACC-10002", 0.9, value=None, hours=1),
                        predict("p-act", "churn", "ACC-10003", 0.9, hours=2)], source="test")
        runtime.triage_pending()
        yield runtime


def _state(rt: Runtime) -> tuple:
    views = rt.store.prediction_views.list(limit=100)
    return (len(rt.store.ledger.entries()),
            sorted((v.id, v.outcome, v.reason, v.detail, v.value_at_stake) for v in views))


def test_the_queue_lists_what_needs_a_person(rt: Runtime) -> None:
    assert [v.id for v in rt.queue.list()] == ["p-fraud", "p-novalue"]
    assert rt.queue.size() == 2


def test_picking_a_playbook_starts_its_decision_through_the_loop(rt: Runtime) -> None:
    view = rt.queue.pick("p-fraud", "churn-retention", by=OPS, note="looks like churn")
    assert (view.outcome, view.reason, view.playbook) == ("act", "picked", "churn-retention")
    assert view.detail == "playbook churn-retention picked by olga@ops: looks like churn"
    entry = rt.store.ledger.entries()[-1]
    assert (entry.actor, entry.event, entry.body["playbook"]) == (
        "olga@ops", "prediction.picked", "churn-retention")
    rt.run_once()
    view = rt.store.prediction_views.get("p-fraud")
    assert view.decision_id is not None
    assert rt.store.decisions.get(view.decision_id).playbook == "churn-retention"
    assert [v.id for v in rt.queue.list()] == ["p-novalue"]


def test_a_pick_inside_the_entity_s_cooldown_says_so(rt: Runtime) -> None:
    """(trial 21 #7: a person's pick acted inside the cooldown on its entity without a
    word.) A person decides, so the pick stands; what it overrides is said in its detail
    (and so wherever the prediction is shown), naming when the loop acted and until when.
    A reading of the playbook's own kind inside its cooldown never waits for a person:
    triage drops it, value or not (trial 29: it waited as missing_value, and was picked)."""
    rt.ingest([predict("p-later", "churn", "ACC-10003", 0.9, value=None, hours=3)],
              source="test")  # p-act acted on ACC-10003; this one has no value
    rt.triage_pending()
    later = rt.store.prediction_views.get("p-later")
    assert (later.outcome, later.reason) == ("drop", "cooldown"), later
    # nothing to say where no cooldown runs (nothing acted on ACC-10001 yet)
    assert "cooldown" not in rt.queue.pick("p-fraud", "churn-retention", by=OPS).detail
    # another kind's prediction picked with this playbook: this playbook's cooldown on
    # the entity (trial 25: said nothing, a second retention offer went out)
    rt.ingest([predict("p-fraud-3", "fraud", "ACC-10003", 0.96, hours=5)], source="test")
    rt.triage_pending()
    other = rt.queue.pick("p-fraud-3", "churn-retention", by=OPS)
    assert (other.outcome, other.reason) == ("act", "picked")
    assert "inside the cooldown: ACC-10003 was acted on for churn" in other.detail
    assert "cooldown until" in other.detail
    assert rt.store.ledger.entries()[-1].event == "prediction.picked"


def test_a_queued_copy_of_a_reading_the_loop_acts_on_leaves_the_queue(rt: Runtime) -> None:
    """(trial 25: a copy of a reading acted on stayed in the queue, for a person to pick
    and act on twice.) The loop decides once on each reading: when it acts on one (or
    holds it out), queued predictions of its kind and entity observed no later leave the
    queue as superseded, naming it; one ledger entry each. Other entities stay (and
    newer readings of the entity: inside the cooldown, triage drops them)."""
    rt.ingest([predict("p-older", "churn", "ACC-10005", 0.9, value=None, hours=5)],
              source="test")
    rt.triage_pending()  # queued before a newer reading came
    rt.ingest([predict(pid, "churn", "ACC-10005", 0.9, value=None, hours=6)
               for pid in ("p-one", "p-copy")]  # one reading, sent twice
              + [predict("p-other", "churn", "ACC-10006", 0.9, value=None, hours=6)],
              source="test")
    rt.triage_pending()
    assert {"p-one", "p-copy", "p-older"} <= {v.id for v in rt.queue.list()}
    assert rt.queue.supply_value("p-one", 30_000, by=OPS).outcome == "act"
    rt.ingest([predict("p-newer", "churn", "ACC-10005", 0.9, value=None, hours=7)],
              source="test")
    rt.triage_pending()
    queued = [v.id for v in rt.queue.list()]
    assert "p-copy" not in queued and "p-older" not in queued
    assert {"p-other", "p-novalue"} <= set(queued)
    assert rt.store.prediction_views.get("p-newer").reason == "cooldown"
    for pid in ("p-copy", "p-older"):
        view = rt.store.prediction_views.get(pid)
        assert (view.outcome, view.reason) == ("drop", "superseded"), view
        assert "p-one" in view.detail and "acted on" in view.detail, view.detail
    events = [e for e in rt.store.ledger.entries() if e.event == "prediction.triaged"
              and e.body["reason"] == "superseded"]
    assert sorted(e.body["prediction_id"] for e in events) == ["p-copy", "p-older"]
    assert {e.actor for e in events} == {OPS.name}  # whose answer decided the reading
    with pytest.raises(ConflictError):  # gone from the queue: nothing to pick
        rt.queue.pick("p-copy", "churn-retention", by=OPS)
    # the loop's own verdicts do the same (a re-sent reading that now carries its value)
    rt.ingest([predict("p-resent", "churn", "ACC-10006", 0.9, hours=6)], source="test")
    rt.triage_pending()
    assert rt.store.prediction_views.get("p-other").reason == "superseded"


def test_a_supplied_value_is_triaged_again_and_planned_with(rt: Runtime) -> None:
    view = rt.queue.supply_value("p-novalue", 30_000, by=OPS)
    assert (view.outcome, view.reason, view.expected_value) == ("act", "act", 27_000)
    assert (view.value_at_stake, view.value_at_stake_source) == (30_000, "supplied")
    assert "supplied by olga@ops" in (view.detail or "")
    assert rt.store.ledger.entries()[-1].event == "prediction.value_supplied"
    claims = {c.prediction_id: c for c in
              rt.store.decisions.claim_new(owner="w", lease_seconds=60)}
    assert claims["p-novalue"].prediction["value_at_stake"] == 30_000
    low = rt.queue  # a value too small to act on is a visible drop, not a silent one
    rt.ingest([predict("p-small", "churn", "ACC-10004", 0.9, value=None)], source="test")
    rt.triage_pending()
    small = low.supply_value("p-small", 10, by=OPS)
    assert (small.outcome, small.reason) == ("drop", "low_expected_value")


def test_dismissing_records_who_and_why(rt: Runtime) -> None:
    view = rt.queue.dismiss("p-fraud", "not our model", by=OPS)
    assert (view.outcome, view.reason, view.detail) == (
        "drop", "dismissed", "dismissed by olga@ops: not our model")
    assert rt.store.ledger.entries()[-1].body["why"] == "not our model"


@pytest.mark.parametrize(("call", "error", "field"), [
    (lambda q: q.pick("p-fraud", "no-such-playbook", by=OPS), InvalidInputError, "playbook"),
    (lambda q: q.pick("p-act", "churn-retention", by=OPS), ConflictError, "prediction_id"),
    (lambda q: q.pick("nope", "churn-retention", by=OPS), Exception, "prediction_id"),
    (lambda q: q.supply_value("p-fraud", 100, by=OPS), InvalidInputError, "value_at_stake"),
    (lambda q: q.supply_value("p-novalue", -1, by=OPS), InvalidInputError, "value_at_stake"),
    (lambda q: q.supply_value("p-novalue", float("nan"), by=OPS), InvalidInputError,
     "value_at_stake"),
    (lambda q: q.supply_value("p-novalue", 1e300, by=OPS), InvalidInputError,
     "value_at_stake"),
    (lambda q: q.dismiss("p-fraud", "  ", by=OPS), InvalidInputError, "reason"),
    (lambda q: q.dismiss("p-fraud", "x" * 501, by=OPS), InvalidInputError, "reason"),
    (lambda q: q.dismiss("p-fraud", "why", by=QueueUser("feed", "ingest", "test")),
     PermissionDenied, None),
])
def test_a_bad_answer_names_its_field_and_changes_nothing(rt: Runtime, call, error,
                                                          field) -> None:
    before = _state(rt)
    with pytest.raises(error) as caught:
        call(rt.queue)
    exc = caught.value
    assert (getattr(exc, "field", None) or exc.details.get("field")) == field
    assert _state(rt) == before


@pytest.mark.parametrize("answer", ["pick", "dismiss"])
def test_a_decision_that_needs_a_human_is_planned_again_as_a_follow_up_or_dismissed(
        rt: Runtime, answer: str) -> None:
    from sqlalchemy import update

    from decisionops.agent.store import _tables as t

    rt.run_once()
    with rt.store.transaction() as conn:
        conn.execute(update(t.decisions).where(t.decisions.c.prediction_id == "p-act")
                     .values(status="needs_human", error="entity ACC-10003 is unknown"))
    decision = rt.store.prediction_views.get("p-act").decision_id
    if answer == "dismiss":
        view = rt.queue.dismiss("p-act", "closed account", by=OPS)
        assert (view.outcome, view.reason, view.decision_status) == ("drop", "dismissed",
                                                                    "needs_human")
        return
    # A decision is never started twice: the answer plans a follow-up of the prediction.
    view = rt.queue.pick("p-act", "churn-retention", by=OPS)
    assert (view.id, view.outcome, view.reason, view.decision_id) == (
        "p-act+r2", "act", "picked", None)
    assert f"p-act's decision {decision} needed a person" in view.detail
    first = rt.store.prediction_views.get("p-act")
    assert (first.outcome, first.reason, first.decision_id) == ("drop", "replanned", decision)
    rt.run_once()
    assert rt.store.prediction_views.get("p-act+r2").decision_id not in (None, decision)


def test_only_registered_users_answer(rt: Runtime) -> None:
    with pytest.raises(InvalidInputError) as caught:
        rt.queue.registered("ghost", channel="cli")
    assert caught.value.field == "as"
    rt.store.users.create("olga@ops", role="operator", functions=[], actor="admin")
    assert rt.queue.registered("olga@ops", channel="cli") == QueueUser("olga@ops", "operator",
                                                                       "cli")
    # As --as reads a name on every command (found in a trial: `predictions plan --as
    # dana` was refused where `approvals approve --as dana` named dana@finance).
    assert rt.queue.registered("olga", channel="cli").name == "olga@ops"


def test_queue_answers_and_follow_ups_leave_rows_that_agree_with_the_ledger(
        rt: Runtime) -> None:
    """``ledger verify`` checks each prediction's verdict against its entries: the
    verdicts a person gives from the queue, and a prediction planned again (it leaves
    the queue as drop/replanned, recorded by its follow-up's entry), raise no alarm."""
    from decisionops.agent.store.ledger import verify

    rt.queue.pick("p-fraud", "churn-retention", by=OPS)
    rt.queue.supply_value("p-novalue", 30_000, by=OPS)
    rt.ingest([predict("p-ghost", "churn", "ACC-99999", 0.9, hours=3),
               predict("p-spam", "fraud", "ACC-10005", 0.9, hours=4)], source="test")
    rt.run_once()
    ghost = rt.store.prediction_views.get("p-ghost")
    assert ghost.decision_status == "needs_human"  # no such account
    follow_up = rt.queue.pick("p-ghost", "churn-retention", by=OPS)
    rt.queue.dismiss("p-spam", "not our model", by=OPS)
    rt.run_once()
    assert rt.store.prediction_views.get("p-ghost").reason == "replanned"
    assert rt.store.prediction_views.get(follow_up.id).decision_id is not None
    report = verify(rt.store.engine)
    assert report.ok, report.problem


def test_a_queued_copy_of_a_reading_a_person_s_answer_holds_out_leaves_the_queue(
        tmp_path: Path) -> None:
    """(trial 29: a value supplied for one copy held the reading out as control; the
    other copy stayed queued, and a pick of it treated the control entity.)"""
    with Runtime(Settings(home=tmp_path / "home", holdout_share=0.999), actor="w") as rt:
        rt.ingest([predict(pid, "churn", "ACC-10022", 0.9, value=None, hours=1)
                   for pid in ("v-4", "v-4b")], source="test")  # one reading, twice
        rt.triage_pending()
        assert {"v-4", "v-4b"} <= {v.id for v in rt.queue.list()}
        held = rt.queue.supply_value("v-4", 5_000, by=OPS)
        assert (held.outcome, held.reason) == ("hold", "holdout"), held
        copy = rt.store.prediction_views.get("v-4b")
        assert (copy.outcome, copy.reason) == ("drop", "superseded"), copy
        assert "v-4" in copy.detail and "held out as control" in copy.detail
