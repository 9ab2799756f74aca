"""The checker tells lost from stuck: a decision waiting on a request a person can see is
unfinished work (lost, at the end of a run); one waiting on nothing anyone can see, or a
call left ``started``, is stuck. The faults here are written straight into the store, as
a bug would leave it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import update

from decisionops.agent.store import _tables as t
from tests.reliability.checker import check
from tests.reliability.crash_cases import CHURN, churn
from tests.reliability.harness import Place, finish, register_approvers
from tests.support import start_decisions

pytestmark = pytest.mark.reliability


def test_waiting_on_a_person_is_lost_and_waiting_on_nothing_is_stuck(tmp_path: Path) -> None:
    place = Place(tmp_path)
    with place.runtime() as rt:
        register_approvers(rt)
        rt.ingest([churn(rt)], source="checker")
        rt.triage_pending()
        start_decisions(rt)
        verdict = check(rt.store, place.enterprise_db, label="waiting")
        assert len(verdict.lost) == 1 and "waiting on pending" in verdict.lost[0]
        assert verdict.stuck == [] and verdict.lost[0].startswith("[waiting] ")

        # A bug withdraws the requests: nothing left for anyone to answer.
        with rt.store.transaction() as conn:
            conn.execute(update(t.approvals).where(t.approvals.c.decision_id == CHURN)
                         .values(status="superseded"))
        verdict = check(rt.store, place.enterprise_db)
        assert verdict.lost == []
        assert len(verdict.stuck) == 1 and f"decision {CHURN} stuck in awaiting_approval" \
            in verdict.stuck[0]


def test_a_call_left_started_is_stuck_and_an_unknown_effect_unapproved(tmp_path: Path) -> None:
    place = Place(tmp_path)
    with place.runtime() as rt:
        register_approvers(rt)
        rt.ingest([churn(rt)], source="checker")
        assert finish(rt) == []
        clean = check(rt.store, place.enterprise_db)
        assert clean.findings == [] and clean.effects == 4 == clean.approved_steps
        assert clean.counts() == "lost 0, stuck 0, duplicated 0, unapproved 0"

        with rt.store.transaction() as conn:
            conn.execute(update(t.executions).where(t.executions.c.step_id == "proactive_case")
                         .values(status="started"))
        with sqlite3.connect(place.enterprise_db) as conn:
            conn.execute("insert into tool_calls (idempotency_key, tool, arguments_hash, "
                         "arguments_json, result_json, created_at) values ('idem_forged', "
                         "'finance.issue_credit', 'x', '{}', '{}', '2026-11-20T08:00:00Z')")
        verdict = check(rt.store, place.enterprise_db)
        assert verdict.stuck == [f"{CHURN}:proactive_case execution left 'started'"]
        assert len(verdict.unapproved) == 1 and "idem_forged" in verdict.unapproved[0]
        total = clean + verdict  # verdicts of several runs add up
        assert (len(total.stuck), len(total.unapproved), total.decisions) == (1, 1, 2)
