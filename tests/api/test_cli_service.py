"""``decisionops users``, ``decisionops chat`` and ``decisionops serve`` as a user runs them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from decisionops.agent.cli import app
from decisionops.agent.errors import DecisionOpsError

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str, code: int = 0) -> str:
    """Run the CLI in process; errors map to exit codes as ``agent.cli.main`` maps them."""
    result = CliRunner().invoke(app, list(args))
    if isinstance(result.exception, DecisionOpsError):
        assert result.exception.exit_code == code, result.exception.message
        return result.exception.message
    assert result.exit_code == code, result.output
    return result.output


def test_users_add_list_token_revoke(home: Path) -> None:
    added = json.loads(_run("users", "add", "dana", "--role", "approver", "--function",
                            "finance", "--json"))
    assert added["token"].startswith("dops_") and added["functions"] == ["finance"]
    assert "shown once" in _run("users", "add", "olga", "--role", "operator")
    refused = _run("users", "add", "zoe", "--role", "approver", "--function", "finance", code=2)
    assert "not an approver of finance" in refused
    assert "at least one --function" in _run("users", "add", "kim", "--role", "approver", code=2)
    assert "exists already" in _run("users", "add", "dana", "--role", "operator", code=2)
    second = json.loads(_run("users", "token", "dana", "--expires-days", "30", "--json"))
    assert second["token"] != added["token"]
    listed = {u["name"]: u for u in json.loads(_run("users", "list", "--json"))}
    assert listed["dana"]["active_tokens"] == 2 and listed["olga"]["role"] == "operator"
    assert added["token"] not in json.dumps(listed)
    assert "2 token(s) revoked" in _run("users", "revoke", "dana")
    assert json.loads(_run("users", "list", "--json"))[0]["active_tokens"] == 0
    assert "is disabled" in _run("users", "token", "dana", code=2)
    # a user revoked by mistake (or back from leave) comes back with new tokens only
    enabled = json.loads(_run("users", "enable", "dana", "--json"))
    assert enabled == {"name": "dana", "enabled": True}
    third = json.loads(_run("users", "token", "dana", "--json"))
    assert third["token"] not in (added["token"], second["token"])
    listed = {u["name"]: u for u in json.loads(_run("users", "list", "--json"))}
    assert listed["dana"]["disabled_at"] is None and listed["dana"]["active_tokens"] == 1
    assert "not disabled" in _run("users", "enable", "olga", code=2)
    assert "no user" in _run("users", "enable", "nobody", code=2)
    # As --as reads a name: raj for raj@sales when only one is meant (found in a trial:
    # `users token raj` said there was no such user).
    _run("users", "add", "raj@sales", "--role", "approver", "--function", "sales")
    assert json.loads(_run("users", "token", "raj", "--json"))["name"] == "raj@sales"
    _run("users", "add", "raj@ops", "--role", "operator")
    assert "could be raj@ops, raj@sales" in _run("users", "token", "raj", code=2)


def test_chat_in_the_terminal(home: Path) -> None:
    assert "pending [function]" in _run("chat", "-m", "help")
    assert "Nothing pending" in _run("chat", "-m", "pending")
    assert "cannot approve" in _run("chat", "-m", "approve everything")
    token = json.loads(_run("users", "add", "raj", "--role", "approver", "--function", "sales",
                            "--json"))["token"]
    assert "operators" in _run("chat", "-m", "triage", "--token", token)
    assert "not a valid token" in _run("chat", "-m", "help", "--token", "dops_x", code=2)
    # (trial 26: a traceback for an approver; every decision's entries for the operator)
    refused = _run("chat", "-m", "ledger dec_%", "--token", token)  # a reply, as "why %"
    assert "decision_id" in refused and "Traceback" not in refused
    assert "No matching ledger entries" in _run("chat", "-m", "ledger dec_%")


def test_serve_answers_health_checks(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DECISIONOPS_")}
    env |= {"DECISIONOPS_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "decisionops.agent.cli", "serve", "--port", str(port),
                             "--no-worker"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        assert ready.json() == {"status": "ready"}
        assert httpx.get(f"http://127.0.0.1:{port}/v1/approvals").status_code == 401
        spec = httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()
        assert "/v1/approvals/{approval_id}/approve" in spec["paths"]
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_an_approver_s_functions_change_in_place(home: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """(trial: no command changed a user's functions; dana taking on sales's approvals
    meant a second user, new tokens, and her answers under two names)"""
    from importlib import resources

    bundled = (resources.files("decisionops.agent") / "data" / "functions.yaml").read_text()
    assert "approvers: [raj@sales, mia@sales]" in bundled
    policy = tmp_path / "functions.yaml"
    policy.write_text(bundled.replace("approvers: [raj@sales, mia@sales]",
                                      "approvers: [raj@sales, mia@sales, dana@sales]"))
    monkeypatch.setenv("DECISIONOPS_FUNCTIONS_FILE", str(policy))
    _run("users", "add", "dana", "--role", "approver", "--function", "finance")
    _run("users", "add", "olga", "--role", "operator")
    changed = json.loads(_run("users", "functions", "dana", "--function", "finance",
                              "--function", "sales", "--json"))
    assert changed == {"name": "dana", "functions": ["finance", "sales"],
                       "previous": ["finance"]}
    listed = {u["name"]: u for u in json.loads(_run("users", "list", "--json"))}
    assert listed["dana"]["functions"] == ["finance", "sales"]
    assert "sales, finance (was finance, sales)" in _run(
        "users", "functions", "dana", "--function", "sales", "--function", "finance")
    # Refused as `users add` refuses, naming --function, and nothing changes.
    for args, says in ((("dana", "--function", "support"), "not an approver of support"),
                       (("dana",), "at least one --function"),
                       (("olga", "--function", "sales"), "only approvers have functions"),
                       (("olga",), "only approvers have functions"),
                       (("nobody", "--function", "sales"), "no user 'nobody'")):
        assert says in _run("users", "functions", *args, code=2), args
    listed = {u["name"]: u for u in json.loads(_run("users", "list", "--json"))}
    assert listed["dana"]["functions"] == ["sales", "finance"]
    # Who changed what is in the ledger.
    from decisionops.agent.runtime import Runtime
    from decisionops.agent.settings import Settings

    with Runtime(Settings(), actor="test") as rt:
        changes = [e for e in rt.store.ledger.entries() if e.event == "user.functions_set"]
    assert [c.body for c in changes] == [
        {"user": "dana", "functions": ["finance", "sales"], "previous": ["finance"]},
        {"user": "dana", "functions": ["sales", "finance"], "previous": ["finance", "sales"]}]


def test_serve_on_a_port_in_use_says_so_before_announcing_itself(tmp_path: Path) -> None:
    """(trial 32 #7: it printed "DecisionOps on http://…", then uvicorn's "address
    already in use", and exited 3.)"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DECISIONOPS_")}
    env |= {"DECISIONOPS_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "decisionops.agent.cli", "serve",
                               "--port", str(port), "--no-worker"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    said = " ".join(proc.stderr.split())
    assert f"--port: 127.0.0.1:{port} is in use" in said, said
    assert "DecisionOps on http" not in proc.stdout
