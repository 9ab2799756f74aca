"""Benchmark: DecisionOps workers on PostgreSQL.

1. Sustained decisions/s with 1, 2 and 4 worker processes (``decisionops run
   --workers N``), each on a fresh database with the same queue of predictions, under a
   policy that auto-approves every function (so the figure is the loop, not a person).
2. Backlog drain: 10,000 queued predictions, the time until every one is decided.
3. Storage per finished decision after retention (checkpoints pruned, ledger archived),
   PostgreSQL's own sizes of every table and index (after VACUUM).
4. Worker RSS sampled over the drain: first, last, peak and the slope.

Needs a PostgreSQL server (DECISIONOPS_TEST_PG_URL, default postgres@127.0.0.1:5432);
each run creates (and drops first) its own database on it. Every run must finish every
decision: one that makes no progress for ``--stall-seconds`` (past a lapsed lease's
recovery) stops the bench with the unfinished decisions and the workers' log. Worker
deaths (restarted by ``run --workers``) and tick errors are counted from that log and
reported. Ends with ``ratio: <2-worker rate / 1-worker rate>``.

    python bench/scale.py --decisions 600 --backlog 10000
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.decision_loop import _add_accounts, _auto_policy_file, _predictions  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
_TERMINAL = ("completed", "failed", "compensated", "rejected", "needs_human")


def _fresh_db(admin_url: str, name: str) -> str:
    import psycopg

    from decisionops.agent.checkpoints import psycopg_conninfo

    with psycopg.connect(psycopg_conninfo(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def _drop_db(admin_url: str, url: str) -> None:
    import psycopg

    from decisionops.agent.checkpoints import psycopg_conninfo

    with psycopg.connect(psycopg_conninfo(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def _env(url: str, home: Path, policy: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DECISIONOPS_")}
    env.update({"DECISIONOPS_DATABASE_URL": url, "DECISIONOPS_HOME": str(home),
                "DECISIONOPS_FUNCTIONS_FILE": str(policy), "PYTHONPATH": str(REPO),
                "DECISIONOPS_RETENTION_DAYS": "0",
                "DECISIONOPS_HOLDOUT_SHARE": "0",  # as the in-process Settings: none held out
                # Wide stderr lines, so each worker error or exit is one line of the log.
                "COLUMNS": "400"})
    return env


def _queue(url: str, home: Path, policy: Path, n: int) -> None:
    from decisionops.agent.models import Prediction
    from decisionops.agent.runtime import Runtime
    from decisionops.agent.settings import Settings

    settings = Settings(holdout_share=0, home=home, database_url=url, functions_file=policy)
    with Runtime(settings, actor="bench") as rt:
        _add_accounts(rt, n)  # one account each: the reference CRM knows every one
        items = [Prediction.model_validate(p) for p in _predictions(n)]
        for i in range(0, len(items), 2000):
            rt.ingest(items[i:i + 2000], source="bench")


def _counts(url: str) -> tuple[int, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            finished = conn.execute(text(
                "select count(*) from decisions where status = any(:done)"),
                {"done": list(_TERMINAL)}).scalar()
            waiting = conn.execute(text(
                "select count(*) from predictions p where triaged_at is null or "
                "(triage_action='act' and not exists (select 1 from decisions d "
                "where d.prediction_id = p.id))")).scalar()
    finally:
        engine.dispose()
    return int(finished or 0), int(waiting or 0)


def _unfinished(url: str, limit: int = 20) -> str:
    """The decisions not finished and the predictions not decided yet, for a stall
    report: id, status, lease, last error."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            decisions = conn.execute(text(
                "select id, status, lease_owner, lease_until, fence, updated_at, error "
                "from decisions where not (status = any(:done)) order by updated_at limit :n"),
                {"done": list(_TERMINAL), "n": limit}).mappings().all()
            undecided = conn.execute(text(
                "select id, triage_action, triage_reason from predictions p where "
                "triaged_at is null or (triage_action='act' and not exists (select 1 from "
                "decisions d where d.prediction_id = p.id)) order by id limit :n"),
                {"n": limit}).mappings().all()
    finally:
        engine.dispose()
    lines = [f"  decision {d['id']}: status {d['status']}, lease {d['lease_owner']} until "
             f"{d['lease_until']} (fence {d['fence']}), updated {d['updated_at']}, "
             f"error {d['error']!r}" for d in decisions]
    lines += [f"  prediction {p['id']}: triage {p['triage_action']} ({p['triage_reason']}), "
              "no decision" for p in undecided]
    return "\n".join(lines) or "  (none)"


def _log_findings(log: str) -> dict[str, list[str]]:
    """Worker deaths (the supervisor's exit lines), tick errors and tracebacks in the
    workers' stderr while they ran."""
    lines = log.splitlines()
    return {"deaths": [ln for ln in lines if re.match(r"supervisor worker \d+ \(pid \d+\)", ln)],
            "errors": [ln for ln in lines if re.match(r"worker \d+ ! ", ln)],
            "tracebacks": _tracebacks(lines)}


def _tracebacks(lines: list[str]) -> list[str]:
    """Each traceback's last line (the exception) and the frame above it."""
    out = []
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            end = next((j for j in range(i + 1, len(lines))
                        if lines[j] and not lines[j].startswith((" ", "\t"))), len(lines) - 1)
            frame = next((lines[k].strip() for k in range(end - 1, i, -1)
                          if lines[k].strip().startswith("File ")), "")
            out.append(f"{lines[end][:300]}  ({frame[:200]})")
    return out


def _rss_mb(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += psutil.Process(pid).memory_info().rss / 2**20
    return total


def run(admin_url: str, workers: int, n: int, *, sample_rss: bool = False,
        stall_seconds: float = 300.0) -> dict[str, Any]:
    import psutil

    with tempfile.TemporaryDirectory(prefix=f"scale-{workers}-") as tmp:
        folder = Path(tmp)
        url = _fresh_db(admin_url, f"dops_scale_{workers}_{n}")
        policy = _auto_policy_file(folder)
        home = folder / "home"
        _queue(url, home, policy, n)
        env = _env(url, home, policy)
        log_path = folder / "workers.log"
        proc = subprocess.Popen([sys.executable, "-m", "decisionops.agent.cli", "run", "--workers",
                                 str(workers), "--poll", "0.2"], env=env, cwd=folder,
                                stdout=subprocess.DEVNULL, stderr=log_path.open("w"))
        start = time.perf_counter()
        first: tuple[float, int] | None = None
        """When the first decisions were done, and how many: the sustained rate is
        measured from there, so worker start-up (imports, connections) is not in it."""
        rss: list[tuple[float, float]] = []
        progress = (-1, -1)
        progressed = start
        try:
            while True:
                time.sleep(0.5)
                finished, waiting = _counts(url)
                now = time.perf_counter()
                if (finished, waiting) != progress:
                    progress, progressed = (finished, waiting), now
                if first is None and finished:
                    first = (now, finished)
                    psutil.cpu_percent(None)  # start the machine-wide CPU reading here
                if sample_rss:
                    children = [c.pid for c in psutil.Process(proc.pid).children()]
                    rss.append((now - start,
                                _rss_mb(children or [proc.pid]) / max(1, len(children))))
                if finished >= n and waiting == 0:
                    break
                if proc.poll() is not None:
                    log = log_path.read_text()[-3000:]
                    raise SystemExit(f"workers exited early ({proc.returncode}); "
                                     f"{finished} of {n} decisions finished:\n"
                                     f"{_unfinished(url)}\nworkers' log:\n{log}")
                if now - progressed > stall_seconds:
                    log = log_path.read_text()[-6000:]
                    raise SystemExit(
                        f"{workers} worker(s): no progress for {stall_seconds:g} s, "
                        f"{finished} of {n} decisions finished, {waiting} predictions "
                        f"undecided:\n{_unfinished(url)}\nworkers' log:\n{log}")
            end = time.perf_counter()
            # Read before the workers are stopped: exits from here on are the bench's SIGTERM.
            findings = _log_findings(log_path.read_text())
            cpu_busy = psutil.cpu_percent(None)
            wall = end - start
            sustained = ((n - first[1]) / (end - first[0])
                         if first and end > first[0] and n > first[1] else n / wall)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        storage = _storage_after_retention(url, home, policy, env)
    # Kept when the run failed (for a look at it); dropped once measured.
    _drop_db(admin_url, url)
    return {"workers": workers, "n": n, "wall": wall, "rate": sustained, "rss": rss,
            "cpu_busy": cpu_busy, **findings, **storage}


def _storage_after_retention(url: str, home: Path, policy: Path, env: dict[str, str]
                             ) -> dict[str, Any]:
    from sqlalchemy import create_engine, text

    from decisionops.agent.housekeeping import archive_ledger, prune_checkpoints
    from decisionops.agent.runtime import Runtime
    from decisionops.agent.settings import Settings

    settings = Settings(holdout_share=0, home=home, database_url=url, functions_file=policy, retention_days=0)
    with Runtime(settings, actor="bench") as rt:
        before = _db_bytes(url)
        while prune_checkpoints(rt)["pruned"]:
            pass
        while archive_ledger(rt, flush=True)["ledger_archived"]:
            pass
        statuses = rt.store.decisions.counts()
        decisions = sum(statuses.values())
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("VACUUM FULL"))
    engine.dispose()
    after = _db_bytes(url)
    return {"statuses": statuses, "kb_per_decision_before": before / 1024 / decisions,
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
    parser.add_argument("--pg", default=os.environ.get("DECISIONOPS_TEST_PG_URL", DEFAULT_PG),
                        help="admin URL of the PostgreSQL server; each run creates its own "
                             "database there (dropped first if it exists)")
    parser.add_argument("--stall-seconds", type=float, default=300.0,
                        help="fail a run whose decisions make no progress this long (default "
                             "300: past a lapsed lease's recovery)")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    if args.decisions < 50 or args.backlog < 100 or any(c < 1 for c in counts):
        parser.error("--decisions ≥ 50, --backlog ≥ 100, worker counts ≥ 1")
    results = {}
    for workers in counts:
        print(f"rate run: {workers} worker(s), {args.decisions} decisions …", file=sys.stderr,
              flush=True)
        results[workers] = run(args.pg, workers, args.decisions,
                               stall_seconds=args.stall_seconds)
    print(f"backlog: {args.backlog} queued predictions, {args.drain_workers} workers …",
          file=sys.stderr, flush=True)
    drain = run(args.pg, args.drain_workers, args.backlog, sample_rss=True,
                stall_seconds=args.stall_seconds)
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
    runs = [(f"rate run, {w} worker(s)", r) for w, r in results.items()]
    runs.append((f"backlog drain, {args.drain_workers} worker(s)", drain))
    for label, r in runs:
        ended = ", ".join(f"{k} {v}" for k, v in sorted(r["statuses"].items()))
        print(f"{label}: every decision finished ({ended}); {len(r['deaths'])} worker death(s), "
              f"{len(r['errors'])} tick error(s), {len(r['tracebacks'])} traceback(s) "
              "in the workers' log")
        for line in (r["deaths"] + r["errors"])[:10]:
            print(f"  {line}")
        for line in r["tracebacks"][:10]:
            print(f"  traceback: {line}")
    if 1 in results and 2 in results:
        print(f"ratio: {results[2]['rate'] / results[1]['rate']:.2f}")


if __name__ == "__main__":
    main()
