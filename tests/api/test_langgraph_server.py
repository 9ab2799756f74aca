"""``decisionops serve`` speaks the part of the LangGraph Server API that ``langgraph_sdk``
and Agent Inbox use, under ``/langgraph``, tested with the real ``langgraph_sdk`` client
against a live server: the assistant, interrupted threads with Agent Inbox interrupts,
thread state, and runs with ``command.resume`` answered through the approval service
(the wrong function's approver gets 403 like on any channel; a bad resume is a 422
naming the field)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from langgraph_sdk import get_client

from tests.api.conftest import Live, churn_record


def _decide(live: Live, pid: str) -> str:
    with httpx.Client(base_url=live.url) as client:
        assert client.post("/v1/predictions", json={"predictions": [churn_record(pid)]},
                           headers=live.auth("feeder")).status_code == 200
    decision = live.rt.decision_ids([pid])[0]
    live.pending(decision, 2)  # sales and finance are asked
    return decision


async def _flow(live: Live, decision: str) -> None:
    url = f"{live.url}/langgraph"
    raj = get_client(url=url, api_key=live.tokens["raj"])
    dana = get_client(url=url, api_key=live.tokens["dana"])

    assert [a["assistant_id"] for a in await raj.assistants.search()] == ["decision"]
    threads = await raj.threads.search(status="interrupted")
    assert [t["thread_id"] for t in threads] == [decision]
    (ask,) = threads[0]["interrupts"].values()
    value = ask[0]["value"]
    assert value["function"] == "sales"  # raj sees his function's request only
    assert set(value["config"]) == {"allow_accept", "allow_edit", "allow_respond", "allow_ignore"}
    assert value["action_request"]["args"] and value["description"]
    assert value["decision_id"] == decision and value["plan_hash"]

    state = await dana.threads.get_state(decision)
    (finance,) = state["interrupts"]
    assert finance["value"]["function"] == "finance"

    # the wrong function's approver: 403 from the approval service
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await dana.runs.wait(decision, "decision", command={
            "resume": {ask[0]["id"]: {"type": "accept", "args": None}}})
    assert refused.value.response.status_code == 403
    assert "not sales" in refused.value.response.text
    # not a HumanResponse: 422 naming the field and what to send
    with pytest.raises(httpx.HTTPStatusError) as bad:
        await raj.runs.wait(decision, "decision", command={"resume": {"approve": True}})
    assert bad.value.response.status_code == 422
    assert "command.resume" in bad.value.response.text
    assert "accept" in bad.value.response.text

    with pytest.raises(httpx.HTTPStatusError) as bad:
        await raj.runs.wait(decision, "decision", command={
            "resume": {ask[0]["id"]: {"type": "respond", "args": "?"}}})
    assert bad.value.response.json()["error"]["field"] == f"command.resume.{ask[0]['id']}.type"
    # a response (revise) whose feedback the playbook planner can apply nothing of: its
    # args named (trial 21: "feedback", a field of no request here), the request pending
    assert "A response (revise) can: " in value["description"]
    with pytest.raises(httpx.HTTPStatusError) as bad:
        await raj.runs.wait(decision, "decision", command={
            "resume": {ask[0]["id"]: {"type": "response", "args": "call them first"}}})
    assert bad.value.response.status_code == 422
    assert bad.value.response.json()["error"]["field"] == f"command.resume.{ask[0]['id']}.args"
    assert "can apply none of this feedback" in bad.value.response.json()["error"]["message"]

    # Agent Inbox's resume: one HumanResponse in a list, the caller's one request
    after = await raj.runs.wait(decision, "decision", command={
        "resume": [{"type": "accept", "args": None}]})
    assert "__interrupt__" not in after  # nothing of raj's waits
    # Agent Inbox's edit: the action with every step's arguments, one of them changed
    args = finance["value"]["action_request"]["args"]
    edited = {**args, "goodwill_credit": {**args["goodwill_credit"], "amount": 150}}
    done = await dana.runs.wait(decision, "decision", command={"resume": {finance["id"]: {
        "type": "edit", "args": {"action": finance["value"]["action_request"]["action"],
                                 "args": edited}}}})
    assert done["status"] == "completed", done
    assert (await dana.threads.get(decision))["status"] == "idle"
    assert await raj.threads.search(status="interrupted") == []


def test_langgraph_sdk_answers_through_the_approval_service(live: Live) -> None:
    decision = _decide(live, "lg-serve-1")
    asyncio.run(_flow(live, decision))
    refusals = [e.body for e in live.rt.store.ledger.entries(decision)
                if e.event == "approval.refused"]
    assert [r["reason"] for r in refusals] == ["wrong_function"]
    (credit,) = live.rt.enterprise.effects("finance.issue_credit")
    assert credit.arguments["amount"] == 150
    finance = [a for a in live.rt.store.approvals.list(decision_id=decision)
               if a.function == "finance"]
    assert [(a.status, a.approver) for a in finance] == [("edited", "dana@finance")]


def test_langgraph_api_needs_our_token(live: Live) -> None:
    for headers in ({}, {"x-api-key": "dops_wrong"}, {"Authorization": "Bearer nope"}):
        response = httpx.post(f"{live.url}/langgraph/threads/search", json={},
                              headers=headers, timeout=10)
        assert response.status_code == 401, headers
    response = httpx.post(f"{live.url}/langgraph/threads/search", json={"status": "sleeping"},
                          headers={"x-api-key": live.tokens["raj"]}, timeout=10)
    assert response.status_code == 422 and "status" in response.text




def test_a_replayed_resume_is_refused_and_recorded_as_on_every_channel(live: Live) -> None:
    # Found in a black-box trial: resuming a request answered already got a 422 "no
    # pending interrupt" and nothing in the ledger, where the API, CLI, inbox and HITL
    # endpoint say 409 replay and record the refusal.
    decision = _decide(live, "lg-serve-replay")
    sales = next(a.id for a in live.rt.store.approvals.list(decision_id=decision,
                                                             status="pending")
                 if a.function == "sales")
    run = {"assistant_id": "decision",
           "command": {"resume": {sales: {"type": "accept", "args": None}}}}
    url = f"{live.url}/langgraph/threads/{decision}/runs"
    first = httpx.post(url, json=run, headers={"x-api-key": live.tokens["raj"]}, timeout=40)
    assert first.status_code == 200, first.text
    again = httpx.post(url, json=run, headers={"x-api-key": live.tokens["raj"]}, timeout=40)
    assert again.status_code == 409, again.text
    assert again.json()["error"]["reason"] == "replay"
    refusals = [e.body for e in live.rt.store.ledger.entries(decision)
                if e.event == "approval.refused"]
    assert [(r["reason"], r["channel"]) for r in refusals] == [("replay", "langgraph")]


def test_a_resume_refused_in_part_changes_nothing(live: Live) -> None:
    # raj answers his sales request and, in the same resume, finance's: the service
    # refuses finance's, and the run must not leave the sales answer recorded behind a 403.
    decision = _decide(live, "lg-serve-part")
    pending = {a.function: a.id for a in live.rt.store.approvals.list(
        decision_id=decision, status="pending")}
    accept = {"type": "accept", "args": None}
    response = httpx.post(
        f"{live.url}/langgraph/threads/{decision}/runs/wait",
        json={"assistant_id": "decision", "command": {"resume": {
            pending["sales"]: accept, pending["finance"]: accept}}},
        headers={"x-api-key": live.tokens["raj"]}, timeout=40)
    assert response.status_code == 403
    assert live.rt.store.approvals.get(pending["sales"]).status == "pending"


def test_a_run_answering_one_of_several_functions_returns_while_the_others_are_asked(
        live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker feeds the graph once every function has answered; a run that answers
    one function returns at once with the others' interrupts still pending (it does not
    wait for an application that comes only with their answers)."""
    from decisionops.agent.api import _routes_langgraph

    monkeypatch.setattr(_routes_langgraph, "WAIT_SECONDS", 3600.0)
    decision = _decide(live, "lg-serve-one-of-two")
    sales = next(a for a in live.rt.store.approvals.list(decision_id=decision, status="pending")
                 if a.function == "sales")
    response = httpx.post(
        f"{live.url}/langgraph/threads/{decision}/runs/wait",
        json={"assistant_id": "decision", "command": {"resume": {
            sales.id: {"type": "accept", "args": None}}}},
        headers={"x-api-key": live.tokens["raj"]}, timeout=60)
    assert response.status_code == 200, response.text
    assert "__interrupt__" not in response.json()  # nothing of raj's waits
    assert [a.function for a in live.rt.store.approvals.list(
        decision_id=decision, status="pending")] == ["finance"]
    assert live.rt.store.approvals.get(sales.id).status == "approved"
