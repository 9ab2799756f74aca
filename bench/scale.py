"""Benchmark: DecisionOps workers on PostgreSQL.

1. Sustained decisions/s with 1, 2 and 4 worker processes (``decisionops run
   --workers N``), each on a fresh database with the same queue of predictions, under a
   policy that auto-approves every function (so the figure is the loop, not a person).
2. Backlog drain: 10,000 queued predictions, the time until every one is decided.
3. Storage per finished decision after retention (checkpoints pruned, ledger archived),
   PostgreSQL's own sizes of every table and index (after VACUUM).
4. Worker RSS sampled over the drain: first, last, peak and the slope.

Needs a PostgreSQL server (DECISIONOPS_TEST_PG_URL, default postgres@127.0.0.1:5432).
Ends with ``ratio: <2-worker rate / 1-worker rate>``.

    python bench/scale.py --decisions 600 --backlog 10000
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.decision_loop import _auto_policy_file, _predictions  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _fresh_db(admin_url: str, name: str) -> str:
    import psycopg

    from agent.checkpoints import psycopg_conninfo

    with psycopg.connect(psycopg_conninfo(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def _env(url: str, home: Path, policy: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DECISIONOPS_")}
    env.update({"DECISIONOPS_DATABASE_URL": url, "DECISIONOPS_HOME": str(home),
                "DECISIONOPS_FUNCTIONS_FILE": str(policy), "PYTHONPATH": str(REPO),
                "DECISIONOPS_RETENTION_DAYS": "0"})
    return env


def _queue(url: str, home: Path, policy: Path, n: int) -> None:
    from agent.models import Prediction
    from agent.runtime import Runtime
    from agent.settings import Settings

    settings = Settings(home=home, database_url=url, functions_file=policy)
    with Runtime(settings, actor="bench") as rt:
        items = [Prediction.model_validate(p) for p in _predictions(n)]
        for i in range(0, len(items), 2000):
            rt.ingest(items[i:i + 2000], source="bench")


def _counts(url: str) -> tuple[int, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            finished = conn.execute(text(
                "select count(*) from decisions where status in "
                "('completed','failed','compensated','rejected','needs_human')")).scalar()
            waiting = conn.execute(text(
                "select count(*) from predictions p where triaged_at is null or "
                "(triage_action='act' and not exists (select 1 from decisions d "
                "where d.prediction_id = p.id))")).scalar()
    finally:
        engine.dispose()
    return int(finished or 0), int(waiting or 0)


def _rss_mb(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += psutil.Process(pid).memory_info().rss / 2**20
    return total


def run(admin_url: str, workers: int, n: int, *, sample_rss: bool = False) -> dict[str, Any]:
    import psutil

    with tempfile.TemporaryDirectory(prefix=f"scale-{workers}-") as tmp:
        folder = Path(tmp)
        url = _fresh_db(admin_url, f"dops_scale_{workers}_{n}")
        policy = _auto_policy_file(folder)
        home = folder / "home"
        _queue(url, home, policy, n)
        env = _env(url, home, policy)
        proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--workers",
                                 str(workers), "--poll", "0.2"], env=env, cwd=folder,
                                stdout=subprocess.DEVNULL, stderr=(folder / "workers.log").open("w"))
        start = time.perf_counter()
        first: tuple[float, int] | None = None
        """When the first decisions were done, and how many: the sustained rate is
        measured from there, so worker start-up (imports, connections) is not in it."""
        rss: list[tuple[float, float]] = []
        try:
            while True:
                time.sleep(0.5)
                finished, waiting = _counts(url)
                if first is None and finished:
                    first = (time.perf_counter(), finished)
                    psutil.cpu_percent(None)  # start the machine-wide CPU reading here
                if sample_rss:
                    children = [c.pid for c in psutil.Process(proc.pid).children()]
                    rss.append((time.perf_counter() - start,
                                _rss_mb(children or [proc.pid]) / max(1, len(children))))
                if finished >= n and waiting == 0:
                    break
                if proc.poll() is not None:
                    log = (folder / "workers.log").read_text()[-3000:]
                    raise SystemExit(f"workers exited early ({proc.returncode}):\n{log}")
            end = time.perf_counter()
            cpu_busy = psutil.cpu_percent(None)
            wall = end - start
            sustained = ((n - first[1]) / (end - first[0])
                         if first and end > first[0] and n > first[1] else n / wall)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        storage = _storage_after_retention(url, home, policy, env)
    return {"workers": workers, "n": n, "wall": wall, "rate": sustained, "rss": rss,
            "cpu_busy": cpu_busy, **storage}


def _storage_after_retention(url: str, home: Path, policy: Path, env: dict[str, str]
                             ) -> dict[str, float]:
    from sqlalchemy import create_engine, text

    from agent.housekeeping import archive_ledger, prune_checkpoints
    from agent.runtime import Runtime
    from agent.settings import Settings

    settings = Settings(home=home, database_url=url, functions_file=policy, retention_days=0)
    with Runtime(settings, actor="bench") as rt:
        before = _db_bytes(url)
        while prune_checkpoints(rt)["pruned"]:
            pass
        while archive_ledger(rt, flush=True)["ledger_archived"]:
            pass
        decisions = len(rt.store.decisions(limit=10**7))
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("VACUUM FULL"))
    engine.dispose()
    after = _db_bytes(url)
    return {"kb_per_decision_before": before / 1024 / decisions,
            "kb_per_decision_after": after / 1024 / decisions}


def _db_bytes(url: str) -> float:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        size = conn.execute(text(
            "select sum(pg_total_relation_size(c.oid)) from pg_class c join pg_namespace n "
            "on n.oid = c.relnamespace where c.relkind = 'r' and n.nspname = 'public'")).scalar()
    engine.dispose()
    return float(size or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="example: python bench/scale.py --decisions 600")
    parser.add_argument("--decisions", type=int, default=600, help="per rate run (default 600)")
    parser.add_argument("--backlog", type=int, default=10_000, help="drain test size")
    parser.add_argument("--workers", default="1,2,4", help="worker counts (default 1,2,4)")
    parser.add_argument("--drain-workers", type=int, default=2)
    parser.add_argument("--pg", default=os.environ.get("DECISIONOPS_TEST_PG_URL", DEFAULT_PG))
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    if args.decisions < 50 or args.backlog < 100 or any(c < 1 for c in counts):
        parser.error("--decisions ≥ 50, --backlog ≥ 100, worker counts ≥ 1")
    results = {}
    for workers in counts:
        print(f"rate run: {workers} worker(s), {args.decisions} decisions …", file=sys.stderr,
              flush=True)
        results[workers] = run(args.pg, workers, args.decisions)
    print(f"backlog: {args.backlog} queued predictions, {args.drain_workers} workers …",
          file=sys.stderr, flush=True)
    drain = run(args.pg, args.drain_workers, args.backlog, sample_rss=True)
    import psutil
    print(f"\n{'workers':>8}{'dec/s':>9}{'wall s':>9}{'CPU %':>7}{'KB/dec':>9}"
          f"{'KB/dec pruned':>15}   (dec/s sustained: from the first finished decision on; "
          f"CPU: the whole machine's, {psutil.cpu_count()} cpus, workers and PostgreSQL)")
    for workers, r in results.items():
        print(f"{workers:>8}{r['rate']:>9.1f}{r['wall']:>9.1f}{r['cpu_busy']:>7.0f}"
              f"{r['kb_per_decision_before']:>9.1f}{r['kb_per_decision_after']:>15.1f}")
    samples = [m for _, m in drain["rss"]]
    half = len(samples) // 2
    print(f"\nbacklog drain: {args.backlog} predictions in {drain['wall']:.0f} s, start-up included "
          f"({drain['rate']:.1f} dec/s, {args.drain_workers} workers); storage after retention "
          f"{drain['kb_per_decision_after']:.1f} KB per decision")
    if samples:
        print(f"worker RSS (MB, per worker): first {samples[0]:.0f}, last {samples[-1]:.0f}, "
              f"peak {max(samples):.0f}; median first half {statistics.median(samples[:half] or samples):.0f}"
              f", second half {statistics.median(samples[half:]):.0f}")
    if 1 in results and 2 in results:
        print(f"ratio: {results[2]['rate'] / results[1]['rate']:.2f}")


if __name__ == "__main__":
    main()
