"""``decisionops run --workers N`` supervises its worker processes, seen from outside as
an operator would: a real ``python -m agent.cli run`` on a fresh PostgreSQL database,
its children found with psutil, killed, and counted afterwards."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import psutil
import pytest

from tests.cli.conftest import Cli

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(60)]


class Loop:
    """A running ``decisionops run`` and its worker children."""

    def __init__(self, cli: Cli, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "--poll", "0.1", "--json", *args],
            cwd=cli.cwd, env={**cli.env, **(env or {})}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        self.ps = psutil.Process(self.proc.pid)
        self.seen: set[int] = set()
        self.stdout = self.stderr = ""

    def workers(self) -> list[psutil.Process]:
        """Live worker children (spawned interpreters; not multiprocessing's resource
        tracker, not reaped-but-listed zombies)."""
        out = []
        for child in self.ps.children():
            try:
                if "--multiprocessing-fork" in child.cmdline() and \
                        "resource_tracker" not in " ".join(child.cmdline()) and \
                        child.status() != psutil.STATUS_ZOMBIE:
                    out.append(child)
            except psutil.NoSuchProcess:
                continue
        self.seen.update(c.pid for c in out)
        return out

    def zombies(self) -> list[int]:
        out = []
        for child in self.ps.children():
            try:
                if child.status() == psutil.STATUS_ZOMBIE:
                    out.append(child.pid)
            except psutil.NoSuchProcess:
                continue
        return out

    def wait_for(self, what: Callable[[], bool], seconds: float, message: str) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if what():
                return
            assert self.proc.poll() is None, f"the supervisor exited early: {self.finish()}"
            time.sleep(0.1)
        self.proc.send_signal(signal.SIGTERM)
        raise AssertionError(f"{message} within {seconds} s; stderr: {self.finish(10)}")

    def finish(self, timeout: float = 45) -> str:
        """Wait for the supervisor to exit (killing it if it hangs); return its stderr."""
        if self.proc.returncode is None:
            try:
                self.stdout, self.stderr = self.proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                for child in self.ps.children(recursive=True):
                    child.kill()
                self.proc.kill()
                self.stdout, self.stderr = self.proc.communicate()
        return self.stderr

    def events(self) -> list[dict[str, object]]:
        return [e for e in (json.loads(line) for line in self.stdout.splitlines()
                            if line.startswith("{")) if "supervisor" in e]


@pytest.fixture
def loop(cli: Cli, pg_url: str) -> Iterator[Callable[..., Loop]]:
    cli.env["DECISIONOPS_DATABASE_URL"] = pg_url
    started: list[Loop] = []

    def _start(*args: str, env: dict[str, str] | None = None) -> Loop:
        started.append(Loop(cli, *args, env=env))
        return started[-1]

    yield _start
    for running in started:
        if running.proc.poll() is None:
            running.proc.send_signal(signal.SIGTERM)
        running.finish()


def _gone(pids: set[int]) -> bool:
    """No process left with these pids, not even an unreaped one."""
    return not any(psutil.pid_exists(pid) for pid in pids)


def test_a_killed_worker_is_reaped_reported_and_replaced(loop: Callable[..., Loop]) -> None:
    run = loop("--workers", "2")
    run.wait_for(lambda: len(run.workers()) == 2, 20, "two workers did not start")
    victim = run.workers()[1]
    victim.kill()
    run.wait_for(lambda: len(run.workers()) == 2 and victim.pid not in
                 {w.pid for w in run.workers()}, 15, "no new worker replaced the killed one")
    run.wait_for(lambda: _gone({victim.pid}), 5, "the killed worker was not reaped")
    assert run.zombies() == []
    assert run.proc.poll() is None
    run.proc.send_signal(signal.SIGTERM)
    stderr = run.finish()
    assert run.proc.returncode == 0, stderr
    assert f"pid {victim.pid}" in stderr and "SIGKILL" in stderr
    exited = [e for e in run.events() if e["supervisor"] == "worker_exited"]
    assert exited and exited[0]["pid"] == victim.pid and exited[0]["signal"] == "SIGKILL"
