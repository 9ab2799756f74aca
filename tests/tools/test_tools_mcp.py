"""MCP servers from ``decisionops.toml``: a real server (the ``mcp`` SDK), over stdio and
over streamable HTTP, provides a tool a function allow-lists and a playbook uses; every
approved step calls it exactly once with its idempotency key, and a re-run repeats
nothing. Sessions are reused and restarted when they die; a server that is down fails
the call as retryable."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from decisionops.agent.errors import ConfigError, ToolCallError
from decisionops.agent.models import Approve
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings, ToolServerConfig
from decisionops.agent.worker import Worker
from decisionops.tools._mcp import McpTools
from decisionops.tools.registry import ToolRegistry
from tests.graphs.conftest import churn
from tests.support import answer

pytestmark = pytest.mark.slow

SERVER = Path(__file__).parent / "servers" / "mcp_desk.py"

PLAYBOOK = {
    "name": "churn-retention", "kind": "churn", "version": 1,
    "description": "Open a desk case for an at-risk account.",
    "trigger": {"min_score": 0.5},
    "steps": [{"id": "desk_case", "function": "support", "tool": "desk.open_case",
               "risk": "medium", "rationale": "A named contact reviews the account.",
               "arguments": {"account_id": "{{ prediction.entity_id }}",
                             "summary": "Churn risk {{ '%.0f' % (score * 100) }}%"}}],
}


def _calls(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def calls_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "desk-calls.jsonl"
    monkeypatch.setenv("DESK_CALLS", str(path))
    monkeypatch.setenv("DESK_TOKEN_SECRET", "s3cret-desk")
    return path


@pytest.fixture
def http_server(http_process: tuple[str, subprocess.Popen[bytes]]) -> str:
    return http_process[0]


@pytest.fixture
def http_process(calls_file: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The desk server over streamable HTTP on a free local port (its URL and process)."""
    port = _free_port()
    process = subprocess.Popen([sys.executable, str(SERVER), "http", str(port)],
                               env={**os.environ, "DESK_CALLS": str(calls_file)})
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    yield url, process
    process.terminate()
    process.wait(10)


def _stdio_server() -> dict[str, Any]:
    return {"name": "desk", "transport": "stdio", "command": [sys.executable, str(SERVER)],
            "env": {"DESK_CALLS": "${DESK_CALLS}", "DESK_TOKEN": "${DESK_TOKEN_SECRET}"},
            "function": "support", "targets": {"open_case": ["account_id"]},
            "read_only": ["case_count"]}


def _http_server(url: str) -> dict[str, Any]:
    return {"name": "desk", "transport": "http", "url": url,
            "headers": {"Authorization": "Bearer ${DESK_TOKEN_SECRET}"},
            "function": "support", "targets": {"open_case": ["account_id"]},
            "read_only": ["case_count"]}


def _configure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: dict[str, Any],
               playbook: dict[str, Any] = PLAYBOOK) -> None:
    """decisionops.toml naming the server, a function allow-listing its tool and a
    playbook using it."""
    bundled = yaml.safe_load((resources.files("decisionops.agent") / "data" / "functions.yaml")
                             .read_text("utf-8"))
    bundled["functions"]["support"]["tools"].append("desk.open_case")
    (tmp_path / "functions.yaml").write_text(yaml.safe_dump(bundled))
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "churn.yaml").write_text(yaml.safe_dump(playbook))
    lines = [f'home = "{tmp_path / "home"}"', f'functions_file = "{tmp_path / "functions.yaml"}"',
             f'playbooks_dir = "{tmp_path / "playbooks"}"', "tool_backoff_seconds = 0.01",
             'tool_hosts = ["127.0.0.1"]', "",
             "[[tool_servers]]"]
    for key, value in server.items():
        if not isinstance(value, dict):
            lines.append(f"{key} = {json.dumps(value)}")
    for key, value in server.items():
        if isinstance(value, dict):
            lines.append(f"[tool_servers.{key}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in value.items()]
    config = tmp_path / "decisionops.toml"
    config.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("DECISIONOPS_CONFIG", str(config))


def _decide(rt: Runtime, accounts: list[str]) -> None:
    rt.ingest([churn(f"p-{i}", account=a, score=0.9) for i, a in enumerate(accounts)],
              source="test")
    worker = Worker(rt, poll_seconds=0.01)
    worker.tick()
    pending = rt.store.approvals.list(status="pending")
    assert {a.function for a in pending} == {"support"} and len(pending) == len(accounts)
    for approval in pending:
        answer(rt, approval.id, Approve(), approver_name="sam@support", apply=False)
    worker.tick()


def _exactly_once(rt: Runtime, calls_file: Path, accounts: list[str], *,
                  token: str | None) -> None:
    assert {d.status for d in rt.store.decisions.list()} == {"completed"}
    calls = _calls(calls_file)
    assert sorted(c["account_id"] for c in calls) == sorted(accounts)
    executed = {e.idempotency_key for d in rt.store.decisions.list()
                for e in rt.store.executions.list(d.id)}
    assert {c["idempotency_key"] for c in calls} == executed and len(executed) == len(accounts)
    if token is not None:  # the secret reached the server by reference, not by config
        assert {c["token"] for c in calls} == {token}


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_an_mcp_tool_runs_once_per_approved_step_and_a_rerun_repeats_nothing(
        transport: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls_file: Path,
        request: pytest.FixtureRequest) -> None:
    server = (_stdio_server() if transport == "stdio"
              else _http_server(request.getfixturevalue("http_server")))
    _configure(tmp_path, monkeypatch, server)
    with Runtime(Settings(), actor="worker-a") as rt:
        assert rt.tools.source_of("desk.open_case") == "mcp:desk"
        spec = rt.tools.spec("desk.open_case")
        assert spec.side_effects and spec.targets == ("account_id",)
        assert "idempotency_key" not in spec.parameters["properties"]
        assert not rt.tools.spec("desk.case_count").side_effects  # read_only
        assert rt.tools.spec("desk.case_count").risk.value == "low"
        accounts = [a["account_id"] for a in rt.enterprise.rows("accounts")[:2]]
        _decide(rt, accounts)
        _exactly_once(rt, calls_file, accounts,
                      token="s3cret-desk" if transport == "stdio" else None)
        Worker(rt, poll_seconds=0.01).tick()
        rt.ingest([churn(f"p-{i}", account=a, score=0.9) for i, a in enumerate(accounts)],
                  source="test")
        Worker(rt, poll_seconds=0.01).tick()
    with Runtime(Settings(), actor="worker-b") as again:  # a new process, new sessions
        Worker(again, poll_seconds=0.01).tick()
        _exactly_once(again, calls_file, accounts, token=None)


def test_a_result_holding_nan_is_recorded_as_text_and_the_decision_completes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls_file: Path) -> None:
    # Found in a black-box trial: a result with NaN could not be hashed, the leg failed
    # after the call took effect and was retried after every lease, forever, while the
    # decision stayed executing. Non-finite numbers are kept as text ("NaN", "Infinity").
    (step,) = PLAYBOOK["steps"]
    odd = {**PLAYBOOK, "steps": [{**step, "arguments": {**step["arguments"],
                                                        "summary": "odd case"}}]}
    _configure(tmp_path, monkeypatch, _stdio_server(), odd)
    with Runtime(Settings(), actor="worker-a") as rt:
        accounts = [rt.enterprise.rows("accounts")[0]["account_id"]]
        _decide(rt, accounts)
        _exactly_once(rt, calls_file, accounts, token="s3cret-desk")
        (decision,) = rt.store.decisions.list()
        (execution,) = rt.store.executions.list(decision.id)
        assert execution.receipt["scores"] == [
            1, {"confidence": "NaN", "reach": "Infinity"}], execution.receipt


def test_sessions_are_reused_and_restarted_when_the_server_dies(calls_file: Path) -> None:
    mcp = McpTools([ToolServerConfig.model_validate(_stdio_server())])
    try:
        registry = ToolRegistry(mcp.tools())
        server = mcp.servers["desk"]
        for n in range(3):
            registry.call("desk.open_case", {"account_id": "A-1", "summary": "s"},
                          idempotency_key=f"key-{n}")
        assert server.starts == 1  # one session for the listing and every call
        with pytest.raises(ToolCallError) as died:
            registry.call("desk.crash", {}, idempotency_key="key-crash")
        # desk.crash takes no idempotency key and the server died while it ran: whether
        # it acted is unknown, so it is not retried (a retry could act twice).
        assert not died.value.retryable
        receipt = registry.call("desk.open_case", {"account_id": "A-2", "summary": "s"},
                                idempotency_key="key-after")
        assert receipt.result == {"case_id": "CASE-ey-after", "account_id": "A-2"}
        assert server.starts == 2
        assert [c["idempotency_key"] for c in _calls(calls_file)] == [
            "key-0", "key-1", "key-2", "key-after"]
    finally:
        mcp.close()


def test_a_servers_read_only_hint_alone_does_not_make_a_tool_read_only(calls_file: Path) -> None:
    """Found by review: the server's readOnlyHint set risk low and no side effects,
    over the operator's configured risk; a server marking a write as a read would have it
    auto-approved as low risk and retried freely."""
    config = {k: v for k, v in _stdio_server().items() if k != "read_only"}
    mcp = McpTools([ToolServerConfig.model_validate(config)])
    try:
        spec = ToolRegistry(mcp.tools()).spec("desk.case_count")  # the server says: read
        assert spec.side_effects and spec.risk.value == "medium"
    finally:
        mcp.close()


def test_a_server_that_is_down_fails_the_call_as_retryable(
        http_process: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, process = http_process
    mcp = McpTools([ToolServerConfig.model_validate({**_http_server(url), "timeout_seconds": 5})])
    try:
        registry = ToolRegistry(mcp.tools())
        process.terminate()
        process.wait(10)
        for attempt in range(2):  # the live session breaks, then no new one can start
            with pytest.raises(ToolCallError) as down:
                registry.call("desk.open_case", {"account_id": "A-1", "summary": "s"},
                              idempotency_key=f"key-down-{attempt}")
            assert down.value.retryable and "unavailable" in down.value.message
    finally:
        mcp.close()


def test_a_server_that_cannot_be_listed_is_a_config_error_naming_it() -> None:
    config = ToolServerConfig.model_validate({
        "name": "ghost", "transport": "http", "url": f"http://127.0.0.1:{_free_port()}/mcp",
        "function": "support", "timeout_seconds": 3})
    mcp = McpTools([config])
    try:
        with pytest.raises(ConfigError) as exc:
            mcp.tools()
        assert "tool_servers[0] (ghost)" in exc.value.message
        # the transport's own words, not the class name of the task group's wrapper
        assert "All connection attempts failed" in exc.value.message
        assert "ExceptionGroup" not in exc.value.message
    finally:
        mcp.close()


@pytest.mark.parametrize(("command", "causes"), [
    ([sys.executable, "-c",
      "import sys; print('starting', file=sys.stderr); print('desk: no licence', "
      "file=sys.stderr); sys.exit(3)"],
     ["the process exited with status 3", "starting", "desk: no licence"]),
    ([sys.executable, "-c", "import sys; sys.exit(4)"], ["the process exited with status 4"]),
    (["/nonexistent/desk-server"], ["cannot start /nonexistent/desk-server",
                                    "No such file or directory"]),
])
def test_a_stdio_server_that_fails_at_start_is_named_with_its_cause(
        command: list[str], causes: list[str]) -> None:
    """Found by review: a server that exited at start was reported as "unavailable (list
    tools: ExceptionGroup)", the class name of the task group that wrapped the cause."""
    mcp = McpTools([ToolServerConfig.model_validate({
        "name": "desk", "transport": "stdio", "command": command, "function": "support",
        "timeout_seconds": 10})])
    try:
        with pytest.raises(ConfigError) as exc:
            mcp.tools()
        message = exc.value.message
        assert message.startswith("tool_servers[0] (desk): cannot list its tools:"), message
        for cause in causes:
            assert cause in message, message
        assert "ExceptionGroup" not in message
    finally:
        mcp.close()


def _desk_toml(command: list[str], extra: str = "") -> str:
    return ("[[tool_servers]]\n"
            'name = "desk"\ntransport = "stdio"\nfunction = "support"\n'
            f"command = {json.dumps(command)}\n{extra}"
            'env = { DESK_CALLS = "${DESK_CALLS}" }\n')


def _open_a_case(settings: Settings, key: str) -> dict[str, Any]:
    mcp = McpTools(settings.tool_servers)
    try:
        registry = ToolRegistry(mcp.tools())
        return registry.call("desk.open_case", {"account_id": "A-1", "summary": "s"},
                             idempotency_key=key).result
    finally:
        mcp.close()


def test_a_stdio_server_starts_in_the_config_files_folder(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls_file: Path) -> None:
    """Found by review: ``command = ["python", "desk_server.py"]`` beside the config file
    worked only when decisionops ran in that folder (``can't open file
    '/elsewhere/desk_server.py'``), unlike the file's other relative paths."""
    folder = tmp_path / "config"
    folder.mkdir()
    shutil.copyfile(SERVER, folder / "desk_server.py")
    (folder / "decisionops.toml").write_text(_desk_toml([sys.executable, "desk_server.py"]))
    monkeypatch.setenv("DECISIONOPS_CONFIG", str(folder / "decisionops.toml"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = Settings()
    assert _open_a_case(settings, "key-relative") == {"case_id": "CASE-relative",
                                                      "account_id": "A-1"}
    assert [c["idempotency_key"] for c in _calls(calls_file)] == ["key-relative"]
    assert settings.tool_servers[0].cwd == folder.resolve()


def test_a_stdio_servers_cwd_is_read_from_the_config_files_folder(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls_file: Path) -> None:
    folder = tmp_path / "config"
    (folder / "servers").mkdir(parents=True)
    shutil.copyfile(SERVER, folder / "servers" / "desk_server.py")
    (folder / "decisionops.toml").write_text(
        _desk_toml([sys.executable, "desk_server.py"], extra='cwd = "servers"\n'))
    monkeypatch.setenv("DECISIONOPS_CONFIG", str(folder / "decisionops.toml"))
    settings = Settings()
    assert settings.tool_servers[0].cwd == folder.resolve() / "servers"
    assert _open_a_case(settings, "key-servers")["case_id"] == "CASE--servers"


def test_without_a_config_file_a_stdio_server_starts_in_the_working_directory(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls_file: Path) -> None:
    """Settings from the environment alone have no folder of their own: relative paths
    in a command stay relative to the directory decisionops runs in (``home`` is
    ``tmp_path``)."""
    shutil.copyfile(SERVER, tmp_path / "desk_server.py")
    monkeypatch.setenv("DECISIONOPS_TOOL_SERVERS", json.dumps([{
        "name": "desk", "transport": "stdio", "function": "support",
        "command": [sys.executable, "desk_server.py"],
        "env": {"DESK_CALLS": "${DESK_CALLS}"}}]))
    settings = Settings()
    assert _open_a_case(settings, "key-environ")["case_id"] == "CASE--environ"
    assert settings.tool_servers[0].cwd is None


@pytest.mark.parametrize(("config", "key"), [
    ({"transport": "stdio"}, "command"),
    ({"transport": "http"}, "url"),
    ({"transport": "http", "url": "ftp://x"}, "url"),
    ({"transport": "http", "url": "http://x/mcp", "headers": {"Authorization": "Bearer abc"}},
     "headers.Authorization"),
    ({"transport": "stdio", "command": ["x"], "env": {"API_TOKEN": "abc"}}, "env.API_TOKEN"),
    ({"transport": "sse", "url": "http://x"}, "transport"),
    ({"transport": "http", "url": "http://x/mcp", "cwd": "servers"}, "cwd"),
])
def test_bad_server_config_names_the_key(config: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError) as exc:
        ToolServerConfig.model_validate({"name": "desk", "function": "support", **config})
    assert key in str(exc.value)


def test_an_http_server_on_an_internal_address_needs_tool_hosts(http_server: str) -> None:
    from decisionops.tools._outbound import HostGuard

    config = ToolServerConfig.model_validate(_http_server(http_server))
    refused = McpTools([config], HostGuard(configured=["127.0.0.1"], explicit=[]))
    try:
        with pytest.raises(ConfigError) as exc:
            refused.tools()
        assert "internal address" in exc.value.message
    finally:
        refused.close()
    allowed = McpTools([config], HostGuard(configured=["127.0.0.1"], explicit=["127.0.0.1"]))
    try:
        assert "desk.open_case" in {t.name for t in allowed.tools()}
    finally:
        allowed.close()


def test_a_server_down_at_execution_ends_the_leg_not_the_step_nor_the_worker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        http_process: tuple[str, subprocess.Popen[bytes]]) -> None:
    """Retries that run out on a server that is down keep the approved step: its record
    stays open and the loop tries the leg again once the lease lapses (trial 18: the
    decision failed for good after a few seconds' outage)."""
    url, process = http_process
    _configure(tmp_path, monkeypatch, _http_server(url))
    with Runtime(Settings(), actor="worker-a") as rt:
        account = rt.enterprise.rows("accounts")[0]["account_id"]
        rt.ingest([churn("p-down", account=account, score=0.9)], source="test")
        worker = Worker(rt, poll_seconds=0.01)
        worker.tick()
        (approval,) = rt.store.approvals.list(status="pending")
        answer(rt, approval.id, Approve(), approver_name="sam@support", apply=False)
        process.terminate()
        process.wait(10)
        report = worker.tick()  # the worker goes on
        (error,) = report.errors
        assert "unavailable" in error and "retries exhausted" in error
        (decision,) = rt.store.decisions.list()
        assert decision.status == "executing"
        assert "tried again once the lease lapses (1 of" in (decision.error or "")
        (execution,) = rt.store.executions.list(decision.id)
        assert execution.status == "started"
        assert execution.attempts == rt.settings.tool_attempts


def test_a_declared_preview_tool_shows_and_rechecks_what_a_call_would_change(
        calls_file: Path) -> None:
    from decisionops.agent.models import Step
    from decisionops.agent.preview import drift, read_preview

    config = {**_stdio_server(), "previews": {"open_case": {
        "tool": "case_count", "arguments": {"account_id": "account_id"}, "watch": ["result"]}}}
    mcp = McpTools([ToolServerConfig.model_validate(config)])
    try:
        registry = ToolRegistry(mcp.tools())
        spec = registry.spec("desk.open_case").preview
        assert spec is not None and spec.tool == "desk.case_count"
        step = Step(id="s", function="support", tool="desk.open_case",
                    arguments={"account_id": "A-9", "summary": "s"})
        seen = read_preview(registry, step)
        assert seen is not None and seen["tool"] == "desk.case_count"
        assert _calls(calls_file) == []  # previewing opened nothing
        registry.call("desk.open_case", {"account_id": "A-9", "summary": "s"},
                      idempotency_key="key-p")
        why = drift(spec, seen, read_preview(registry, step) or {})
        assert why is not None and why.startswith("result was 0, is 1")
    finally:
        mcp.close()


def test_a_preview_tool_must_be_read_only() -> None:
    from pydantic import ValidationError
    with pytest.raises(ValidationError, match="not in read_only"):
        ToolServerConfig.model_validate({**_stdio_server(), "previews": {
            "open_case": {"tool": "crash"}}})


@pytest.mark.parametrize(("setting", "value", "field", "named"), [
    # a misspelt tool name would drop the lock on what the step acts on (trial 18: an
    # approved refund was edited to another transaction), make a read a write, or
    # preview nothing
    ("targets", {"opne_case": ["account_id"]}, "tool_servers.0.targets.opne_case",
     "did you mean 'open_case'"),
    ("read_only", ["case_cont"], "tool_servers.0.read_only", "did you mean 'case_count'"),
    ("previews", {"open_cas": {"tool": "case_count"}}, "tool_servers.0.previews.open_cas",
     "did you mean 'open_case'"),
])
def test_a_setting_naming_a_tool_the_server_lacks_is_refused_naming_it(
        calls_file: Path, setting: str, value: Any, field: str, named: str) -> None:
    config = {**_stdio_server(), setting: value}
    if setting == "read_only":
        config["previews"] = {}
    mcp = McpTools([ToolServerConfig.model_validate(config)])
    try:
        with pytest.raises(ConfigError) as refused:
            mcp.tools()
        assert refused.value.details["field"] == field, refused.value.details
        assert named in refused.value.message and "desk" in refused.value.message
    finally:
        mcp.close()


def test_a_server_owned_by_a_function_the_policies_lack_is_refused_at_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls_file: Path) -> None:
    """(trial 18: ``function = "fraud_opz"`` made a function no policy speaks for the
    owner of the server's tools, without a word)"""
    _configure(tmp_path, monkeypatch, {**_stdio_server(), "function": "suport"})
    with pytest.raises(ConfigError) as refused:
        Runtime(Settings(), actor="t").close()
    assert refused.value.details["field"] == "tool_servers.0.function"
    assert "did you mean 'support'" in refused.value.message
    out = subprocess.run([sys.executable, "-m", "decisionops.agent.cli", "tools", "list",
                          "--json"], capture_output=True, text=True, check=False)
    assert out.returncode == 2 and "tool_servers.0.function" in out.stdout, out


def test_one_write_tool_of_a_server_can_have_its_own_risk(calls_file: Path) -> None:
    """(trial 18: a low-risk write on a server of medium-risk tools could not be said, so
    the playbook's risk: low went to people)"""
    mcp = McpTools([ToolServerConfig.model_validate({**_stdio_server(),
                                                     "risks": {"open_case": "low"}})])
    try:
        registry = ToolRegistry(mcp.tools())
        assert registry.spec("desk.open_case").risk.value == "low"
        assert registry.spec("desk.open_case").side_effects
        assert registry.spec("desk.crash").risk.value == "medium"  # the server's risk
    finally:
        mcp.close()
    mcp = McpTools([ToolServerConfig.model_validate({**_stdio_server(),
                                                     "risks": {"open_cse": "low"}})])
    try:
        with pytest.raises(ConfigError, match=r"risks.open_cse: 'open_cse' is not a tool.*'open_case'"):
            mcp.tools()
    finally:
        mcp.close()
