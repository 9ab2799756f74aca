"""``serve`` and ``run`` on one SQLite folder never both run the loop (agent/looplock.py):
the second one exits non-zero with a message naming the first; a lock left by a process
that died (SIGKILL) blocks nothing; PostgreSQL takes any number of loops."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from decisionops.agent.errors import LoopAlreadyRunning
from decisionops.agent.looplock import LOCK_FILE, LoopLock
from tests.api.conftest import make_app
from tests.cli.conftest import Cli


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(cli: Cli, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "decisionops.agent.cli", *args], cwd=cli.cwd,
                            env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _wait_holding(cli: Cli, proc: subprocess.Popen[str], owner: str) -> None:
    """Until ``proc`` holds the loop lock (its pid and command are in the file)."""
    lock = cli.cwd / "home" / LOCK_FILE
    expected = f"pid {proc.pid}, decisionops {owner}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if lock.exists() and lock.read_text() == expected:
            return
        time.sleep(0.1)
    raise AssertionError(f"{owner} never took the loop lock")


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=40)
    return proc.returncode, err


@pytest.mark.slow
def test_serve_and_run_never_both_loop_and_a_dead_holder_blocks_nothing(cli: Cli) -> None:
    port = str(_free_port())
    loop = _start(cli, "run", "--poll", "0.2")
    try:
        _wait_holding(cli, loop, "run")
        refused = cli("serve", "--port", port, code=2)
        assert "a loop already runs" in refused.stderr
        assert f"pid {loop.pid}, decisionops run" in refused.stderr
        assert "--no-worker" in refused.stderr  # and what to do instead
    finally:
        loop.kill()  # SIGKILL: no clean-up runs; the lock file stays behind
        loop.wait(timeout=30)
    assert (cli.cwd / "home" / LOCK_FILE).exists()

    server = _start(cli, "serve", "--port", port)
    try:
        _wait_holding(cli, server, "serve")
        for args in (("run",), ("run", "--once"), ("demo", "--reset")):
            second = cli(*args, code=2)
            assert f"pid {server.pid}, decisionops serve" in second.stderr
        refused = json.loads(cli("run", "--once", "--json", code=2).stdout)
        assert refused["error"]["code"] == "conflict"  # not bad input: a loop runs
        assert (cli.cwd / "home" / "decisionops.sqlite").exists()  # --reset removed nothing
    finally:
        code, err = _stop(server)
    assert code in (0, -signal.SIGTERM) and "shutdown complete" in err, err  # uvicorn re-raises
    LoopLock(SimpleNamespace(home=cli.cwd / "home",
                             resolved_database_url="sqlite:///x"), "test").probe()


def test_a_second_lock_on_one_sqlite_folder_is_refused_until_released(tmp_path: Path) -> None:
    conf = SimpleNamespace(home=tmp_path, resolved_database_url=f"sqlite:///{tmp_path}/d.sqlite")
    first = LoopLock(conf, "run")
    with first:
        with pytest.raises(LoopAlreadyRunning) as refused:
            LoopLock(conf, "serve").acquire()
        assert "decisionops run" in refused.value.message
    with LoopLock(conf, "serve"):
        pass


def test_postgresql_takes_any_number_of_loops(tmp_path: Path) -> None:
    conf = SimpleNamespace(home=tmp_path, resolved_database_url="postgresql+psycopg://x/y")
    with LoopLock(conf, "run"), LoopLock(conf, "serve"):
        assert not (tmp_path / LOCK_FILE).exists()


def test_the_service_does_not_start_its_worker_beside_a_running_loop(tmp_path: Path) -> None:
    home = tmp_path / "home"
    app = make_app(home, worker_interval_seconds=0.05)
    conf = SimpleNamespace(home=home, resolved_database_url="sqlite:///x")
    with LoopLock(conf, "run"), pytest.raises(LoopAlreadyRunning), TestClient(app):
        pass
    # Once the loop stopped, the service runs it (and holds the folder).
    with TestClient(app), pytest.raises(LoopAlreadyRunning):
        LoopLock(conf, "run").acquire()
