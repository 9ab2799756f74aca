"""Conflicts: open decisions on one entity are linked in the approval requests; a
playbook can supersede kinds (the newer decision is dropped, visibly) or wait for them
(the newer decision is ``waiting`` until the older ones finish, then the loop routes it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from decisionops.agent.models import Approve, Prediction, Reject
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from decisionops.agent.store import _tables as t
from decisionops.agent.worker import Worker
from tests.graphs.conftest import churn, pending, start
from tests.support import answer, approver

_LATE = """
name: late-payment-collections
kind: late_payment
trigger: {{min_score: 0.5}}
{rule}
steps:
  - id: payment_call
    function: sales
    tool: crm.create_task
    risk: medium
    arguments:
      account_id: "{{{{ prediction.entity_id }}}}"
      owner_role: account_manager
      subject: Payment follow-up
      due_in_days: 3
"""


def late(pid: str = "late-1", account: str = "ACC-10004") -> Prediction:
    return Prediction(id=pid, model="pay", kind="late_payment", entity_type="account",
                      entity_id=account, score=0.9, value_at_stake=20_000,
                      features={"invoice_id": "INV-1"}, observed_at="2026-11-20T08:00:00Z")


def _runtime(request: pytest.FixtureRequest, tmp_path: Path, *, churn_rule: str = "",
             late_rule: str = "") -> Iterator[Runtime]:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    (folder / "late.yaml").write_text(_LATE.format(rule=late_rule))
    if churn_rule:
        bundled = (Path(__file__).parents[2] / "agent/data/playbooks/churn.yaml").read_text()
        (folder / "churn.yaml").write_text(bundled.replace("steps:\n", churn_rule + "\nsteps:\n",
                                                           1))
    database_url = (request.getfixturevalue("pg_url") if request.param == "postgres"
                    else None)
    settings = Settings(home=tmp_path / "home", tool_backoff_seconds=0.01,
                        playbooks_dir=folder, database_url=database_url)
    with Runtime(settings, actor="test-worker") as runtime:
        runtime.enterprise.seed()
        for policy in runtime.policies.functions.values():
            for name in policy.approvers:
                approver(runtime, name)
        yield runtime


@pytest.fixture(params=["sqlite", "postgres"])
def linked(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    yield from _runtime(request, tmp_path)


@pytest.fixture(params=["sqlite", "postgres"])
def superseding(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    yield from _runtime(request, tmp_path, churn_rule="supersedes: [late_payment]")


@pytest.fixture(params=["sqlite", "postgres"])
def waiting(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    yield from _runtime(request, tmp_path, late_rule="waits_for: [churn]")


def _ledger(rt: Runtime, decision_id: str) -> list[tuple[str, dict]]:
    with rt.store.reading() as conn:
        return [(r.event, r.body) for r in conn.execute(
            select(t.ledger.c.event, t.ledger.c.body)
            .where(t.ledger.c.decision_id == decision_id).order_by(t.ledger.c.seq))]


def test_open_decisions_on_one_entity_are_shown_side_by_side(linked: Runtime) -> None:
    first = start(linked, churn())
    second = start(linked, late())
    (request,) = pending(linked, second.decision_id).values()
    (related,) = request["request"]["related"]
    assert related["decision_id"] == first.decision_id
    assert related["kind"] == "churn" and related["status"] == "awaiting_approval"
    assert "sales:retention_offer crm.create_retention_offer" in related["steps"]
    # The stored request keeps them; every read path returns them.
    row = linked.store.approvals.get(request["id"])
    assert row.request.related[0].decision_id == first.decision_id
    # Another account's decision is not related.
    other = start(linked, late("late-2", account="ACC-10003"))
    (alone,) = pending(linked, other.decision_id).values()
    assert alone["request"]["related"] == []


def test_a_newer_decision_of_a_superseded_kind_is_dropped_visibly(superseding: Runtime
                                                                    ) -> None:
    rt = superseding
    offer = start(rt, churn())
    dunning = start(rt, late())
    decision = rt.store.decisions.get(dunning.decision_id)
    assert decision.status == "needs_human"
    assert decision.error.startswith(f"superseded by open decision {offer.decision_id} "
                                     "(churn, awaiting_approval")
    assert pending(rt, dunning.decision_id) == {}
    events = dict(_ledger(rt, dunning.decision_id))
    assert events["decision.superseded"]["by"] == offer.decision_id
    # The superseding decision is untouched.
    assert rt.store.decisions.get(offer.decision_id).status == "awaiting_approval"


def test_an_older_decision_of_a_superseded_kind_stays_and_is_shown(superseding: Runtime
                                                                     ) -> None:
    rt = superseding
    dunning = start(rt, late())
    offer = start(rt, churn())
    assert rt.store.decisions.get(dunning.decision_id).status == "awaiting_approval"
    sales = pending(rt, offer.decision_id)["sales"]["request"]
    assert [r["decision_id"] for r in sales["related"]] == [dunning.decision_id]


def test_waits_for_holds_routing_until_the_older_decision_finishes(waiting: Runtime) -> None:
    rt = waiting
    offer = start(rt, churn())
    dunning = start(rt, late())
    decision = rt.store.decisions.get(dunning.decision_id)
    assert decision.status == "waiting"
    assert decision.error == f"waits for {offer.decision_id} (churn, awaiting_approval)"
    assert pending(rt, dunning.decision_id) == {}  # no approver asked yet
    # The loop looks again while the other is open: still waiting, nothing asked.
    Worker(rt).tick()
    assert rt.store.decisions.get(dunning.decision_id).status == "waiting"
    # The older decision finishes (every function rejects): the loop routes the newer.
    for function, request in pending(rt, offer.decision_id).items():
        answer(rt, request["id"], Reject(reason="not now"),
               approver_name=rt.policies.get(function).approvers[0])
    assert rt.store.decisions.get(offer.decision_id).terminal
    Worker(rt).tick()
    assert rt.store.decisions.get(dunning.decision_id).status == "awaiting_approval"
    (request,) = pending(rt, dunning.decision_id).values()
    assert request["request"]["related"] == []
    answer(rt, request["id"], Approve(), approver_name="raj@sales")
    assert rt.store.decisions.get(dunning.decision_id).status == "completed"


def test_waits_for_only_older_decisions_so_two_never_wait_for_each_other(waiting: Runtime
                                                                         ) -> None:
    rt = waiting
    dunning = start(rt, late())
    offer = start(rt, churn())
    assert rt.store.decisions.get(dunning.decision_id).status == "awaiting_approval"
    assert rt.store.decisions.get(offer.decision_id).status == "awaiting_approval"


def test_a_replayed_conflicts_leg_keeps_the_stored_supersession(superseding: Runtime
                                                                  ) -> None:
    """A crash after conflicts stored the refusal, before the graph's checkpoint: the leg
    re-runs from conflicts (check's step is checkpointed). The stored verdict stands,
    whatever the other decisions are now: the decision ends needs_human as stored, and
    the ledger does not record the supersession twice."""
    from dataclasses import replace

    from langgraph.runtime import Runtime as LangGraphRuntime

    from decisionops.graphs.nodes.conflicts import conflicts

    rt = superseding
    offer = start(rt, churn())
    dunning = start(rt, late())
    decision = rt.store.decisions.get(dunning.decision_id)
    assert decision.status == "needs_human"
    # The superseding decision finishes meanwhile.
    for function, request in pending(rt, offer.decision_id).items():
        answer(rt, request["id"], Reject(reason="not now"),
               approver_name=rt.policies.get(function).approvers[0])
    assert rt.store.decisions.get(offer.decision_id).terminal
    stored = rt.store.plans.row(dunning.decision_id, 1)
    ctx = replace(rt._context(decision.fence), fresh=False)
    state = {"decision_id": dunning.decision_id, "plan": stored["body"],
             "prediction": rt.store.predictions.get(decision.prediction_id).model_dump(
                 mode="json")}
    before = _ledger(rt, dunning.decision_id)
    command = conflicts(state, LangGraphRuntime(context=ctx))
    assert command.goto == "record"
    assert command.update["outcome"] == "needs_human"
    assert command.update["error"] == decision.error
    assert _ledger(rt, dunning.decision_id) == before
