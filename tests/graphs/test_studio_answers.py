"""The Studio graph's resumes are answers through the approval service, as LangGraph's
authenticated user: no user, or a user who is not ours (Studio's own
``langgraph-studio-user``), is asked again with what to send; ``ignore`` rejects and
``accept`` approves, as the approval service records them. And Agent Inbox's
``HumanResponse`` maps onto our answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore
from langgraph.types import Command

from decisionops.agent.api._users import add_user
from decisionops.agent.approvals import answer_from_human
from decisionops.agent.errors import InvalidInputError
from decisionops.agent.models import ApprovalRequest, Approve, Edit, Reject, Revise, Step
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from decisionops.graphs.studio import build_studio_graph
from tests.api.conftest import churn_record


def _asks(out: dict[str, Any]) -> dict[str, Any]:
    return {i.value["function"]: i for i in out["__interrupt__"]}


def _as(user: str | None, thread: str = "t1") -> dict[str, Any]:
    configurable: dict[str, Any] = {"thread_id": thread}
    if user is not None:
        configurable["langgraph_auth_user"] = {"identity": user}
    return {"configurable": configurable}


def test_studio_resumes_answer_as_the_authenticated_user(tmp_path: Path) -> None:
    with Runtime(Settings(home=tmp_path / "home"), actor="t") as rt:
        rt.enterprise.seed()
        add_user(rt, "raj", role="approver", functions=["sales"], actor="t")
        add_user(rt, "dana", role="approver", functions=["finance"], actor="t")
        graph = build_studio_graph(rt, InMemorySaver())
        asks = _asks(graph.invoke({"prediction": churn_record("studio-a")}, _as(None)))

        accept = {"type": "accept", "args": None}
        out = graph.invoke(Command(resume={asks["sales"].id: accept}), _as(None))
        assert "no authenticated user" in _asks(out)["sales"].value["error"]
        out = graph.invoke(Command(resume={_asks(out)["sales"].id: accept}),
                           _as("langgraph-studio-user"))
        error = _asks(out)["sales"].value["error"]
        assert "not an active DecisionOps user" in error and "x-api-key" in error
        assert rt.store.approvals.get(asks["sales"].value["approval_id"]).status == "pending"

        out = graph.invoke(Command(resume={_asks(out)["sales"].id: accept}), _as("raj"))
        assert set(_asks(out)) == {"finance"}
        out = graph.invoke(Command(resume={_asks(out)["finance"].id: {
            "type": "ignore", "args": "no credit this quarter"}}), _as("dana"))
        assert "__interrupt__" not in out
        sales = rt.store.approvals.get(asks["sales"].value["approval_id"])
        finance = rt.store.approvals.get(asks["finance"].value["approval_id"])
        assert (sales.status, sales.approver) == ("approved", "raj@sales")
        assert (finance.status, finance.approver) == ("rejected", "dana@finance")
        assert rt.enterprise.effects()  # sales' approved steps ran


def _request() -> ApprovalRequest:
    step = Step(id="offer", function="sales", tool="crm.create_offer",
                arguments={"account_id": "ACC-1", "discount_pct": 10})
    return ApprovalRequest(approval_id="apr_1", decision_id="dec_1", function="sales",
                           plan_version=1, plan_hash="h" * 64, steps=(step,))


@pytest.mark.parametrize(("value", "expected"), [
    ({"type": "accept", "args": None}, Approve),
    ([{"type": "accept", "args": None}], Approve),
    ({"type": "ignore", "args": "not now"}, Reject),
    ({"type": "response", "args": "offer 5 % instead"}, Revise),
    ({"type": "edit", "args": {"action": "x", "args": {
        "offer": {"account_id": "ACC-1", "discount_pct": 5}}}}, Edit),
    ({"type": "edit", "args": {"action": "x", "args": {
        "offer": {"account_id": "ACC-1", "discount_pct": 10}}}}, Approve),
])
def test_human_responses_map_onto_answers(value: Any, expected: type) -> None:
    assert isinstance(answer_from_human(_request(), value), expected)


@pytest.mark.parametrize(("value", "field"), [
    ({"approve": True}, "resume.type"),
    ("yes", "resume"),
    ([], "resume"),
    ({"type": "response", "args": ""}, "resume.args"),
    ({"type": "edit", "args": {"args": {"nope": {}}}}, "resume.args.args.nope"),
    ({"type": "edit", "args": None}, "resume.args.args"),
    # Found in a black-box trial: ignore recorded a reject with a reason made up for the
    # approver ("ignored in a LangGraph client"); every other channel asks for one.
    ({"type": "ignore", "args": None}, "resume.args"),
    ({"type": "ignore", "args": "  "}, "resume.args"),
    # too long is refused as on every channel, not recorded cut short (trial 23)
    ({"type": "ignore", "args": "r" * 2001}, "resume.args"),
    ({"type": "response", "args": "f" * 4001}, "resume.args"),
])
def test_bad_human_responses_name_the_field_and_what_to_send(value: Any, field: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        answer_from_human(_request(), value)
    assert raised.value.field == field
    assert '{"type": "accept", "args": null}' in str(raised.value)


def test_a_refused_resume_is_never_answered_again_by_the_next_user(tmp_path: Path) -> None:
    """LangGraph replays a node's earlier resume values when it re-runs it: dana's refused
    ``ignore`` on sales' request must stay refused when raj's ``accept`` re-runs the node
    (it must not be answered again, as raj)."""
    with Runtime(Settings(home=tmp_path / "home"), actor="t") as rt:
        rt.enterprise.seed()
        add_user(rt, "raj", role="approver", functions=["sales"], actor="t")
        add_user(rt, "dana", role="approver", functions=["finance"], actor="t")
        graph = build_studio_graph(rt, InMemorySaver(), InMemoryStore())
        asks = _asks(graph.invoke({"prediction": churn_record("studio-b")}, _as(None)))
        out = graph.invoke(Command(resume={asks["sales"].id: {"type": "ignore", "args": "no"}}),
                           _as("dana"))
        assert "not sales" in _asks(out)["sales"].value["error"]
        out = graph.invoke(Command(resume={_asks(out)["sales"].id: {"type": "accept"}}),
                           _as("raj"))
        sales = rt.store.approvals.get(asks["sales"].value["approval_id"])
        assert (sales.status, sales.approver) == ("approved", "raj@sales")
        refused = [e.body["reason"] for e in rt.store.ledger.entries(sales.decision_id)
                   if e.event == "approval.refused"]
        assert refused == ["wrong_function"]  # judged once


def test_a_studio_run_never_takes_over_a_decision_it_did_not_start(tmp_path: Path) -> None:
    # The loop started this prediction's decision (it waits on approvals): a Studio run
    # for the same prediction must not drive that decision as a second writer, and
    # another Studio thread must not drive one a first thread started.
    from decisionops.agent.errors import ConflictError
    from decisionops.agent.models import Prediction
    from decisionops.agent.worker import Worker

    with Runtime(Settings(home=tmp_path / "home"), actor="t") as rt:
        rt.enterprise.seed()
        looped = churn_record("studio-dup")
        rt.ingest([Prediction.model_validate(looped)], source="test")
        Worker(rt, poll_seconds=0.01).tick()
        (decision,) = rt.store.decisions.list()
        before = [(a.id, a.status) for a in rt.store.approvals.list(decision_id=decision.id)]
        graph = build_studio_graph(rt, InMemorySaver())
        with pytest.raises(ConflictError, match="exists already"):
            graph.invoke({"prediction": looped}, _as(None, thread="other"))
        assert [(a.id, a.status) for a in
                rt.store.approvals.list(decision_id=decision.id)] == before

        mine = churn_record("studio-own")
        asks = _asks(graph.invoke({"prediction": mine}, _as(None, thread="t1")))
        with pytest.raises(ConflictError, match="exists already"):
            graph.invoke({"prediction": mine}, _as(None, thread="t2"))
        # its own thread goes on (a resume re-runs the node from its first line)
        out = graph.invoke(Command(resume={asks["sales"].id: {"type": "accept"}}),
                           _as(None, thread="t1"))
        assert "no authenticated user" in _asks(out)["sales"].value["error"]
