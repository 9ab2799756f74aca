"""The worker processes of a bulk read (``_parallel``) carry only what they use: they do
not run the caller's main script again (the ``decisionops`` console script imports the
whole CLI), and their default number is what the storing process can keep busy on the
CPUs this process may use (its affinity and a container's CPU quota)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from decisionops.agent.sources._parallel import _usable_cpus

_SCRIPT = """
import os, sys
with open(sys.argv[2], "a") as marks:  # every process that runs this script says so
    marks.write(f"{os.getpid()}\\n")
if __name__ == "__main__":
    from decisionops.agent.sources._parallel import iter_prepared
    chunks = list(iter_prepared(sys.argv[1], batch_rows=10, jobs=2))
    print(sum(len(c.rows) for c in chunks))
"""


def test_workers_do_not_run_the_callers_main_script(tmp_path: Path) -> None:
    """A console script (``decisionops``) is the main module of a path; multiprocessing
    has each worker run it again, importing all it imports (~45 MB a worker)."""
    data = tmp_path / "p.jsonl"
    data.write_text("".join(
        f'{{"id": "w-{i}", "model": "m", "kind": "churn", "entity_type": "account", '
        f'"entity_id": "A-{i}", "score": 0.2, "observed_at": "2026-11-20T08:00:00Z"}}\n'
        for i in range(100)))
    script, marks = tmp_path / "main_script.py", tmp_path / "marks.txt"
    script.write_text(_SCRIPT)
    run = subprocess.run([sys.executable, str(script), str(data), str(marks)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split() == ["100"]  # the workers did the work
    assert len(marks.read_text().split()) == 1, "a worker ran the caller's main script"


def _cgroup_v2(root: Path, cpu_max: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cpu.max").write_text(cpu_max + "\n")
    return root


def _cgroup_v1(root: Path, quota: int, period: int = 100_000) -> Path:
    cpu = root / "cpu"
    cpu.mkdir(parents=True, exist_ok=True)
    (cpu / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    (cpu / "cpu.cfs_period_us").write_text(f"{period}\n")
    return root


@pytest.mark.parametrize(("make", "affinity", "expected"), [
    (lambda root: _cgroup_v2(root, "200000 100000"), 16, 2),  # docker --cpus 2 on 16
    (lambda root: _cgroup_v2(root, "150000 100000"), 16, 2),  # 1.5 CPUs: round up
    (lambda root: _cgroup_v2(root, "50000 100000"), 16, 1),
    (lambda root: _cgroup_v2(root, "max 100000"), 6, 6),  # no quota: the affinity
    (lambda root: _cgroup_v2(root, "400000 100000"), 2, 2),  # a quota over the affinity
    (lambda root: _cgroup_v1(root, 300_000), 16, 3),
    (lambda root: _cgroup_v1(root, -1), 16, 16),  # v1's "no quota"
    (lambda root: root, 8, 8),  # no cgroup files at all (not Linux, or not mounted)
])
def test_usable_cpus_honour_a_containers_cpu_quota(
        tmp_path: Path, make: Callable[[Path], Path], affinity: int, expected: int) -> None:
    """``--cpus 2`` on a 16-CPU host showed 16 CPUs: 8 workers of ~40-85 MB each for two
    CPUs' worth of time."""
    assert _usable_cpus(affinity, make(tmp_path / "cgroup")) == expected

