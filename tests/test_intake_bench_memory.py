"""bench/intake.py's memory figure is the tree's: every process the command started,
down to the workers a forkserver starts (its grandchildren), each counted by its PSS
so that pages they share are counted once; and it runs the command as a user does
(the console script, whose workers once imported the whole CLI again where ``python
-m`` showed lean ones)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.intake import TreeMemory, _command

_LEVEL = r"""
import subprocess, sys
depth = int(sys.argv[1])
held = bytearray(64 * 2**20) if depth == 2 else b""  # the worker's 64 MB, touched
if depth == 2:
    for i in range(0, len(held), 4096):
        held[i] = 1
if depth < 2:
    child = subprocess.Popen([sys.executable, __file__, str(depth + 1)],
                             stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\n"
print("ready", flush=True)
sys.stdin.read()  # until the test closes it
"""


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="Linux's PSS")
def test_the_peak_counts_every_process_of_the_tree_once(tmp_path: Path) -> None:
    script = tmp_path / "level.py"
    script.write_text(_LEVEL)
    command = subprocess.Popen([sys.executable, str(script), "0"], stdout=subprocess.PIPE,
                               stdin=subprocess.PIPE, text=True)
    try:
        assert command.stdout is not None and command.stdout.readline() == "ready\n"
        memory = TreeMemory(command.pid)
        memory.sample()
    finally:
        command.kill()
        command.wait()
    (worker,) = memory.at_peak["workers"]  # the grandchild, as a forkserver's worker is
    assert worker >= 64
    assert len(memory.at_peak["helpers"]) == 1 and len(memory.at_peak["command"]) == 1
    # three interpreters share their libraries' pages: the RSS sum counts them thrice
    assert memory.peak_rss > memory.peak_pss >= 64


def test_the_bench_runs_the_command_users_run() -> None:
    script = Path(sys.executable).with_name("decisionops")
    if not script.exists():
        pytest.skip("the project is not installed beside this Python")
    assert _command() == [str(script)]
