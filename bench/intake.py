"""Benchmark: bulk intake and backlog triage on SQLite.

1. A nightly churn scoring of every account as a CSV (the columns of the bundled
   ``samples/churn.csv``: id, model, version, kind, entity, score, value at stake,
   currency, a JSON explanation and JSON features, the time), ``--rows`` rows (1,000,000
   by default); 99.9 % score under the churn playbook's threshold.
2. ``decisionops ingest FILE --json``, the installed console script as a user runs it,
   in a subprocess on a fresh home (with its default ``--jobs``: worker processes map
   the rows while it stores them): wall time (start-up included) and the peak of the
   memory of the command and every process it started, summed: each process's PSS
   (``/proc/PID/smaps_rollup``: a page shared by n processes counts 1/n in each, so the
   sum is what the tree holds), sampled every 100 ms, and where it was at that peak
   (the command, its workers, multiprocessing's helpers). The RSS summed the same way
   counts a shared page once per process sharing it (an upper bound); the peak of a
   single process's ``ru_maxrss`` would miss the others.
3. In the same run, the baseline: the same parsed rows (read back from what ingest
   stored) written by a raw ``sqlite3`` ``executemany`` into an equivalent table (the
   same columns and indexes, the same journal mode), one commit.
4. Triage of the backlog ingest left (``--rows`` untriaged, 99.9 % non-actionable), in
   the chunks a worker tick takes (``Runtime.triage_pending(limit=50_000)``) until none
   is left.

Prints ``ingest_rows_per_s:``, ``raw_rows_per_s:``, ``ratio:`` (ingest ÷ raw, goal
≥ 0.3), ``peak_pss_mb:`` (goal < 500), ``peak_rss_mb:`` (RSS summed, for comparison
with earlier runs) and ``triage_rows_per_s:`` (goal ≥ 50,000). ``--jobs 1`` maps the
rows in the command's own process.

    python bench/intake.py --rows 200000 [--jobs 1]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

HEADER = ["id", "model", "model_version", "kind", "entity_type", "entity_id", "score", "value",
          "value_at_stake", "currency", "explanation", "features", "observed_at"]
_DRIVERS = ["invoice_days_overdue", "support_tickets_90d", "price_increase_pct",
            "seat_utilization", "login_trend_30d", "executive_sponsor_engaged"]
_REGIONS = ["EMEA", "APAC", "AMER"]
_SEGMENTS = ["smb", "mid_market", "enterprise"]
_ACTIONABLE = 0.001


def write_csv(path: Path, rows: int, seed: int = 7) -> None:
    """A nightly scoring: scores over one hour, 0.1 % at risk with money at stake."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 20, 6, tzinfo=UTC)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(rows):
            at_risk = rng.random() < _ACTIONABLE
            score = rng.uniform(0.7, 0.99) if at_risk else rng.uniform(0.0, 0.6)
            drivers = rng.sample(_DRIVERS, 3)
            writer.writerow([
                f"churn-2026-11-20-ACC-{i:07d}", "churn-gbm", "2026.11.2", "churn", "account",
                f"ACC-{i:07d}", f"{score:.4f}", "",
                f"{rng.randrange(20_000, 400_000) if at_risk else rng.randrange(500, 90_000)}.0",
                "EUR",
                json.dumps({d: round(rng.uniform(-1, 1), 3) for d in drivers},
                           separators=(",", ":")),
                json.dumps({"region": rng.choice(_REGIONS), "segment": rng.choice(_SEGMENTS),
                            "tenure_months": rng.randrange(1, 120)}, separators=(",", ":")),
                (start + timedelta(seconds=rng.randrange(3600))).strftime("%Y-%m-%dT%H:%M:%SZ"),
            ])


def _command() -> list[str]:
    """The ``decisionops`` console script beside this Python, as a user runs it (its
    workers once ran the script again, importing the whole CLI, which ``python -m``
    did not show); ``python -m`` where it is not installed."""
    script = Path(sys.executable).with_name("decisionops")
    if script.exists():
        return [str(script)]
    print(f"no {script}: measuring python -m decisionops.agent.cli instead")
    return [sys.executable, "-m", "decisionops.agent.cli"]


def _pss_mb(proc: Any) -> tuple[float, float]:
    """A process's (PSS, RSS) in MB; its RSS stands for its PSS where the kernel does not
    say (not Linux)."""
    rss = proc.memory_info().rss / 2**20
    try:
        with open(f"/proc/{proc.pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024, rss
    except OSError:
        pass
    return rss, rss


class TreeMemory:
    """The peak of the memory summed over a process and its descendants, sampled."""

    def __init__(self, pid: int) -> None:
        import psutil

        self._root = psutil.Process(pid)
        self.peak_pss = self.peak_rss = 0.0
        self.at_peak: dict[str, list[float]] = {}
        """PSS (MB) of each process by role at the PSS peak: command, workers, helpers."""

    def sample(self) -> None:
        import psutil

        try:
            tree = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            return  # the command has ended
        roles: dict[str, list[float]] = {}
        pss = rss = 0.0
        for proc in tree:
            try:
                p, r = _pss_mb(proc)
                parent = proc.ppid()
            except psutil.Error:
                continue  # a process ended while it was read: the others still count
            pss, rss = pss + p, rss + r
            # the command's children are multiprocessing's forkserver and resource
            # tracker; the workers are the forkserver's children
            role = ("command" if proc.pid == self._root.pid else
                    "helpers" if parent == self._root.pid else "workers")
            roles.setdefault(role, []).append(p)
        self.peak_rss = max(self.peak_rss, rss)
        if pss > self.peak_pss:
            self.peak_pss, self.at_peak = pss, roles

    def where(self) -> str:
        parts = []
        for role in ("command", "workers", "helpers"):
            sizes = self.at_peak.get(role, [])
            if sizes:
                each = " + ".join(f"{s:.0f}" for s in sizes)
                parts.append(f"{role} {each}" if len(sizes) == 1
                             else f"{len(sizes)} {role} {each}")
        return ", ".join(parts) + " MB PSS"


def ingest(path: Path, home: Path, jobs: int | None) -> tuple[float, TreeMemory, dict]:
    """``decisionops ingest`` in a subprocess: wall seconds, the memory of its process
    tree, its report."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DECISIONOPS_")}
    env.update({"DECISIONOPS_HOME": str(home), "PYTHONPATH": str(REPO)})
    command = [*_command(), "ingest", str(path), "--json"]
    if jobs is not None:
        command += ["--jobs", str(jobs)]
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    memory = TreeMemory(child.pid)
    while child.poll() is None:
        memory.sample()
        time.sleep(0.1)
    out, err = child.communicate()
    seconds = time.perf_counter() - start
    if child.returncode:
        # with --json a refusal is a JSON document on stdout; anything else is on stderr
        said = "\n".join(part.strip() for part in (err, out) if part.strip())
        raise SystemExit(f"ingest failed ({child.returncode}):\n{said[-3000:]}")
    return seconds, memory, json.loads(out)


def raw_baseline(stored: Path, folder: Path) -> tuple[int, float]:
    """The rows ingest stored, inserted again by plain ``executemany`` into a table with
    the same definition and indexes; seconds for the insert and its commit."""
    source = sqlite3.connect(stored)
    ddl = [sql for (sql,) in source.execute(
        "select sql from sqlite_master where tbl_name = 'predictions' and sql is not null "
        "order by type desc")]  # the table, then its indexes
    columns = [c[1] for c in source.execute("pragma table_info(predictions)")]
    rows = source.execute(f"select {', '.join(columns)} from predictions").fetchall()
    source.close()
    target = sqlite3.connect(folder / "raw.sqlite", isolation_level=None)
    target.execute("pragma journal_mode=wal")
    target.execute("pragma synchronous=normal")
    for sql in ddl:
        target.execute(sql)
    insert = (f"insert into predictions ({', '.join(columns)}) "
              f"values ({', '.join('?' for _ in columns)})")
    start = time.perf_counter()
    target.execute("begin")
    target.executemany(insert, rows)
    target.execute("commit")
    seconds = time.perf_counter() - start
    target.close()
    return len(rows), seconds


def triage_backlog(home: Path) -> tuple[int, float, dict[str, int]]:
    from decisionops.agent.runtime import Runtime
    from decisionops.agent.settings import Settings

    with Runtime(Settings(holdout_share=0, home=home), actor="bench") as rt:
        total, counts = 0, {}
        start = time.perf_counter()
        while verdicts := rt.triage_pending(limit=50_000).verdicts:
            total += len(verdicts)
            for v in verdicts:
                counts[v.action.value] = counts.get(v.action.value, 0) + 1
        return total, time.perf_counter() - start, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="example: python bench/intake.py --rows 1000000")
    parser.add_argument("--rows", type=int, default=1_000_000,
                        help="rows of the nightly scoring file (default 1,000,000)")
    parser.add_argument("--keep", type=Path, help="Work in this folder and keep it.")
    parser.add_argument("--jobs", type=int, help="ingest's --jobs (default: its own).")
    args = parser.parse_args()
    if args.rows < 1000:
        parser.error(f"--rows must be at least 1000 (0.1 % of them are at risk), not {args.rows}")
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"--jobs must be at least 1, not {args.jobs}")
    with tempfile.TemporaryDirectory(prefix="intake-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "nightly.csv"
        start = time.perf_counter()
        write_csv(path, args.rows)
        print(f"{args.rows:,} rows, {path.stat().st_size / 2**20:,.0f} MB of CSV "
              f"(written in {time.perf_counter() - start:.1f} s); load {os.getloadavg()[0]:.2f}")
        home = folder / "home"
        shutil.rmtree(home, ignore_errors=True)  # a kept folder's earlier run
        seconds, memory, report = ingest(path, home, args.jobs)
        assert report["ingested"] == args.rows, report
        count, raw_seconds = raw_baseline(home / "decisionops.sqlite", folder)
        ingest_rate, raw_rate = args.rows / seconds, count / raw_seconds
        print(f"ingest: {seconds:.1f} s wall ({report['seconds']:.1f} s in the command), "
              f"{report['batches']} batches; raw executemany: {raw_seconds:.1f} s")
        print(f"ingest_rows_per_s: {ingest_rate:,.0f}")
        print(f"raw_rows_per_s: {raw_rate:,.0f}")
        print(f"ratio: {ingest_rate / raw_rate:.3f}")
        print(f"memory at its peak: {memory.where()}")
        print(f"peak_pss_mb: {memory.peak_pss:.0f}")
        print(f"peak_rss_mb: {memory.peak_rss:.0f}")
        triaged, triage_seconds, counts = triage_backlog(home)
        assert triaged == args.rows, (triaged, args.rows)
        print(f"triage: {triaged:,} rows in {triage_seconds:.1f} s ({counts}); "
              f"load {os.getloadavg()[0]:.2f}")
        print(f"triage_rows_per_s: {triaged / triage_seconds:,.0f}")


if __name__ == "__main__":
    main()
