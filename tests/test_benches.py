"""The benchmarks under bench/ still run, at small sizes: they print the figures the README
quotes, so a change that breaks one must fail here, not in the next figures session.
(Found: bench/service.py waited for a partial answer to be applied after answers began to
go to a decision's graph together; bench/decision_loop.py's people run failed its own
check at its default size once two open decisions shared an account.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _run(script: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def _figures(stdout: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in stdout.splitlines()
                if ": " in line and not line.startswith(" "))


def test_service_bench_measures_the_answer_that_completes_a_plan() -> None:
    proc = _run("service.py", "--rounds", "2", "--backlog", "100", "--pending", "200",
                "--repeat", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = _figures(proc.stdout)
    assert float(figures["p95_ms"]) > 0
    assert float(figures["p95_ms_under_backlog"].split()[0]) > 0
    assert float(figures["inbox_p95_ms"]) > 0


def test_service_bench_refuses_a_backlog_too_small_to_measure_under() -> None:
    proc = _run("service.py", "--backlog", "20")
    assert proc.returncode == 2
    assert "--backlog must be 0 or at least 100, not 20" in proc.stderr


def test_decision_loop_people_run_completes_with_more_decisions_than_accounts() -> None:
    # 240 timed predictions over the 234 seeded accounts: six accounts have two.
    proc = _run("decision_loop.py", "--only", "people", "--n", "240", "--reps", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "decisions {'completed': 260}" in proc.stdout, proc.stdout
    assert "ledger verified" in proc.stdout


def test_decision_loop_full_run_starts_every_decision_with_more_decisions_than_accounts() -> None:
    # An account's older prediction in the same backlog as its newer one is dropped as
    # superseded; the run feeds the loop in rounds of distinct accounts, as the people
    # run does, so every timed prediction starts a decision.
    proc = _run("decision_loop.py", "--only", "full", "--n", "240", "--reps", "1", "--no-floor")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "decisions {'completed': 240}" in proc.stdout, proc.stdout


def test_intake_bench_prints_its_ratio_and_triage_rate() -> None:
    proc = _run("intake.py", "--rows", "5000")
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = _figures(proc.stdout)
    assert float(figures["ratio"]) > 0
    assert float(figures["peak_rss_mb"]) > 0
    assert float(figures["triage_rows_per_s"].replace(",", "")) > 0


def test_planning_bench_plans_each_decision_once_on_sqlite() -> None:
    proc = _run("planning.py", "--decisions", "20", "--baseline", "2", "--latency", "0.05",
                "--no-postgres")
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = _figures(proc.stdout)
    assert float(figures["overlap"].split()[0]) > 0
    # what this machine's cores allow for the CPU a decision cost (Linux /proc)
    assert re.search(r"; at most \d+\.\d on \d+ cores for the CPU a decision cost",
                     figures["overlap"])
    assert figures["wasted_llm_calls"] == "0"
    assert figures["llm_calls_per_decision"] == "1.0"


def test_bench_inputs_are_checked_before_any_work() -> None:
    proc = _run("intake.py", "--rows", "5")
    assert proc.returncode == 2
    assert "--rows must be at least 1000 (0.1 % of them are at risk), not 5" in proc.stderr
    proc = _run("planning.py", "--workers", "0")
    assert proc.returncode == 2 and "--workers must be at least 1, not 0" in proc.stderr
