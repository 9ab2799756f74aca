"""The ``world`` the ledger's row checks run against (``test_ledger_rows_*``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from decisionops.agent.models import Approve, Edit, Reject
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from tests.graphs.conftest import churn, pending, start
from tests.support import answer, approver


@dataclass
class World:
    """Three decisions: ``done`` (finance edited, sales approved, support auto-approved:
    completed), ``refused`` (sales rejected, finance approved) and ``waiting`` (its sales
    and finance requests pending); ``ids[(decision, function)]`` is an approval's id."""

    rt: Runtime
    done: str
    refused: str
    waiting: str
    ids: dict[tuple[str, str], str]


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    database_url = (request.getfixturevalue("pg_url") if request.param == "postgres"
                    else None)
    settings = Settings(home=tmp_path / "home", tool_backoff_seconds=0.01,
                        database_url=database_url)
    with Runtime(settings, actor="test-worker") as rt:
        rt.enterprise.seed()
        for policy in rt.policies.functions.values():
            for name in policy.approvers:
                approver(rt, name)
        done = start(rt, churn("churn-done", account="ACC-10004")).decision_id
        asked = pending(rt, done)
        answer(rt, asked["finance"]["id"], Edit(arguments={"goodwill_credit": {"amount": 150}}),
               approver_name="dana@finance")
        answer(rt, asked["sales"]["id"], Approve(), approver_name="raj@sales")
        refused = start(rt, churn("churn-refused", account="ACC-10005")).decision_id
        asked = pending(rt, refused)
        answer(rt, asked["sales"]["id"], Reject(reason="the account is in a legal dispute"),
               approver_name="mia@sales")
        answer(rt, asked["finance"]["id"], Approve(), approver_name="omar@finance")
        waiting = start(rt, churn("churn-waiting", account="ACC-10006")).decision_id
        ids = {(a.decision_id, a.function): a.id for a in rt.store.approvals.list()}
        assert rt.store.decisions.get(done).status == "completed"
        assert rt.store.approvals.get(ids[(done, "support")]).status == "auto_approved"
        yield World(rt, done, refused, waiting, ids)


