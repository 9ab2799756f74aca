from __future__ import annotations

from datetime import UTC, datetime, timedelta

from decisionops.agent.models import Prediction, TriageAction
from decisionops.agent.playbooks import load_playbooks
from decisionops.agent.triage import Acted, in_holdout, triage

NOW = datetime(2026, 11, 20, tzinfo=UTC)


def _p(score: float = 0.9, value: float | None = 50_000, **over: object) -> Prediction:
    return Prediction.model_validate({
        "id": over.pop("id", "p-1"), "model": "m", "kind": over.pop("kind", "churn"),
        "entity_type": "account", "entity_id": "ACC-1", "score": score,
        "value_at_stake": value, "observed_at": over.pop("observed_at", NOW), **over})


def _verdict(prediction: Prediction, last: datetime | None = None, share: float = 0.0,
             default: float | None = None):
    playbook = load_playbooks().for_prediction(prediction)
    acted = None if last is None else Acted(last, prediction.observed_at - timedelta(days=1))
    return triage(prediction, playbook, last_acted=acted, now=NOW, holdout_share=share,
                  value_default=default)


def test_actionable_prediction_acts_with_expected_value() -> None:
    verdict = _verdict(_p())
    assert verdict.action == TriageAction.ACT
    assert verdict.expected_value == 45_000


def test_drops_carry_reasons() -> None:
    assert _verdict(_p(score=0.2)).reason == "below_threshold"
    assert _verdict(_p(value=100)).reason == "low_expected_value"


def test_a_missing_value_goes_to_a_person_naming_what_is_missing() -> None:
    verdict = _verdict(_p(value=None))
    assert (verdict.action, verdict.reason) == (TriageAction.NEEDS_HUMAN, "missing_value")
    assert "value_at_stake" in verdict.detail and "churn" in verdict.detail
    assert verdict.expected_value is None


def test_a_missing_value_takes_the_kinds_configured_default() -> None:
    verdict = _verdict(_p(score=0.8, value=None), default=20_000)
    assert (verdict.action, verdict.expected_value) == (TriageAction.ACT, 16_000)
    assert verdict.value_at_stake == 20_000
    assert "default" in verdict.detail
    low = _verdict(_p(score=0.8, value=None), default=10)
    assert (low.action, low.reason) == (TriageAction.DROP, "low_expected_value")
    # the prediction's own value wins over the default
    own = _verdict(_p(score=0.8, value=50_000), default=10)
    assert (own.action, own.expected_value, own.value_at_stake) == (TriageAction.ACT, 40_000, None)


def test_an_unknown_kind_goes_to_a_person_naming_the_kind() -> None:
    verdict = _verdict(_p(kind="fraud", score=0.96))
    assert (verdict.action, verdict.reason) == (TriageAction.NEEDS_HUMAN, "no_playbook")
    assert "'fraud'" in verdict.detail


def test_a_low_score_is_dropped_before_a_missing_value_is_asked_for() -> None:
    verdict = _verdict(_p(score=0.1, value=None))
    assert (verdict.action, verdict.reason) == (TriageAction.DROP, "below_threshold")
    assert verdict.detail.startswith("score 0.10")


def test_cooldown_blocks_a_second_action_within_the_window() -> None:
    verdict = _verdict(_p(), last=NOW - timedelta(days=3))
    assert (verdict.action, verdict.reason) == (TriageAction.DROP, "cooldown")
    assert _verdict(_p(), last=NOW - timedelta(days=45)).action == TriageAction.ACT


def test_holdout_is_deterministic_and_near_the_share() -> None:
    predictions = [_p(id=f"p-{i}", entity_id=f"ACC-{i}") for i in range(2000)]
    held = [p for p in predictions if in_holdout(p, 0.1)]
    assert 150 < len(held) < 250
    assert held == [p for p in predictions if in_holdout(p, 0.1)]
    assert _verdict(held[0], share=0.1).action == TriageAction.HOLD


def test_an_older_prediction_arriving_after_a_newer_one_is_superseded(tmp_path) -> None:
    """Predictions can arrive out of order: the newest on an entity says what the model
    thinks now. An older one stored after it does not act on an old, higher score."""
    from decisionops.agent.runtime import Runtime
    from decisionops.agent.settings import Settings

    def churn(pid: str, score: float, day: int) -> Prediction:
        return Prediction(id=pid, model="m", kind="churn", entity_type="account",
                          entity_id="ACC-10150", score=score, value_at_stake=90_000,
                          observed_at=datetime(2026, 11, day, 9, tzinfo=UTC))

    with Runtime(Settings(home=tmp_path / "home", holdout_share=0)) as rt:
        rt.ingest([churn("new", 0.10, 30)], source="t")
        (new,) = rt.triage_pending().verdicts
        rt.ingest([churn("old", 0.97, 1)], source="t")
        (old,) = rt.triage_pending().verdicts
        assert (new.reason, old.action, old.reason) == ("below_threshold", TriageAction.DROP,
                                                        "superseded")
        assert "2026-11-30 09:00:00Z" in old.detail  # to the second (trial 25)
        # in one batch too: the newest decides, the older ones are superseded
        rt.ingest([churn("b-1", 0.95, 2), churn("b-2", 0.96, 3)], source="t")
        verdicts = {v.prediction_id: v.reason for v in rt.triage_pending().verdicts}
        assert verdicts == {"b-1": "superseded", "b-2": "superseded"}
        assert rt.store.decisions.list() == []


def test_the_cooldown_runs_from_when_the_loop_acted_not_from_when_the_model_scored(
        tmp_path) -> None:
    """(trial 20: a file of predictions observed 36 days ago, two on one account, started a
    decision for each, and one observed later that day a third, all open at once: the
    30-day churn cooldown was counted from the acted prediction's observed_at, long
    over.) The loop acted today, so the cooldown runs from today, on ties in one batch
    and on later batches alike; a what-if preview of the acted prediction itself is not
    cooled down by its own action."""
    from decisionops.agent.runtime import Runtime
    from decisionops.agent.scenario import what_if
    from decisionops.agent.settings import Settings

    old = datetime.now(UTC) - timedelta(days=36)

    def churn(pid: str, account: str, hours: int = 0) -> Prediction:
        return Prediction(id=pid, model="m", kind="churn", entity_type="account",
                          entity_id=account, score=0.92, value_at_stake=40_000,
                          observed_at=old + timedelta(hours=hours))

    with Runtime(Settings(home=tmp_path / "home", holdout_share=0)) as rt:
        rt.ingest([churn("c-1", "ACC-10004"), churn("c-2", "ACC-10004"),
                   churn("c-3", "ACC-10006")], source="t")
        first = {v.prediction_id: (v.action, v.reason) for v in rt.triage_pending().verdicts}
        assert first["c-1"] == (TriageAction.ACT, "act")
        # the same reading twice: decided once (superseded comes before the cooldown)
        assert first["c-2"] == (TriageAction.DROP, "superseded")
        assert first["c-3"] == (TriageAction.ACT, "act")
        rt.ingest([churn("c-5", "ACC-10004", hours=2)], source="t")
        (later,) = rt.triage_pending().verdicts
        assert (later.action, later.reason) == (TriageAction.DROP, "cooldown")
        assert f"cooldown until {(datetime.now(UTC) + timedelta(days=30)):%Y-%m-%d}" \
            in later.detail
        assert what_if(rt, "c-3")["triage"]["action"] == "act"  # its own action aside
        assert what_if(rt, "c-5")["triage"]["reason"] == "cooldown"


def test_a_prediction_observed_no_later_than_one_acted_on_does_not_act_again(
        tmp_path) -> None:
    """(trial 21 #6: with ``cooldown_days: 0`` two predictions on one entity observed at
    the same moment both acted — two decisions on one asset from one reading; superseded
    needed a strictly newer one.) The loop acts once per moment the model observed an
    entity: a prediction observed no later than one it already acted on there is
    superseded, in one batch and in a later one, whatever the cooldown; a newer one acts."""
    from decisionops.agent.runtime import Runtime
    from decisionops.agent.settings import Settings

    books = tmp_path / "books"
    books.mkdir()
    (books / "fraud.yaml").write_text(
        "name: fraud-review\nkind: fraud\ntrigger: {min_score: 0.5, cooldown_days: 0}\n"
        "steps:\n  - id: review\n    function: support\n    tool: notify.send\n"
        "    arguments: {channel: slack, to: '#fraud', subject: review, body: 'look'}\n")
    at = datetime(2026, 11, 20, 9, tzinfo=UTC)

    def fraud(pid: str, entity: str, hours: int = 0) -> Prediction:
        return Prediction(id=pid, model="m", kind="fraud", entity_type="account",
                          entity_id=entity, score=0.9, observed_at=at + timedelta(hours=hours))

    with Runtime(Settings(home=tmp_path / "home", holdout_share=0,
                          playbooks_dir=books)) as rt:
        rt.ingest([fraud("f-1", "ACC-10021"), fraud("f-2", "ACC-10021"),
                   fraud("f-3", "ACC-10022")], source="t")
        first = {v.prediction_id: (v.action, v.reason) for v in rt.triage_pending().verdicts}
        assert first == {"f-1": (TriageAction.ACT, "act"),
                         "f-2": (TriageAction.DROP, "superseded"),
                         "f-3": (TriageAction.ACT, "act")}
        rt.ingest([fraud("f-4", "ACC-10022")], source="t")  # the same reading, sent again
        (again,) = rt.triage_pending().verdicts
        assert (again.action, again.reason) == (TriageAction.DROP, "superseded")
        assert "already acted on" in again.detail and "2026-11-20 09:00:00Z" in again.detail
        rt.ingest([fraud("f-5", "ACC-10022", hours=1)], source="t")  # a newer reading acts
        (newer,) = rt.triage_pending().verdicts
        assert (newer.action, newer.reason) == (TriageAction.ACT, "act")


def test_a_reading_held_out_as_control_stays_control_when_sent_again(tmp_path) -> None:
    """(trial 25: a held-out reading sent again under new ids drew again and was treated:
    the control entity's outcome then counted as treated.) A reading the loop held out
    is decided as a reading it acted on: a copy is superseded, saying it was held out."""
    from decisionops.agent.runtime import Runtime
    from decisionops.agent.settings import Settings

    at = datetime(2026, 11, 1, 9, tzinfo=UTC)

    def churn(pid: str, account: str) -> Prediction:
        return Prediction(id=pid, model="m", kind="churn", entity_type="account",
                          entity_id=account, score=0.9, value_at_stake=40_000, observed_at=at)

    accounts = [f"ACC-101{n:02d}" for n in range(20)]
    with Runtime(Settings(home=tmp_path / "home", holdout_share=0.5)) as rt:
        rt.ingest([churn(f"x-{a}", a) for a in accounts], source="t")
        first = {v.prediction_id.removeprefix("x-"): v.action for v in
                 rt.triage_pending().verdicts}
        held = [a for a, action in first.items() if action == TriageAction.HOLD]
        assert held  # half, by the deterministic draw
        rt.ingest([churn(f"y-{a}", a) for a in accounts], source="t")  # sent again
        again = {v.prediction_id.removeprefix("y-"): v for v in rt.triage_pending().verdicts}
        assert all(again[a].action == TriageAction.DROP for a in accounts)
        assert {again[a].reason for a in held} == {"superseded"}
        assert all("held out" in again[a].detail for a in held)


def test_a_reading_decided_or_cooling_down_is_not_asked_of_a_person(tmp_path) -> None:
    """(trial 29: a copy of a reading the loop had acted on, sent without a value, went
    to the queue as missing_value, and a person's pick acted on the reading twice; a
    newer reading inside the cooldown waited there too.) What a value could not change
    is decided first: a copy of a decided reading is superseded, one inside the
    cooldown dropped; only then is a missing value asked for."""
    decided_at = NOW - timedelta(hours=1)
    copy = _p(value=None, observed_at=NOW - timedelta(days=2))
    acted = Acted(decided_at, copy.observed_at)
    playbook = load_playbooks().for_prediction(copy)
    verdict = triage(copy, playbook, last_acted=acted, now=NOW)
    assert (verdict.action, verdict.reason) == (TriageAction.DROP, "superseded"), verdict
    held = triage(copy, playbook, last_acted=Acted(None, None, copy.observed_at), now=NOW)
    assert (held.action, held.reason) == (TriageAction.DROP, "superseded"), held
    newer = _p(value=None, observed_at=NOW)  # a new reading, inside the 30-day cooldown
    cooling = triage(newer, playbook, last_acted=acted, now=NOW)
    assert (cooling.action, cooling.reason) == (TriageAction.DROP, "cooldown"), cooling
    # outside any cooldown a new reading without a value still goes to a person
    later = triage(newer, playbook, last_acted=Acted(NOW - timedelta(days=90),
                                                    copy.observed_at), now=NOW)
    assert (later.action, later.reason) == (TriageAction.NEEDS_HUMAN, "missing_value")
