"""Benchmark: concurrent planning with an LLM planner that takes ``--latency`` s a call.

``--decisions`` distinct actionable churn predictions (one per account of the reference
enterprise, plan cache off, so every decision needs its own model call) are planned by

1. one worker on SQLite (``Worker.run``, ``planner_concurrency`` slots, in this process);
2. ``--workers`` worker processes on PostgreSQL (``decisionops run --workers N``);
3. the baseline, in the same run: one worker planning one decision at a time
   (``planner_concurrency 1``) on ``--baseline`` of them.

The model is the scripted OpenAI-compatible server (real ``openai`` client, loopback
HTTP) in a process of its own, so its threads do not share the workers' GIL; it sleeps
``--latency`` s, then submits the playbook plan the prompt quotes (a careful model: one
call per draft). Timed: from the intake, once every worker is in its loop (its model
client built), until no decision is still planning.

Printed per configuration: decisions/s; ``overlap:`` (sum of the LLM call seconds the
workers recorded / wall seconds: the calls in flight on average);
``llm_calls_per_decision:``; ``wasted_llm_calls:`` (calls beyond one per stored plan
version: a decision planned twice, a draft thrown away); worker crashes (PostgreSQL:
``worker_exited`` lines of the supervisor); on Linux, the CPU a decision cost the
workers, the database server and the model process in the timed window, and
``overlap_ceiling``: the LLM call seconds over the least wall that CPU allows on this
machine's cores (overlap cannot pass it, however many calls are in flight). Ends with
``ratio:`` (SQLite concurrent decisions/s ÷ baseline decisions/s). Goals: overlap ≥ 16
(SQLite), ≥ 48 (PostgreSQL, 4 workers), wasted 0, crashes 0.

    python bench/planning.py --decisions 200 --latency 0.5 --workers 4
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from decisionops.agent.models import Prediction  # noqa: E402
from decisionops.agent.runtime import Runtime  # noqa: E402
from decisionops.agent.settings import Settings  # noqa: E402
from decisionops.agent.worker import Worker  # noqa: E402

PG_ADMIN = os.environ.get("DECISIONOPS_TEST_PG_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


_POLL = 0.1
"""How often the bench looks whether every decision was planned. In the SQLite run it
looks from the worker's own process: every look takes the interpreter from the worker's
threads (a look each 20 ms took ~5 % of the worker's CPU time); 0.1 s adds at most that
much to a wall time of several seconds."""


def serve_model(latency: float) -> None:
    """The model process: prints its URL, answers until SIGTERM, then prints its count."""
    from decisionops.evals.scripted import ScriptedServer, careful_model

    calls = [0]
    lock = threading.Lock()

    def respond(body: dict[str, Any]) -> dict[str, Any]:
        with lock:
            calls[0] += 1
        time.sleep(latency)
        return careful_model(body)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with ScriptedServer(respond) as server:
        print(server.url, flush=True)
        stop.wait()
    print(f"calls {calls[0]}", flush=True)


class Model:
    def __init__(self, latency: float) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve-model",
                                      "--latency", str(latency)],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()

    def close(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        return int(out.split()[-1])


def predictions(rt: Runtime, n: int, tag: str) -> list[Prediction]:
    accounts = [a["account_id"] for a in rt.enterprise.rows("accounts")]
    if n > len(accounts):
        raise SystemExit(f"--decisions {n}: the reference enterprise has {len(accounts)} accounts")
    return [Prediction(id=f"{tag}-{i}", model="churn-gbm", kind="churn", entity_type="account",
                       entity_id=account, score=0.9, value_at_stake=40_000,
                       features={"segment": "mid_market", "plan": "scale"},
                       observed_at="2026-11-20T08:00:00Z")
            for i, account in enumerate(accounts[:n])]


def settings(home: Path, url: str, **more: Any) -> Settings:
    return Settings(holdout_share=0, home=home, planner="llm", llm_base_url=url, llm_model="bench-model",
                    llm_mode="tools", plan_cache_ttl_hours=0, llm_timeout_seconds=120,
                    **more)


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_of(pids: list[int]) -> dict[int, float]:
    """pid → CPU seconds (user + system) the process has used so far (Linux ``/proc``;
    left out where it cannot be read)."""
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / _TICK
    return out


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def database_pids() -> list[int]:
    """The PostgreSQL server's processes on this machine (its backends included)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


class CPU:
    """CPU seconds spent during the timed window: by the workers, by the database server
    (PostgreSQL), by the model process. The wall is at least their sum over the cores,
    and at least a worker process's share (its Python runs on one core at a time), so
    ``overlap_ceiling`` (LLM call seconds ÷ that least wall) is the most overlap this
    machine allows for this much CPU a decision, however many calls are in flight."""

    def __init__(self, model: Model, workers: Callable[[], list[int]], *, processes: int,
                 database: bool) -> None:
        self.model, self.workers, self.database = model, workers, database
        self.processes = processes
        self.start = self._now()

    def _now(self) -> tuple[dict[int, float], ...]:
        return (cpu_of(self.workers()), cpu_of(database_pids() if self.database else []),
                cpu_of([self.model.proc.pid]))

    def figures(self, decisions: int, llm_seconds: float) -> dict[str, float]:
        # Per process: one that ended in the window (a database backend) took its CPU
        # with it, so it is left out rather than counted as negative.
        spent = [sum(t - before.get(pid, 0.0) for pid, t in after.items())
                 for before, after in zip(self.start, self._now(), strict=True)]
        if not spent[0]:
            return {}  # not readable here
        out = {"worker_cpu_ms_per_decision": round(1000 * spent[0] / decisions, 1)}
        if self.database:
            out["database_cpu_ms_per_decision"] = round(1000 * spent[1] / decisions, 1)
        out["model_cpu_ms_per_decision"] = round(1000 * spent[2] / decisions, 1)
        least_wall = max(sum(spent) / (os.cpu_count() or 1), spent[0] / self.processes)
        out["overlap_ceiling"] = round(llm_seconds / least_wall, 1)
        return out


def figures(rt: Runtime, wall: float, decisions: int, cpu: CPU) -> dict[str, float]:
    calls = rt.store.llm.llm_calls(limit=1_000_000)
    seconds = sum((c["latency_ms"] or 0) for c in calls) / 1000
    drafts = {(c["decision_id"], c["plan_version"]) for c in calls}
    stored = sum(len(rt.store.plans.records(d.id)) for d in rt.store.decisions.list(limit=100_000))
    return {"decisions": decisions, "wall_s": round(wall, 2),
            "decisions_per_s": round(decisions / wall, 2),
            "overlap": round(seconds / wall, 1),
            "llm_calls_per_decision": round(len(calls) / decisions, 3),
            "wasted_llm_calls": len(calls) - stored,
            "duplicate_drafts": len(calls) - len(drafts),
            **cpu.figures(decisions, seconds)}


def listening(rt: Runtime) -> int:
    """Worker loops listening for answers (LISTEN) on this database."""
    from sqlalchemy import text

    with rt.store.reading() as conn:
        return int(conn.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE 'LISTEN %'")))


def planned(rt: Runtime) -> int:
    counts = rt.store.decisions.counts()
    return sum(v for k, v in counts.items() if k != "planning")


def run_sqlite(model: Model, n: int, concurrency: int, tag: str) -> dict[str, float]:
    url = model.url
    with tempfile.TemporaryDirectory() as tmp, \
            Runtime(settings(Path(tmp), url, planner_concurrency=concurrency)) as rt:
        worker = Worker(rt)
        loop = threading.Thread(target=worker.run, daemon=True)
        loop.start()
        # Timed from the intake, once the worker is in its loop (its model client built),
        # as the PostgreSQL run's workers are, not from its start-up.
        while not rt.planner.ready:
            time.sleep(0.05)
        cpu = CPU(model, lambda: [os.getpid()], processes=1, database=False)  # worker: here
        started = time.perf_counter()
        rt.ingest(predictions(rt, n, tag), source="bench")
        while planned(rt) < n:
            time.sleep(_POLL)
        wall = time.perf_counter() - started
        result = figures(rt, wall, n, cpu)
        worker.stop()
        loop.join(timeout=120)
        return result


def run_postgres(model: Model, n: int, workers: int, tag: str) -> dict[str, float]:
    url = model.url
    import psycopg

    from decisionops.agent.checkpoints import psycopg_conninfo

    name = f"bench_planning_{os.getpid()}"
    admin = psycopg_conninfo(PG_ADMIN)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    db = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        with tempfile.TemporaryDirectory() as tmp, \
                Runtime(settings(Path(tmp), url, database_url=db)) as rt:
            env = {**os.environ, "DECISIONOPS_HOME": tmp, "DECISIONOPS_DATABASE_URL": db,
                   "DECISIONOPS_PLANNER": "llm", "DECISIONOPS_LLM_BASE_URL": url,
                   "DECISIONOPS_LLM_MODEL": "bench-model", "DECISIONOPS_LLM_MODE": "tools",
                   "DECISIONOPS_PLAN_CACHE_TTL_HOURS": "0",
                   # as settings() above: none held out, every prediction is planned
                   "DECISIONOPS_HOLDOUT_SHARE": "0",
                   "DECISIONOPS_LLM_TIMEOUT_SECONDS": "120"}
            log = Path(tmp) / "workers.log"
            with log.open("w") as out:
                proc = subprocess.Popen([sys.executable, "-m", "decisionops.agent.cli", "run", "--workers",
                                         str(workers), "--json"],
                                        env=env, stdout=out, stderr=subprocess.STDOUT)
                try:
                    # Timed from the intake, once every worker is in its loop (listening
                    # for answers), not from the processes' start-up.
                    while listening(rt) < workers:
                        if proc.poll() is not None:
                            raise SystemExit(f"the workers stopped:\n{log.read_text()[-3000:]}")
                        time.sleep(0.05)
                    cpu = CPU(model, lambda: [proc.pid, *children(proc.pid)],
                              processes=workers, database=True)
                    started = time.perf_counter()
                    rt.ingest(predictions(rt, n, tag), source="bench")
                    while planned(rt) < n:
                        if proc.poll() is not None:
                            raise SystemExit(f"the workers stopped:\n{log.read_text()[-3000:]}")
                        time.sleep(_POLL)
                    wall = time.perf_counter() - started
                    result = figures(rt, wall, n, cpu)
                finally:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(timeout=60)
            events = [json.loads(line) for line in log.read_text().splitlines()
                      if line.startswith("{")]
            # A worker that died (its exit before the stop, or an exit code but 0).
            stop = next((i for i, e in enumerate(events) if e.get("supervisor") == "stopping"),
                        len(events))
            result["worker_crashes"] = sum(
                1 for i, e in enumerate(events) if e.get("supervisor") == "worker_exited"
                and (i < stop or e.get("exitcode") != 0))
            result["tick_errors"] = sum(len(e.get("errors", [])) for e in events)
            result["handed_over"] = sum(len(e.get("handed_over", [])) for e in events)
            if result["worker_crashes"] or result["tick_errors"]:
                print(log.read_text()[-4000:], file=sys.stderr)
            return result
    finally:
        if not os.environ.get("BENCH_KEEP_DB"):
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def ceiling(result: dict[str, float]) -> str:
    if "overlap_ceiling" not in result:
        return ""
    return (f"; at most {result['overlap_ceiling']} on {os.cpu_count()} cores for the CPU "
            "a decision cost in this run")


def show(label: str, result: dict[str, float]) -> None:
    print(f"{label}: " + ", ".join(f"{k} {v}" for k, v in result.items()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: python bench/planning.py --decisions 200 --latency 0.5 --workers 4")
    parser.add_argument("--decisions", type=int, default=200,
                        help="distinct actionable predictions planned (default 200)")
    parser.add_argument("--latency", type=float, default=0.5,
                        help="seconds the scripted model takes per call (default 0.5)")
    parser.add_argument("--workers", type=int, default=4,
                        help="PostgreSQL worker processes (default 4)")
    parser.add_argument("--baseline", type=int, default=16,
                        help="decisions the one-at-a-time baseline plans")
    parser.add_argument("--no-postgres", action="store_true",
                        help="skip the PostgreSQL run (SQLite only)")
    parser.add_argument("--serve-model", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for name in ("decisions", "workers", "baseline"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, not {getattr(args, name)}")
    if args.latency < 0:
        parser.error(f"--latency must be 0 or more seconds, not {args.latency}")
    if args.serve_model:
        serve_model(args.latency)
        return
    print(f"load: {os.getloadavg()[0]:.2f} (1 min), cores: {os.cpu_count()}, "
          f"latency {args.latency} s a call", flush=True)
    model = Model(args.latency)
    try:
        baseline = run_sqlite(model, args.baseline, 1, "base")
        show("baseline (sqlite, 1 at a time)", baseline)
        concurrent = run_sqlite(model, args.decisions, Settings().planner_concurrency,
                                "sqlite")
        show(f"sqlite, 1 worker, planner_concurrency {Settings().planner_concurrency}",
             concurrent)
        if not args.no_postgres:
            pg = run_postgres(model, args.decisions, args.workers, "pg")
            show(f"postgres, {args.workers} workers", pg)
    finally:
        calls = model.close()
    print(f"model calls served: {calls}")
    print(f"overlap: {concurrent['overlap']} (goal >= 16)" + ceiling(concurrent))
    if not args.no_postgres:
        print(f"overlap_postgres_{args.workers}_workers: {pg['overlap']} (goal >= 48)"
              + ceiling(pg))
    print(f"wasted_llm_calls: {concurrent['wasted_llm_calls']}"
          + ("" if args.no_postgres else f" (postgres {pg['wasted_llm_calls']})"))
    print(f"llm_calls_per_decision: {concurrent['llm_calls_per_decision']}")
    print(f"ratio: {concurrent['decisions_per_s'] / baseline['decisions_per_s']:.1f}")


if __name__ == "__main__":
    main()
