"""S1/S2: the API key goes only into the Authorization header: never into a prompt, a
stored record, a call row, the ledger or an error; prompts carry no credentials."""

from __future__ import annotations

import json

from sqlalchemy import select

from decisionops.agent.store import _tables as t
from tests.fakes.openai_server import ScriptedServer, call, completion, error
from tests.llm.conftest import API_KEY, Factory, World, baseline_steps, plan_args, request


def test_the_key_never_leaves_the_header(world: World, planner: Factory,
                                         openai_server: ScriptedServer) -> None:
    bad = baseline_steps(world)
    bad[0]["arguments"]["discount_pct"] = 45
    openai_server.play(error(401, f"bad key {API_KEY}"))
    first = planner().draft(request())
    openai_server.play(completion(tool_calls=[call("submit_plan", plan_args(bad))]),
                       completion(tool_calls=[call("submit_plan",
                                                   plan_args(baseline_steps(world)))]))
    second = planner().draft(request(decision="dec_llm_2"))
    assert all(r["authorization"] for r in openai_server.requests)
    sinks = [json.dumps([r["body"] for r in openai_server.requests]),
             first.record.model_dump_json(), second.record.model_dump_json(),
             json.dumps(world.store.llm.llm_calls(), default=str),
             json.dumps([e.model_dump(mode="json") for e in world.store.ledger.entries()])]
    with world.store.reading() as conn:
        sinks.append(json.dumps([dict(r._mapping) for r in conn.execute(select(t.plan_cache))],
                                default=str))
    for sink in sinks:
        assert API_KEY not in sink
    assert "***" in first.record.fallback  # the endpoint echoed the key; we redacted it
    prompts = " ".join(m["content"] or "" for r in openai_server.requests
                       for m in r["body"]["messages"])
    for word in ("api_key", "password", "secret", "token="):
        assert word not in prompts.lower()
