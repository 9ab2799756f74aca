"""``decisionops run`` as a long-running service: refuses unsafe SQLite use, picks up
work while running, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.cli.test_cross_process import HEADER, ROW

pytestmark = pytest.mark.slow


def test_several_workers_on_sqlite_are_refused(cli: Cli) -> None:
    out = cli("run", "--workers", "2", code=2)
    assert "SQLite allows one writer" in out.stderr
    assert "PostgreSQL" in out.stderr


def test_restart_options_are_documented_and_validated(cli: Cli) -> None:
    help_text = cli("run", "--help").stdout
    assert "--max-restarts" in help_text and "--restart-window" in help_text
    assert "--restart-backoff" not in help_text  # for tests only
    for option, value in (("--max-restarts", "-1"), ("--restart-window", "0"),
                          ("--restart-backoff", "0")):
        out = cli("run", "--workers", "2", option, value, code=2)
        assert option in out.stderr


def test_loop_picks_up_work_refuses_a_second_loop_and_stops_on_sigterm(
        cli: Cli, write: Callable[[str, str], Path]) -> None:
    loop = subprocess.Popen([sys.executable, "-m", "decisionops.agent.cli", "run", "--poll", "0.1", "--json"],
                            cwd=cli.cwd, env=cli.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (cli.cwd / "home" / "worker.lock").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        second = cli("run", code=2)
        assert "a loop already runs" in second.stderr
        cli("ingest", str(write("p.csv", HEADER + ROW.format(id="p-1", account="ACC-10004",
                                                            value=10000)
                                .replace("enterprise", "mid_market"))))
        decisions: list = []
        while time.monotonic() < deadline and not (
                decisions and decisions[0]["status"] == "awaiting_approval"):
            time.sleep(0.2)  # the running loop triages, plans and asks
            decisions = cli.json("decisions", "list")
        assert decisions and decisions[0]["status"] == "awaiting_approval"
    finally:
        loop.send_signal(signal.SIGTERM)
        out, err = loop.communicate(timeout=30)
    assert loop.returncode == 0, err
    ticks = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert sum(len(t["started"]) for t in ticks) == 1


def test_a_pass_that_leaves_work_queued_says_so(cli: Cli) -> None:
    """``run --once`` starts at most a batch of decisions a pass (50 with the playbook
    planner, the planning slots with a model); what it leaves is said, with how to go
    on, and is in the JSON summary."""
    from importlib import resources

    sample = resources.files("decisionops.agent") / "data" / "samples" / "churn.csv"
    env = {"DECISIONOPS_HOLDOUT_SHARE": "0"}
    cli("ingest", str(sample), env=env)
    first = cli("run", "--once", env=env)
    assert "started 50 decisions" in first.stdout
    queued = int(first.stdout.split(" prediction(s) still queued")[0].split()[-1])
    assert queued > 0
    assert "decisionops run --once" in first.stdout
    second = json.loads(cli("run", "--once", "--json", env=env).stdout)
    assert len(second["started"]) == queued and second["queued"] == 0
    third = cli("run", "--once", env=env).stdout
    assert "still queued" not in third
    # every request waiting is counted, not only those the pass asked (none, here)
    pending = len(cli.json("approvals", "list", "--limit", "1000"))
    assert second["pending_approvals"] == pending > 0
    assert f"{pending} approval request(s) waiting (0 asked in this pass)" in third
