"""``langgraph dev`` (langgraph-cli[inmem]) serves ``langgraph.json``'s decision graph
with its blocking-call detection on (no ``--allow-blocking``), driven by the real
``langgraph_sdk`` client: the run stops at the approval interrupts in Agent Inbox's
``HumanInterrupt`` shape; a bad resume or a resume by the wrong approver is refused with
what to send and the decision keeps waiting; good answers go through the approval
service and the plan executes.

langgraph-api pins a jsonschema-rs older than schemathesis (a dev dependency) accepts, so
the CLI lives in its own virtualenv: ``.venv-studio`` (made by ``.ci/run``:
``pip install -e '.[studio]'``) or the ``langgraph`` executable named by
``DECISIONOPS_LANGGRAPH_CLI``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from decisionops.agent.api._users import add_user
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from tests.api.conftest import churn_record

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _cli() -> str:
    named = os.environ.get("DECISIONOPS_LANGGRAPH_CLI")
    path = Path(named) if named else ROOT / ".venv-studio" / "bin" / "langgraph"
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"langgraph CLI not found at {path} (.ci/run makes .venv-studio)")
        pytest.skip(f"langgraph-cli[inmem] not installed at {path} (pip install -e '.[studio]' "
                    "in .venv-studio)")
    return str(path)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], Path]]:
    tmp_path = tmp_path_factory.mktemp("langgraph-dev")
    home = tmp_path / "home"
    with Runtime(Settings(home=home), actor="test") as rt:
        rt.enterprise.seed()
        tokens = {name: add_user(rt, name, role="approver", functions=[f], actor="test")[0]
                  for name, f in (("raj", "sales"), ("dana", "finance"))}
    port = _free_port()
    env = {**os.environ, "DECISIONOPS_HOME": str(home), "LANGSMITH_TRACING": "false",
           "LANGGRAPH_CLI_NO_ANALYTICS": "1"}
    log = (tmp_path / "langgraph-dev.log").open("wb")
    proc = subprocess.Popen([_cli(), "dev", "--no-browser", "--no-reload", "--port", str(port),
                             "--config", str(ROOT / "langgraph.json")],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("langgraph dev did not start:\n"
                                   + (tmp_path / "langgraph-dev.log").read_text()[-4000:])
            time.sleep(0.3)
        yield url, tokens, tmp_path / "langgraph-dev.log"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _by_function(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["value"]["function"]: i for i in result.get("__interrupt__", [])}


async def _drive(url: str, tokens: dict[str, str]) -> str:
    raj = get_client(url=url, api_key=tokens["raj"])
    dana = get_client(url=url, api_key=tokens["dana"])
    assert [a["graph_id"] for a in await raj.assistants.search(graph_id="decision")] == ["decision"]
    thread = await raj.threads.create()
    tid = thread["thread_id"]
    first = await raj.runs.wait(tid, "decision", input={"prediction": churn_record("lgdev-1")})
    asks = _by_function(first)
    assert set(asks) == {"sales", "finance"}
    for function, intr in asks.items():
        value = intr["value"]
        assert set(value["config"]) == {"allow_accept", "allow_edit", "allow_respond",
                                        "allow_ignore"}
        assert value["action_request"]["action"] and value["action_request"]["args"]
        assert value["description"] and value["function"] == function
        assert value["approval_id"] and value["decision_id"] and value["plan_hash"]

    # a resume that is not a HumanResponse: refused, asked again, saying what to send
    bad = await raj.runs.wait(tid, "decision",
                              command={"resume": {asks["sales"]["id"]: {"approve": True}}})
    again = _by_function(bad)
    assert set(again) == {"sales", "finance"}
    assert "type" in again["sales"]["value"]["error"]
    assert '"type": "accept"' in again["sales"]["value"]["error"]
    assert (await raj.threads.get(tid))["status"] == "interrupted"

    # the wrong function's approver: refused like on any channel (and never replayed
    # as the next user's answer when raj's resume re-runs the node)
    wrong = await dana.runs.wait(tid, "decision", command={
        "resume": {again["sales"]["id"]: {"type": "ignore", "args": "not ours"}}})
    again = _by_function(wrong)
    assert "dana approves finance, not sales" in again["sales"]["value"]["error"]

    # the right approvers answer: the plan runs to its end
    await raj.runs.wait(tid, "decision", command={
        "resume": {again["sales"]["id"]: [{"type": "accept", "args": None}]}})
    state = await dana.threads.get_state(tid)
    (left,) = [i for i in state["interrupts"]]
    assert left["value"]["function"] == "finance"
    done = await dana.runs.wait(tid, "decision", command={
        "resume": {left["id"]: {"type": "accept", "args": None}}})
    assert not done.get("__interrupt__")
    assert (await dana.threads.get(tid))["status"] == "idle"
    assert done["outcome"]
    return str(again["sales"]["value"]["approval_id"])


def test_langgraph_dev_runs_to_the_interrupt_and_on_through_answers(
        server: tuple[str, dict[str, str], Path]) -> None:
    url, tokens, log = server
    sales = asyncio.run(_drive(url, tokens))
    with Runtime(Settings(home=log.parent / "home"), actor="check") as rt:
        row = rt.store.approvals.get(sales)
        assert (row.status, row.approver) == ("approved", "raj@sales")
    text = log.read_text()
    assert "BlockingError" not in text and "Blocking call" not in text


def test_langgraph_dev_refuses_a_client_without_our_token(
        server: tuple[str, dict[str, str], Path]) -> None:
    url, _tokens, _log = server
    response = httpx.post(f"{url}/assistants/search", json={}, timeout=10,
                          headers={"x-api-key": "dops_not-a-token"})
    assert response.status_code == 401
