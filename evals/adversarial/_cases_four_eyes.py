"""Finding 2: four-eyes. Under ``four_eyes: true`` (finance here) whoever requested a
plan version (submitted the prediction, or asked for the revision that produced it) or
proposed an edit to a request may not approve it, in any channel: the approval service
in process, the HTTP API, the human-in-the-loop endpoint, the web inbox form and the
``decisionops`` command."""

from __future__ import annotations

from typing import Any

from decisionops.agent.api._users import issue_token
from decisionops.agent.errors import InvalidInputError
from decisionops.agent.models import Approve, Revise
from decisionops.evals.adversarial._arena import Arena, predict
from decisionops.evals.adversarial._suite import CaseList, World

__all__ = ["CASES"]

CASES = CaseList()


def _four_eyes(functions: dict[str, Any]) -> None:
    functions["finance"]["four_eyes"] = True


def _arena(world: World, *, requester: str = "feeder") -> tuple[Arena, str]:
    arena = world(functions=_four_eyes)
    (decision,) = arena.ingest(predict("churn-1"), actor=requester)
    arena.start()
    for name in ("dana@finance", "omar@finance", "raj@sales"):
        arena.user(name)
    return arena, decision


def _finish(arena: Arena, decision: str, *, approver: str, amount: float = 200) -> None:
    """The rest of the plan approved by others; the credit ran, approved by ``approver``."""
    arena.approve_all(decision)
    arena.check(arena.status(decision) == "completed", f"decision {arena.status(decision)}")
    credits = arena.effects("finance.issue_credit")
    arena.check([c["amount"] for c in credits] == [amount], f"credits: {credits}")
    finance = [a for a in arena.rt.store.approvals.list(decision_id=decision)
               if a.function == "finance" and a.status.value in ("approved", "edited")]
    arena.check(finance and finance[-1].approver == approver,
                f"finance approved by {finance[-1].approver if finance else None}, "
                f"expected {approver}")


@CASES.add("four-eyes-requester", "four-eyes",
           "the approver who submitted the prediction approves its plan (service)")
def _requester(world: World) -> None:
    arena, decision = _arena(world, requester="dana@finance")
    row = arena.pending(decision)["finance"]
    arena.refused(lambda: arena.answer(row, Approve(), by="dana@finance"), reason="four_eyes")
    arena.answer(row, Approve(), by="omar@finance")
    _finish(arena, decision, approver="omar@finance")


@CASES.add("four-eyes-alias", "four-eyes",
           "an admin account 'dana' submits the prediction; approver 'dana@finance' approves")
def _alias(world: World) -> None:
    arena = world(functions=_four_eyes)
    arena.user("dana", role="admin")
    # One person, one name: registering the second of the two is refused ...
    try:
        arena.user("dana@finance")
        arena.fail("'dana@finance' was registered beside 'dana' (one policy identity)")
    except InvalidInputError:
        pass
    # ... but a data folder from before that rule may hold both: four-eyes still
    # counts them as one person.
    arena.rt.store.users.create("dana@finance", role="approver", functions=["finance"],
                                actor="arena")
    arena.tokens["dana@finance"], _ = issue_token(arena.rt, "dana@finance", actor="arena")
    arena.user("omar@finance")
    record = predict("churn-1").model_dump(mode="json")
    with arena.service() as http:
        ingested = http.post("/v1/predictions", "dana", {"predictions": [record]})
        arena.check(ingested.status_code == 200, f"ingest: {ingested.text[:200]}")
        (decision,) = arena.rt.decision_ids(["churn-1"])
        arena.start()
        row = arena.pending(decision)["finance"]
        own = http.answer("dana@finance", row.id, plan_hash=row.plan_hash)
        if own.status_code == 200:
            # Accepted: let the plan run, so the audit judges what the hole lets through.
            arena.approve_all(decision)
            arena.fail("dana@finance approved the plan version that 'dana' requested (one "
                       "policy identity)")
        arena.check(own.status_code == 403 and "four eyes" in own.text,
                    f"the requester's approval: {own.status_code} {own.text[:200]}")
        other = http.answer("omar@finance", row.id, plan_hash=row.plan_hash)
        arena.check(other.status_code == 200, f"the second approver: {other.text[:200]}")
    _finish(arena, decision, approver="omar@finance")


@CASES.add("four-eyes-editor-api", "four-eyes",
           "an approver edits over the HTTP API, then approves their own edit")
def _editor_api(world: World) -> None:
    arena, decision = _arena(world)
    row = arena.pending(decision)["finance"]
    with arena.service() as http:
        proposed = http.answer("dana@finance", row.id, "edit", plan_hash=row.plan_hash,
                               arguments={"goodwill_credit": {"amount": 150}})
        arena.check(proposed.status_code == 200 and proposed.json()["status"] == "proposed",
                    f"the edit: {proposed.status_code} {proposed.text[:200]}")
        own = http.answer("dana@finance", row.id, plan_hash=row.plan_hash)
        arena.check(own.status_code == 403 and "four eyes" in own.text,
                    f"approving one's own edit: {own.status_code} {own.text[:200]}")
        # The second approver approves the proposal they read, by its hash; an approve
        # naming none would approve an edit unseen.
        blind = http.answer("omar@finance", row.id, plan_hash=row.plan_hash)
        arena.check(blind.status_code == 409 and "proposal_hash" in blind.text,
                    f"approving without naming the proposal: {blind.status_code}")
        seen = http.get(f"/v1/approvals/{row.id}", "omar@finance").json()["proposal"]
        other = http.answer("omar@finance", row.id, plan_hash=row.plan_hash,
                            proposal_hash=seen["hash"])
        arena.check(other.status_code == 200, f"the second approver: {other.text[:200]}")
    _finish(arena, decision, approver="omar@finance", amount=150)


@CASES.add("four-eyes-hitl", "four-eyes",
           "an approver edits through the HITL endpoint, then approves it there")
def _editor_hitl(world: World) -> None:
    arena, decision = _arena(world)
    row = arena.pending(decision)["finance"]
    step = row.request.steps[0]
    with arena.service() as http:
        edit = {"type": "edit", "edited_action": {"name": step.tool,
                                                  "args": {**step.arguments, "amount": 120}}}
        proposed = http.hitl("dana@finance", row.id, [edit])
        arena.check(proposed.status_code == 200 and proposed.json()["status"] == "proposed",
                    f"the HITL edit: {proposed.status_code} {proposed.text[:200]}")
        own = http.hitl("dana@finance", row.id, [{"type": "approve"}])
        arena.check(own.status_code == 403, f"approving one's own edit: {own.status_code}")
        other = http.hitl("omar@finance", row.id, [{"type": "approve"}])
        arena.check(other.status_code == 200, f"the second approver: {other.text[:200]}")
    _finish(arena, decision, approver="omar@finance", amount=120)


@CASES.add("four-eyes-web", "four-eyes",
           "the requester approves in the web inbox form")
def _requester_web(world: World) -> None:
    arena, decision = _arena(world, requester="dana@finance")
    row = arena.pending(decision)["finance"]
    with arena.service() as http:
        own = http.form("dana@finance", row.id, "approve")
        arena.check(own.status_code >= 400 and "four eyes" in own.text,
                    f"the requester's form: {own.status_code}")
        arena.check(arena.pending(decision)["finance"].id == row.id, "the request was answered")
        other = http.form("omar@finance", row.id, "approve")
        arena.check(other.status_code == 303, f"the second approver's form: {other.status_code}")
    _finish(arena, decision, approver="omar@finance")


@CASES.add("four-eyes-cli", "four-eyes",
           "the approver who asked for a revision approves the new version with decisionops")
def _reviser_cli(world: World) -> None:
    arena, decision = _arena(world)
    first = arena.pending(decision)["finance"]
    arena.answer(first, Revise(feedback="a credit of 120 please"), by="dana@finance")
    arena.answer(arena.pending(decision)["sales"], Approve(), by="raj@sales")  # the join
    arena.work()
    row = arena.pending(decision)["finance"]
    arena.check(row.plan_version == 2, f"no second plan version ({row.plan_version})")
    own = arena.cli("approvals", "approve", row.id, "--as", "dana@finance")
    arena.check(own.returncode == 2 and "four eyes" in own.stderr,
                f"the reviser's approval: exit {own.returncode} {own.stderr[-300:]}")
    arena.check(arena.pending(decision)["finance"].id == row.id, "the request was answered")
    arena.answer(row, Approve(), by="omar@finance")
    _finish(arena, decision, approver="omar@finance", amount=120)  # as revised
