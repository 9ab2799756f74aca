"""Triage of a backlog: whole-kind drops in SQL, the rest row by row, and the same
verdicts (reasons, details, cooldown, holdout) as the pure rules reach one row at a time."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, select, update

from decisionops.agent.models import Prediction, TriageAction
from decisionops.agent.playbooks import PlaybookBook, load_playbooks
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from decisionops.agent.store import _tables as t
from decisionops.agent.triage import Acted, bulk_drops, triage

T0 = datetime(2026, 11, 1, tzinfo=UTC)
TIES = [0.125, 0.375, 0.005, 0.645, 0.655, 0.675, 0.6449999999999999, 0.6450000000000001]


@pytest.fixture(params=["sqlite", "postgres"])
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    settings = Settings(home=tmp_path / "home", database_url=url, holdout_share=0.2)
    with Runtime(settings, actor="triager") as runtime:
        yield runtime


def _backlog(n: int = 600) -> list[Prediction]:
    rng = random.Random(12)
    out = []
    for i in range(n):
        kind = rng.choice(["churn", "churn", "failure", "weather"])
        score = rng.choice(TIES) if i % 7 == 0 else round(rng.random(), rng.choice([2, 3, 6]))
        value = None if i % 11 == 0 else rng.choice([100.0, 2_500.0, 40_000.0, 3_333.33])
        out.append(Prediction(
            id=f"p-{i:04d}", model="m", kind=kind, entity_type="account",
            entity_id=f"E-{rng.randrange(40)}", score=score, value_at_stake=value,
            observed_at=T0 + timedelta(hours=rng.randrange(24 * 40))))
    return out


def _reference(predictions: list[Prediction], book: PlaybookBook, share: float,
               now: datetime) -> dict[str, tuple]:
    """One row at a time, oldest observed first: what triage has always done."""
    last: dict[tuple[str, str], Acted] = {}
    newest: dict[tuple[str, str], datetime] = {}
    for p in predictions:
        key = (p.kind, p.entity_id)
        newest[key] = max(newest.get(key, p.observed_at), p.observed_at)
    out = {}
    for p in sorted(predictions, key=lambda p: (p.observed_at, p.id)):
        v = triage(p, book.for_prediction(p), last_acted=last.get((p.kind, p.entity_id)),
                   now=now, holdout_share=share, newest_observed_at=newest[(p.kind, p.entity_id)])
        if v.action == TriageAction.ACT:
            last[(p.kind, p.entity_id)] = Acted(now, p.observed_at)
        out[p.id] = (v.action.value, v.reason, v.detail, v.playbook, v.expected_value)
    return out


def _stored(rt: Runtime) -> dict[str, tuple]:
    p = t.predictions
    with rt.store.reading() as conn:
        rows = conn.execute(select(p.c.id, p.c.triage_action, p.c.triage_reason, p.c.triage_detail,
                                   p.c.playbook, p.c.expected_value))
        return {r[0]: tuple(r[1:]) for r in rows}


def test_chunks_reach_the_verdicts_of_the_row_by_row_rules(rt: Runtime) -> None:
    backlog = _backlog()
    rt.ingest(backlog, source="test")
    with rt.store.transaction() as conn:  # a row stored before intake kept expected_value
        conn.execute(update(t.predictions).where(t.predictions.c.id == "p-0001")
                     .values(expected_value=None))
    seen: list = []
    while verdicts := rt.triage_pending(limit=97).verdicts:
        seen += verdicts
    assert sorted(v.prediction_id for v in seen) == sorted(p.id for p in backlog)
    expected = _reference(backlog, rt.playbooks, 0.2, datetime.now(UTC))
    assert _stored(rt) == expected
    assert {v.prediction_id: (v.action.value, v.reason, v.detail, v.playbook, v.expected_value)
            for v in seen} == expected
    reasons = {r for _, r, *_ in expected.values()}
    # (no cooldown here: only the newest prediction on an entity gets past "superseded",
    # and nothing had acted on one before; tests/agent/test_triage.py has cooldowns)
    assert {"no_playbook", "below_threshold", "low_expected_value", "superseded", "holdout",
            "missing_value", "act"} <= reasons
    assert {a for a, *_ in expected.values()} == {"act", "drop", "hold", "needs_human"}


def test_a_rule_applied_in_bulk_is_one_ledger_entry_over_its_rows(rt: Runtime) -> None:
    low = [Prediction(id=f"low-{i}", model="m", kind="churn", entity_type="account",
                      entity_id=f"E-{i}", score=0.1, value_at_stake=10.0, observed_at=T0)
           for i in range(50)]
    odd = [Prediction(id="w-1", model="m", kind="weather", entity_type="account",
                      entity_id="E-1", score=0.9, observed_at=T0)]
    rt.ingest(low + odd, source="test")
    summary = rt.triage_pending()
    assert summary.count(TriageAction.DROP) == 50
    assert summary.count(TriageAction.NEEDS_HUMAN) == 1  # an unknown kind goes to a person
    entries = [e for e in rt.store.ledger.entries() if e.event == "predictions.triaged"]
    assert sorted((e.body["reason"], e.body["action"], e.body["kind"], e.body["rows"])
                  for e in entries) == [("below_threshold", "drop", "churn", 50),
                                        ("no_playbook", "needs_human", "weather", 1)]
    assert not [e for e in rt.store.ledger.entries() if e.event == "prediction.triaged"]
    assert rt.store.predictions.row("low-3")["triage_detail"] == "score 0.10 < 0.65"


def test_every_read_and_write_of_a_pass_walks_the_untriaged_index(tmp_path: Path) -> None:
    """Not all rows of a kind (``ix_predictions_entity``), nor the whole table: a pass
    costs the untriaged rows it takes, however long the history. Only the row-by-row step
    sorts, and only what the bulk rules left."""
    with Runtime(Settings(home=tmp_path / "home")) as rt:
        rt.ingest(_backlog(300), source="test")
        seen: list[tuple[str, object]] = []

        def capture(conn, cursor, statement, parameters, context, executemany) -> None:
            if "triaged_at IS NULL" in statement and not executemany:
                seen.append((statement, parameters))

        event.listen(rt.store.engine, "before_cursor_execute", capture)
        rt.triage_pending(limit=100)  # screens 100 in storage order
        rt.triage_pending(limit=300)  # screens the rest, then row by row in triage order
        event.remove(rt.store.engine, "before_cursor_execute", capture)
        assert len(seen) >= 7  # windows, kinds, drops (and their ties), what is left
        with rt.store.reading() as conn:
            for statement, parameters in seen:
                plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + statement, parameters))
                assert "USING INDEX ix_predictions_untriaged" in plan, (statement, plan)
                assert "ix_predictions_entity" not in plan


def test_only_whole_kind_rules_go_to_sql() -> None:
    book = load_playbooks()
    drops = {d.kind: d for d in bulk_drops(book, ["churn", "weather"])}
    assert (drops["weather"].reason, drops["weather"].playbook) == ("no_playbook", None)
    assert drops["weather"].action == TriageAction.NEEDS_HUMAN
    assert drops["churn"].action == TriageAction.DROP
    assert (drops["churn"].reason, drops["churn"].below) == ("below_threshold", 0.65)
    churn = book.playbooks["churn-retention"]
    picky = churn.model_copy(update={"name": "churn-vip", "priority": 1,
                                     "match": "prediction.features.segment == 'vip'"})
    mixed = PlaybookBook(playbooks={**book.playbooks, "churn-vip": picky})
    assert bulk_drops(mixed, ["churn"]) == []  # which playbook a row gets depends on the row


def test_a_kinds_default_value_is_used_and_kept_beside_the_prediction(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", holdout_share=0.0,
                        value_at_stake_defaults={"churn": 30_000})
    with Runtime(settings, actor="triager") as rt:
        rt.ingest([Prediction(id="d-1", model="m", kind="churn", entity_type="account",
                              entity_id="ACC-10001", score=0.9, observed_at=T0),
                   Prediction(id="d-2", model="m", kind="failure", entity_type="asset",
                              entity_id="A-1", score=0.9, observed_at=T0)], source="test")
        rt.triage_pending()
        churn, failure = rt.store.predictions.row("d-1"), rt.store.predictions.row("d-2")
        assert (churn["triage_action"], churn["expected_value"]) == ("act", 27_000)
        assert churn["value_at_stake_supplied"] == 30_000
        assert "default 30,000" in churn["triage_detail"]
        assert rt.store.predictions.get("d-1").value_at_stake is None  # as received
        (claim,) = rt.store.decisions.claim_new(owner="w", lease_seconds=60)
        assert claim.prediction["value_at_stake"] == 30_000  # the decision plans with it
        # no default for failure: a person is asked, naming what is missing
        assert (failure["triage_action"], failure["triage_reason"]) == ("needs_human",
                                                                         "missing_value")
        assert "value_at_stake" in failure["triage_detail"]
        assert failure["value_at_stake_supplied"] is None
