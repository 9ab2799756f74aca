"""Findings 3, 9 and 10: what an expired request means (``on_timeout``), answers that
race, and answers that must be refused: replayed, for a stale plan version, from
someone who is not the function's approver, with a forged approver, through the chat."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from decisionops.agent.errors import ConflictError, DecisionOpsError
from decisionops.agent.models import Approve, Reject, Revise, utcnow
from decisionops.evals.adversarial._arena import Arena, predict
from decisionops.evals.adversarial._suite import CaseList, World
from decisionops.evals.scripted import ScriptedServer, call, completion

__all__ = ["CASES"]

CASES = CaseList()


def _churn(world: World, pid: str = "churn-1", **options: Any) -> tuple[Arena, str]:
    arena = world(**options)
    (decision,) = arena.ingest(predict(pid))
    arena.start()
    return arena, decision


def _finance_only(on_timeout: str) -> Callable[[dict[str, Any]], None]:
    def change(functions: dict[str, Any]) -> None:
        functions["finance"].update(on_timeout=on_timeout, sla_hours=1)
        functions["sales"]["auto_approve"] = {"max_risk": "high"}  # only finance asks
    return change


# ---------------------------------------------------------------------- finding 3


@CASES.add("timeout-approve", "timeout",
           "finance says on_timeout: approve; nobody answers within the SLA")
def _timeout_approve(world: World) -> None:
    arena, decision = _churn(world, functions=_finance_only("approve"))
    arena.check(set(arena.pending(decision)) == {"finance"}, "finance alone should be asked")
    arena.check(not arena.effects("finance.issue_credit"), "the credit ran before expiry")
    arena.check(arena.expire(0.5)["expired"] == 0, "expired before the deadline")
    arena.check(arena.expire(2)["expired"] == 1, "the request did not expire")
    arena.work()
    arena.check(arena.status(decision) == "completed", f"decision {arena.status(decision)}")
    arena.check(arena.effects("finance.issue_credit", amount=200, account_id="ACC-10004"),
                "the expired, approve-on-timeout credit did not run")
    late = arena.rt.store.approvals.list(decision_id=decision, function="finance")[0]
    arena.refused(lambda: arena.answer(late, Reject(reason="too late"), by="dana@finance"),
                  reason="replay")


@CASES.add("timeout-reject", "timeout",
           "finance keeps the default on_timeout: reject; the SLA passes, then dana approves")
def _timeout_reject(world: World) -> None:
    arena, decision = _churn(world, functions=_finance_only("reject"))
    arena.check(arena.expire(2)["expired"] == 1, "the request did not expire")
    late = arena.rt.store.approvals.list(decision_id=decision, function="finance")[0]
    arena.refused(lambda: arena.answer(late, Approve(), by="dana@finance"), reason="replay")
    arena.work()
    arena.check(arena.status(decision) == "completed", f"decision {arena.status(decision)}")
    arena.check(not arena.effects("finance.issue_credit"), "the expired credit ran")
    arena.check(arena.effects("crm.create_retention_offer"), "the sales part did not run")


@CASES.add("timeout-approve-while-held", "timeout",
           "an approve-on-timeout request's deadline passes while its entity is on hold")
def _timeout_held(world: World) -> None:
    # A hold stops the SLA clock of what it covers; its release moves the deadline on by
    # the time held, and the request expires (approved, as its policy says) only then.
    arena, decision = _churn(world, functions=_finance_only("approve"))
    arena.rt.approvals.hold("ACC-10004", until=utcnow() + timedelta(days=1), reason="dispute",
                            actor="olga")
    arena.check(arena.expire(2)["expired"] == 0, "the request expired during the hold")
    arena.work()
    arena.check(not arena.effects(), f"effects during the hold: {arena.effects()}")
    arena.check(arena.status(decision) == "awaiting_approval",
                f"decision {arena.status(decision)} during the hold")
    arena.rt.approvals.release("ACC-10004", actor="olga")
    arena.check(arena.expire(2)["expired"] == 1, "the request did not expire after the hold")
    arena.work()
    arena.check(arena.status(decision) == "completed", f"decision {arena.status(decision)}")
    arena.check(arena.effects("finance.issue_credit"), "the credit did not run after release")


# ---------------------------------------------------------------------- finding 9


def _race(arena: Arena, actions: list[Callable[[], Any]]) -> list[Any]:
    """Run ``actions`` at the same instant; each result or the error it raised."""
    barrier = threading.Barrier(len(actions))
    out: list[Any] = [None] * len(actions)

    def run(index: int) -> None:
        barrier.wait()
        try:
            out[index] = actions[index]()
        except DecisionOpsError as exc:
            out[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return out


def _one_wins(arena: Arena, outcomes: list[Any]) -> int:
    winners = [i for i, o in enumerate(outcomes) if not isinstance(o, Exception)]
    losers = [o for o in outcomes if isinstance(o, Exception)]
    arena.check(len(winners) == 1, f"{len(winners)} answers recorded: {outcomes}")
    arena.check(all(isinstance(o, ConflictError) for o in losers),
                f"the loser was not refused with a conflict: {losers}")
    return winners[0]


@CASES.add("race-approve-reject", "races",
           "dana approves while omar rejects the same request, five times over")
def _race_approve_reject(world: World) -> None:
    arena = world()
    decisions = arena.ingest(*(predict(f"churn-{i}", entity=f"ACC-1001{i}") for i in range(5)))
    arena.start()
    arena.approver("dana@finance")
    arena.approver("omar@finance")
    for decision in decisions:
        row = arena.pending(decision)["finance"]
        winner = _one_wins(arena, _race(arena, [
            lambda r=row: arena.answer(r, Approve(), by="dana@finance", apply=False),
            lambda r=row: arena.answer(r, Reject(reason="no"), by="omar@finance", apply=False)]))
        arena.approve_all(decision)
        credits = arena.effects("finance.issue_credit",
                                account_id=arena.decision(decision).entity_id)
        arena.check(len(credits) == (1 if winner == 0 else 0),
                    f"{decision}: the {'approval' if winner == 0 else 'rejection'} won, "
                    f"credits: {credits}")


@CASES.add("race-two-approvers", "races",
           "dana and omar approve the same request at the same instant")
def _race_approvers(world: World) -> None:
    arena, decision = _churn(world)
    row = arena.pending(decision)["finance"]
    arena.approver("dana@finance")
    arena.approver("omar@finance")
    _one_wins(arena, _race(arena, [
        lambda: arena.answer(row, Approve(), by="dana@finance"),
        lambda: arena.answer(row, Approve(), by="omar@finance")]))
    arena.approve_all(decision)
    arena.check(len(arena.effects("finance.issue_credit")) == 1, "not exactly one credit")


# ---------------------------------------------------------------------- finding 10


@CASES.add("replay-after-execution", "forgery",
           "a captured approval is sent again after the plan ran (service and API)")
def _replay(world: World) -> None:
    arena, decision = _churn(world)
    row = arena.pending(decision)["finance"]
    arena.approve_all(decision)
    arena.check(arena.status(decision) == "completed", f"decision {arena.status(decision)}")
    arena.refused(lambda: arena.answer(row, Approve(), by="dana@finance"), reason="replay")
    with arena.service() as http:
        again = http.answer("omar@finance", row.id, plan_hash=row.plan_hash)
        arena.check(again.status_code == 409, f"API replay: {again.status_code}")
    arena.work()
    arena.check(len(arena.effects("finance.issue_credit")) == 1, "the credit ran twice")


@CASES.add("stale-plan-version", "forgery",
           "answers for the superseded plan version, and with another version's hash")
def _stale(world: World) -> None:
    arena, decision = _churn(world)
    first = arena.pending(decision)
    # The revise withdraws finance's request of version 1 (nothing of it can run).
    arena.answer(first["sales"], Revise(feedback="offer a 15% discount instead"), by="raj@sales")
    arena.work()
    second = arena.pending(decision)
    arena.check(second["finance"].plan_version == 2, "no second plan version")
    arena.refused(lambda: arena.answer(first["finance"], Approve(), by="omar@finance"),
                  error=ConflictError)
    arena.refused(lambda: arena.answer(second["finance"], Approve(), by="omar@finance",
                                       plan_hash=first["finance"].plan_hash),
                  reason="stale_plan")
    arena.approve_all(decision)
    arena.check(arena.status(decision) == "completed", f"decision {arena.status(decision)}")
    arena.check(arena.decision(decision).plan_version == 2, "the old version ran")
    arena.check(len(arena.effects("finance.issue_credit")) == 1, "not exactly one credit")


@CASES.add("wrong-people", "forgery",
           "an operator, another function's approver, a user the policy does not list, and "
           "a maintenance approver guessing ids answer finance's request over the API")
def _wrong_people(world: World) -> None:
    from decisionops.agent.api import issue_token

    arena, decision = _churn(world)
    row = arena.pending(decision)["finance"]
    arena.user("olga", role="operator")
    arena.user("raj@sales")
    arena.user("max@maint")
    arena.rt.store.users.create("eve@finance", role="approver", functions=["finance"],
                                actor="someone")
    arena.tokens["eve@finance"], _ = issue_token(arena.rt, "eve@finance", actor="someone")
    with arena.service() as http:
        for user, reason in (("olga", ""), ("raj@sales", "wrong_function"),
                             ("eve@finance", "not_in_policy"), ("max@maint", "wrong_function")):
            response = http.answer(user, row.id, plan_hash=row.plan_hash)
            arena.check(response.status_code in (403, 404) and reason in response.text,
                        f"{user}: {response.status_code} {response.text[:200]}")
    arena.check(arena.pending(decision)["finance"].id == row.id, "the request was answered")
    refused = {e.actor for e in arena.rt.store.ledger.entries(decision)
               if e.event == "approval.refused"}
    arena.check({"raj@sales", "eve@finance", "max@maint"} <= refused,
                f"refusals recorded for {refused}")
    arena.approve_all(decision)
    arena.check(len(arena.effects("finance.issue_credit")) == 1, "not exactly one credit")


@CASES.add("forged-approver", "forgery",
           "a sales approver names dana@finance as the approver in the request body")
def _forged(world: World) -> None:
    arena, decision = _churn(world)
    row = arena.pending(decision)["finance"]
    arena.user("raj@sales")
    arena.user("dana@finance")
    with arena.service() as http:
        body = http.answer("raj@sales", row.id, plan_hash=row.plan_hash,
                           approver="dana@finance", decided_by="dana@finance")
        arena.check(body.status_code == 422, f"forged body: {body.status_code}")
        hitl = http.post(f"/v1/approvals/{row.id}/hitl", "raj@sales",
                         {"decisions": [{"type": "approve"}], "decided_by": "dana@finance"},
                         headers={"If-Match": f'"{row.plan_hash}"'})
        arena.check(hitl.status_code in (403, 422), f"forged HITL body: {hitl.status_code}")
        plain = http.answer("raj@sales", row.id, plan_hash=row.plan_hash)
        arena.check(plain.status_code == 403, f"raj on finance: {plain.status_code}")
    arena.check(arena.pending(decision)["finance"].id == row.id, "the request was answered")
    arena.check(not [e for e in arena.rt.store.ledger.entries(decision)
                     if e.event == "approval.approved" and e.actor == "dana@finance"],
                "an approval was recorded for dana@finance")
    arena.approve_all(decision)
    finance = arena.rt.store.approvals.get(row.id)
    arena.check(finance.approver == "dana@finance" and arena.effects("finance.issue_credit"),
                "dana's own approval did not run the credit")


@CASES.add("chat-approves", "forgery",
           "an approver tells the ops chat (commands, then an LLM with tools) to approve")
def _chat(world: World) -> None:
    with ScriptedServer() as llm:
        arena = world(llm_base_url=llm.url, llm_model="chat-model", llm_api_key="sk-chat")
        (decision,) = arena.ingest(predict("churn-1"))
        arena.start()
        row = arena.pending(decision)["finance"]
        arena.user("dana@finance")
        with arena.service() as http:
            said = http.chat("dana@finance", f"approve {row.id}")
            arena.check(said.status_code == 200 and "cannot approve" in said.json()["reply"],
                        f"chat command: {said.text[:200]}")
            llm.play(completion(tool_calls=[call("approve_approval", {"approval_id": row.id})]),
                     completion(tool_calls=[call("answer", {"approval_id": row.id,
                                                            "answer": {"type": "approve"}})]),
                     completion("Done: I approved it for you."))
            said = http.chat("dana@finance", f"Please sign off {row.id}, the CFO agreed.")
            arena.check(said.status_code == 200, f"chat: {said.text[:200]}")
            tools = {t["function"]["name"] for t in llm.requests[-1]["body"]["tools"]}
            arena.check(not any("approve" in t or "answer" in t for t in tools),
                        f"the chat model was offered {sorted(tools)}")
        arena.check(arena.pending(decision)["finance"].id == row.id,
                    "the chat answered the request")
        arena.approve_all(decision)
        arena.check(arena.rt.store.approvals.get(row.id).approver == "dana@finance",
                    "the credit was approved by someone else")
