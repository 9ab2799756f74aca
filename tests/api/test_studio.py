"""``langgraph.json`` loads the decision graph for Studio / ``langgraph dev``, and the
graph runs to its approval interrupts over an embedded runtime."""

from __future__ import annotations

import asyncio
import importlib
import json
from pathlib import Path

from langgraph.checkpoint.memory import InMemorySaver

from agent.runtime import Runtime
from agent.settings import Settings
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
