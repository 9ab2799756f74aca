"""Function tools and JSON-schema output both work; ``auto`` switches on a 400
"not supported" and remembers the switch for later drafts."""

from __future__ import annotations

import json

from tests.fakes.openai_server import ScriptedServer, call, completion, error
from tests.llm.conftest import Factory, World, baseline_steps, churn, plan_args, request


def test_json_schema_mode(world: World, planner: Factory, openai_server: ScriptedServer) -> None:
    body = json.dumps(plan_args(baseline_steps(world)))
    openai_server.play(completion(body, expect={"tools": False, "response_format": True}))
    draft = planner(mode="json").draft(request())
    assert draft.plan is not None and draft.record.fallback is None
    sent = openai_server.requests[0]["body"]
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"]["required"] == ["rationale", "steps"]
    assert "crm.get_account" in sent["messages"][1]["content"]  # context prefetched as data


def test_json_mode_repairs_bad_json_and_refuses_nan(world: World, planner: Factory,
                                                    openai_server: ScriptedServer) -> None:
    steps = baseline_steps(world)
    steps[0]["expected_cost"] = "NaN"
    nan_body = json.dumps(plan_args(steps)).replace('"NaN"', "NaN")
    openai_server.play(completion("Sure! Here is the plan: {"), completion(nan_body),
                       completion("```json\n" + json.dumps(plan_args(baseline_steps(world)))
                                  + "\n```"))
    draft = planner(mode="json", max_retries=2).draft(request())
    assert draft.plan is not None and draft.record.fallback is None
    feedback = [m["content"] for m in openai_server.requests[-1]["body"]["messages"]
                if m["role"] == "user"][1:]
    assert "not valid JSON" in feedback[0] and "NaN is not a number" in feedback[1]


def test_auto_switches_to_json_and_remembers(world: World, planner: Factory,
                                             openai_server: ScriptedServer) -> None:
    other = churn("churn-llm-2", account="ACC-10003")
    openai_server.play(
        error(400, "tools are not supported by this model"),
        completion(json.dumps(plan_args(baseline_steps(world))),
                   expect={"tools": False, "response_format": True}),
        completion(json.dumps(plan_args(baseline_steps(world, other))),
                   expect={"tools": False, "response_format": True}))
    p = planner(mode="auto")
    first = p.draft(request())
    assert first.plan is not None and first.record.fallback is None
    assert first.record.notes == ["tools output is not supported by the endpoint"]
    second = p.draft(request(other, decision="dec_llm_2"))
    assert second.plan is not None and second.record.notes == []  # json first now
    assert [r["outcome"] for r in world.store.llm.llm_calls("dec_llm_1")] == ["unsupported", "ok"]


def test_auto_switches_to_tools_when_json_is_refused(world: World, planner: Factory,
                                                     openai_server: ScriptedServer) -> None:
    p = planner(mode="auto")
    p._modes = ("json", "tools")  # as after an earlier switch
    openai_server.play(
        error(400, "response_format json_schema is unsupported"),
        completion(tool_calls=[call("submit_plan", plan_args(baseline_steps(world)))],
                   expect={"tools": True, "response_format": False}))
    assert p.draft(request()).plan is not None


def test_neither_mode_supported_falls_back(world: World, planner: Factory,
                                           openai_server: ScriptedServer) -> None:
    openai_server.play(error(400, "tools not supported"), error(400, "json_schema not supported"))
    draft = planner(mode="auto").draft(request())
    assert draft.plan is not None and draft.plan.planner == "playbook"
    assert draft.record.fallback.startswith("llm_mode_unsupported:")


def test_explicit_tools_mode_does_not_switch(world: World, planner: Factory,
                                             openai_server: ScriptedServer) -> None:
    openai_server.play(error(400, "tools not supported"))
    draft = planner(mode="tools").draft(request())
    assert draft.record.fallback.startswith("llm_mode_unsupported:")
    assert len(openai_server.requests) == 1
