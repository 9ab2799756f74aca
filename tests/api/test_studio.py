"""``langgraph.json`` loads the decision graph for Studio / ``langgraph dev``, and the
graph runs to its approval interrupts over an embedded runtime."""

from __future__ import annotations

import asyncio
import importlib
import json
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from tests.api.conftest import churn_record

ROOT = Path(__file__).resolve().parents[2]


def test_langgraph_json_names_a_graph_factory_that_runs(tmp_path: Path) -> None:
    config = json.loads((ROOT / "langgraph.json").read_text())
    target = config["graphs"]["decision"]
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    assert asyncio.iscoroutinefunction(getattr(module, attribute))  # built off the loop

    with Runtime(Settings(home=tmp_path / "home"), actor="studio-test") as rt:
        graph = module.build_studio_graph(rt, InMemorySaver())
        out = graph.invoke({"prediction": churn_record("studio-1")},
                           {"configurable": {"thread_id": "t1"}})
        requests = [i.value for i in out["__interrupt__"]]
        assert {r["function"] for r in requests} == {"sales", "finance"}
        assert all(r["plan_hash"] and r["request"]["steps"] for r in requests)
        assert all(set(r["config"]) == {"allow_accept", "allow_edit", "allow_respond",
                                        "allow_ignore"} and r["action_request"]["args"]
                   for r in requests)
        assert rt.enterprise.effects() == []  # nothing runs before approval


def test_the_graph_factory_never_blocks_the_event_loop(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``langgraph dev`` checks (blockbuster, as langgraph-runtime-inmem enables it):
    building the embedded runtime opens databases, so the factory does it off the loop."""
    from blockbuster import BlockBuster

    from decisionops.graphs import embedded as embedded_module
    from decisionops.graphs.studio import graph

    monkeypatch.setenv("DECISIONOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(embedded_module, "_RUNTIME", [])
    blockbuster = BlockBuster(excluded_modules=[])
    for name in ("os.stat", "os.listdir", "io.BufferedReader.read", "io.TextIOWrapper.read",
                 "threading.Lock.acquire"):  # what langgraph-runtime-inmem allows too
        blockbuster.functions.pop(name).deactivate()
    for name in [n for n in blockbuster.functions if n.startswith("os.path.")]:
        blockbuster.functions.pop(name).deactivate()

    async def load() -> object:
        blockbuster.activate()
        try:
            return await graph()
        finally:
            blockbuster.deactivate()

    try:
        compiled = asyncio.run(load())
        assert "decision" in compiled.get_graph().nodes
    finally:
        for runtime in embedded_module._RUNTIME:
            runtime.close()


def test_langgraph_dev_signs_in_only_tokens_that_may_read(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # An ingest token may not read decisions through the API; under `langgraph dev` it
    # must not read every thread's state (or start runs) either.
    from langgraph_sdk import Auth

    from decisionops.agent.api._users import add_user
    from decisionops.graphs import embedded as embedded_module
    from decisionops.graphs.studio_auth import authenticate

    with Runtime(Settings(home=tmp_path / "home"), actor="t") as rt:
        monkeypatch.setattr(embedded_module, "_RUNTIME", [rt])
        feeder, _ = add_user(rt, "feeder", role="ingest", actor="t")
        raj, _ = add_user(rt, "raj", role="approver", functions=["sales"], actor="t")
        with pytest.raises(Auth.exceptions.HTTPException) as refused:
            asyncio.run(authenticate({b"x-api-key": feeder.encode()}))
        assert refused.value.status_code == 403
        user = asyncio.run(authenticate({b"x-api-key": raj.encode()}))
        assert user["identity"] == "raj"
