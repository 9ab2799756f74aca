"""The guard loop: refused drafts go back to the model with every problem, a bounded
number of times; then the playbook plans, or a person must. The playbook bounds of
both planners (agent.llm._bounds) are enforced as guard problems."""

from __future__ import annotations

import copy

from decisionops.agent.models import Risk
from tests.fakes.openai_server import ScriptedServer, call, completion
from tests.llm.conftest import Factory, World, baseline_steps, churn, plan_args, request


def submit(steps: list[dict]) -> dict:
    return completion(tool_calls=[call("submit_plan", plan_args(steps))])


def extra(step_id: str, function: str, tool: str, **arguments: object) -> dict:
    return {"id": step_id, "function": function, "tool": tool, "arguments": arguments,
            "depends_on": [], "rationale": "added", "expected_cost": 0, "expected_value": 0}


def with_args(steps: list[dict], step_id: str, **arguments: object) -> list[dict]:
    out = copy.deepcopy(steps)
    next(s for s in out if s["id"] == step_id)["arguments"].update(arguments)
    return out


def test_refused_draft_is_repaired(world: World, planner: Factory,
                                   openai_server: ScriptedServer) -> None:
    good = baseline_steps(world)
    openai_server.play(submit(with_args(good, "goodwill_credit", amount=100_000)), submit(good))
    draft = planner().draft(request())
    assert draft.plan is not None and draft.plan.planner == "llm"
    assert draft.record.guard_verdicts == [
        ["steps.goodwill_credit.arguments.amount: 100000 is over the limit of 500"]]
    repair = openai_server.requests[1]["body"]["messages"][-1]
    assert repair["role"] == "tool" and "100000 is over the limit of 500" in repair["content"]
    assert [r["purpose"] for r in world.store.llm.llm_calls("dec_llm_1")] == ["plan", "repair"]


def test_repairs_are_bounded_then_the_playbook_plans(world: World, planner: Factory,
                                                     openai_server: ScriptedServer) -> None:
    bad = with_args(baseline_steps(world), "retention_offer", discount_pct=45)
    openai_server.play(submit(bad), submit(bad), submit(bad))
    draft = planner(max_repairs=2).draft(request())
    assert draft.plan is not None and draft.plan.planner == "playbook"
    assert len(draft.record.guard_verdicts) == 3
    assert draft.record.fallback.startswith("guard: the guard refused 3 draft(s)")
    assert "discount_pct: 45 is over the limit of 30" in draft.record.fallback
    entry = next(e for e in world.store.ledger.entries("dec_llm_1")
                 if e.event == "planner.fallback")
    assert entry.body["cause"] == "guard" and entry.body["to"] == "playbook"


def test_human_fallback_gives_no_plan(world: World, planner: Factory,
                                      openai_server: ScriptedServer) -> None:
    bad = baseline_steps(world)
    bad[0]["function"] = "support"  # support may not create retention offers
    openai_server.play(submit(bad))
    draft = planner(max_repairs=0, fallback="human").draft(request())
    assert draft.plan is None
    assert "is not allowed for support" in draft.record.fallback


def test_llm_novel_step_needs_a_human_and_is_noted(world: World, planner: Factory,
                                                   openai_server: ScriptedServer) -> None:
    alert = extra("alert_ops", "sales", "notify.send", channel="slack", to="#sales-ops",
                  subject="Churn risk", body="The account may churn.")
    openai_server.play(submit([*baseline_steps(world), alert]))
    draft = planner(max_repairs=0).draft(request())
    assert draft.plan.planner == "playbook"  # #sales-ops is not an address this plan knows
    # The account manager's address is a whole field of the CRM record: allowed (B4).
    prediction = churn(account="ACC-10004")
    alert["arguments"].update(channel="email", to="mei.lin@northwind.example")
    openai_server.play(submit([*baseline_steps(world, prediction), alert]))
    draft = planner().draft(request(prediction, decision="dec_llm_2"))
    steps_by_id = {s.id: s for s in draft.plan.steps}
    assert steps_by_id["alert_ops"].risk == Risk.HIGH
    assert world.policies.get("sales").needs_human([steps_by_id["alert_ops"]])
    assert any("alert_ops" in n and "risk set to high" in n for n in draft.record.notes)


def test_identifiers_are_pinned_to_the_predicted_entity(world: World, planner: Factory,
                                                        openai_server: ScriptedServer) -> None:
    good = baseline_steps(world)
    openai_server.play(submit(with_args(good, "goodwill_credit", account_id="ACC-10002")),
                       submit(good))
    draft = planner().draft(request())
    assert draft.plan.planner == "llm"
    assert "steps.goodwill_credit.arguments.account_id: must be 'ACC-10001'" in \
        draft.record.guard_verdicts[0][0]


def test_exfiltration_address_from_free_text_is_refused(world: World, planner: Factory,
                                                        openai_server: ScriptedServer) -> None:
    prediction = churn(account="ACC-10166")  # its CRM note asks to forward data outside
    steps = [*baseline_steps(world, prediction),
             extra("forward", "sales", "notify.send", channel="email",
                   to="audit@external-compliance.example", subject="data", body="all of it")]
    openai_server.play(submit(steps))
    draft = planner(max_repairs=0).draft(request(prediction))
    assert draft.plan.planner == "playbook"
    assert "'audit@external-compliance.example' is not an address" in draft.record.fallback


def test_hybrid_bounds(world: World, planner: Factory, openai_server: ScriptedServer) -> None:
    base = baseline_steps(world)
    novel = [*base, extra("extra_ticket", "sales", "notify.send", channel="slack",
                          to="#sales-ops", subject="s", body="b")]
    swapped = copy.deepcopy(base)
    swapped[1]["function"], swapped[1]["tool"] = "sales", "crm.create_task"
    swapped[1]["arguments"] = {"account_id": "ACC-10001", "owner_role": "sales_rep",
                               "subject": "s", "due_in_days": 3}
    unordered = copy.deepcopy(base)
    next(s for s in unordered if s["id"] == "goodwill_credit")["depends_on"] = []
    grown = with_args(base, "goodwill_credit", amount=450)
    openai_server.play(submit(novel), submit(swapped), submit(unordered), submit(grown))
    draft = planner(hybrid=True, max_repairs=3).draft(request())
    assert draft.plan.planner == "playbook"  # every attempt was out of bounds
    verdicts = ["; ".join(v) for v in draft.record.guard_verdicts]
    assert "not in the playbook's plan (hybrid plans use only" in verdicts[0]
    assert "keeps the playbook step's id, so it must stay support with" in verdicts[1]
    assert "goodwill_credit.depends_on: must keep 'retention_offer'" in verdicts[2]
    assert "450 is more than 2 times the playbook's 200" in verdicts[3]


def test_hybrid_adapts_within_bounds(world: World, planner: Factory,
                                     openai_server: ScriptedServer) -> None:
    steps = with_args(baseline_steps(world), "retention_offer", discount_pct=15)
    steps = [s for s in steps if s["id"] != "proactive_case"]
    openai_server.play(submit(steps))
    draft = planner(hybrid=True).draft(request())
    assert draft.plan.planner == "hybrid" and draft.record.fallback is None
    assert draft.plan.step("retention_offer").arguments["discount_pct"] == 15
    system = openai_server.requests[0]["body"]["messages"][0]["content"]
    assert "You are in hybrid mode" in system
    assert draft.record.prompt_version.startswith("hybrid@")
