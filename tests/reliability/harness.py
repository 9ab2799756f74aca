"""What the fault suites share: a place for one run's data (a data folder, and a
database of the private PostgreSQL on that backend), the real CLI and real worker
processes in it, approvers racing through the approval service, and the loop run to the
end in-process (the same ``Worker.tick`` as ``run --once``) with every request answered.

Not here: the faults and the scenarios (the test modules), the verdict (checker.py).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

import psycopg
from sqlalchemy import func, select

from decisionops.agent.checkpoints import psycopg_conninfo
from decisionops.agent.errors import ConflictError, DecisionOpsError
from decisionops.agent.models import Answer, Approve, DecisionStatus, TriageAction, utcnow
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from decisionops.agent.store import Store
from decisionops.agent.store import _tables as t
from tests.reliability.conftest import PrivatePostgres
from tests.support import approver

__all__ = ["REPO", "SCALE", "Place", "Workers", "database", "finish", "open_work",
           "race_approvals", "register_approvers"]

REPO = Path(__file__).resolve().parents[2]
SCALE = float(os.environ.get("DECISIONOPS_FAULT_SCALE", "1"))
"""``DECISIONOPS_FAULT_SCALE=4``: four times the work and the faults, for longer runs."""

_TERMINAL = [s.value for s in DecisionStatus if s.terminal]


def database(private_pg: PrivatePostgres, name: str) -> str:
    """A new, empty database on the private server; its SQLAlchemy URL."""
    with psycopg.connect(psycopg_conninfo(private_pg.url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return private_pg.url.rsplit("/", 1)[0] + f"/{name}"


@dataclass
class Place:
    """One run's data: its folder (SQLite store unless ``database_url``, the reference
    enterprise, logs) and the environment every process of the run gets."""

    folder: Path
    database_url: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        # A clean configuration, but the switch that refuses real LLM endpoints stays on.
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("DECISIONOPS_") or k == "DECISIONOPS_FORBID_REAL_LLM"}
        self.env.update({"DECISIONOPS_HOLDOUT_SHARE": "0",  # see tests/conftest.py
                         "DECISIONOPS_HOME": str(self.home), "PYTHONPATH": str(REPO),
                         # The shortest lease settings allow: a dead worker's lapses soon.
                         "DECISIONOPS_LEASE_SECONDS": "5",
                         "DECISIONOPS_TOOL_BACKOFF_SECONDS": "0.01",
                         "COLUMNS": "200", "NO_COLOR": "1", **self.extra})
        if self.database_url:
            self.env["DECISIONOPS_DATABASE_URL"] = self.database_url

    @property
    def home(self) -> Path:
        return self.folder / "home"

    @property
    def enterprise_db(self) -> Path:
        return self.home / "enterprise.sqlite"

    def settings(self) -> Settings:
        return Settings(**{k.removeprefix("DECISIONOPS_").lower(): v
                           for k, v in self.env.items()
                           if k.startswith("DECISIONOPS_") and k != "DECISIONOPS_FORBID_REAL_LLM"})

    @contextmanager
    def runtime(self, actor: str = "fault-suite") -> Iterator[Runtime]:
        with Runtime(self.settings(), actor=actor) as rt:
            yield rt

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
            ) -> subprocess.CompletedProcess[str]:
        """``decisionops ARGS`` in a process of its own (the caller checks the exit)."""
        return subprocess.run([sys.executable, "-m", "decisionops.agent.cli", *args], cwd=self.folder,
                              env={**self.env, **(env or {})}, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)


    def spawn(self, *args: str, env: dict[str, str] | None = None
              ) -> subprocess.Popen[str]:
        """``decisionops ARGS`` started, not waited for (``communicate`` collects it)."""
        return subprocess.Popen([sys.executable, "-m", "decisionops.agent.cli", *args], cwd=self.folder,
                                env={**self.env, **(env or {})}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


class Workers:
    """``decisionops run`` loops in processes of their own, to be killed and restarted.
    A worker that exits without being killed or stopped is noted in ``unexpected``."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.started: dict[int, float] = {}
        self.killed: set[int] = set()
        self.unexpected: list[str] = []
        self.logs = cwd / "logs"
        self.logs.mkdir(exist_ok=True)

    def start(self, i: int) -> None:
        log = (self.logs / f"worker-{i}.log").open("ab")
        self.procs[i] = subprocess.Popen(
            [sys.executable, "-m", "decisionops.agent.cli", "run", "--poll", "0.1", "--json"],
            cwd=self.cwd, env=self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        self.started[i] = time.monotonic()

    def alive(self) -> list[int]:
        return [i for i, p in self.procs.items() if p.poll() is None]

    def signal(self, i: int, sig: int) -> None:
        self.procs[i].send_signal(sig)

    def kill(self, i: int) -> int:
        """SIGKILL worker ``i``; its pid."""
        proc = self.procs[i]
        proc.kill()
        proc.wait()
        self.killed.add(proc.pid)
        return proc.pid

    def restart_dead(self) -> int:
        dead = [i for i, p in self.procs.items() if p.poll() is not None]
        for i in dead:
            proc = self.procs[i]
            if proc.pid not in self.killed:
                self.unexpected.append(f"worker {i} (pid {proc.pid}) exited {proc.returncode} "
                                       f"on its own; see {self.logs / f'worker-{i}.log'}")
            self.start(i)
        return len(dead)

    def stop_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def register_approvers(rt: Runtime) -> None:
    """Every approver the policies name, as a registered user (``users add``)."""
    for policy in rt.policies.functions.values():
        for name in policy.approvers:
            approver(rt, name)


def open_work(store: Store) -> dict[str, int]:
    """What is not finished: predictions untriaged, actionable ones without a decision,
    decisions not in a terminal state, requests pending. All zero: done."""
    with store.reading() as conn:
        untriaged = conn.scalar(select(func.count()).select_from(t.predictions)
                                .where(t.predictions.c.triaged_at.is_(None)))
        unstarted = conn.scalar(select(func.count()).select_from(t.predictions).where(
            t.predictions.c.triage_action == TriageAction.ACT.value,
            ~select(t.decisions.c.id).where(
                t.decisions.c.prediction_id == t.predictions.c.id).exists()))
        unfinished = conn.scalar(select(func.count()).select_from(t.decisions)
                                 .where(t.decisions.c.status.not_in(_TERMINAL)))
        pending = conn.scalar(select(func.count()).select_from(t.approvals)
                              .where(t.approvals.c.status == "pending"))
    return {"untriaged": untriaged, "unstarted": unstarted, "unfinished": unfinished,
            "pending": pending}


def finish(rt: Runtime, timeout: float = 60) -> list[str]:
    """Run the loop in this process (``run --once``, repeated) and approve every request
    as it appears (the function's first approver), until nothing is left open or
    ``timeout`` passes (the caller checks ``open_work``). Returns the answers the
    approval service refused."""
    refused: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = rt.run_once()
        answered = 0
        for row in rt.store.approvals.list(status="pending", limit=1000):
            name = rt.policies.get(row.function).approvers[0]
            try:
                rt.approvals.answer(row.id, Approve(comment="finish"), by=approver(rt, name))
                answered += 1
            except DecisionOpsError as exc:
                refused[row.id] = f"{row.id} ({row.function}, {row.decision_id}): {exc.message}"
        if not any(open_work(rt.store).values()):
            break
        if not report.did_work and not answered:
            # Nothing to do until a dead worker's lease lapses.
            time.sleep(max(0.0, min(_lease_left(rt.store), deadline - time.monotonic(), 5.0))
                       or 0.2)
    return list(refused.values())


def _lease_left(store: Store) -> float:
    """Seconds until the first lease on an unfinished decision lapses (0: none runs)."""
    with store.reading() as conn:
        until = conn.scalar(select(func.min(t.decisions.c.lease_until)).where(
            t.decisions.c.status.not_in(_TERMINAL), t.decisions.c.lease_until.is_not(None)))
    if until is None:
        return 0.0
    if until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    return max(0.0, (until - utcnow()).total_seconds() + 0.05)


Pick = Callable[[random.Random], tuple[Answer, Answer]]


def race_approvals(rt: Runtime, stop: threading.Event, stats: dict[str, int], *,
                   functions: tuple[str, ...] = ("sales",), pick: Pick | None = None,
                   rng: random.Random | None = None) -> None:
    """Two approvers of the function answer every pending request of ``functions`` at the
    same instant, until ``stop``: both approve, or what ``pick`` draws for the two.
    Counts races, double wins (both recorded: a broken compare-and-set), answers recorded
    by kind (``won:approve``…) and answers that failed otherwise (``errors``: the request
    stays pending and is raced again) in ``stats``."""
    rng = rng or random.Random(0)
    while not stop.is_set():
        try:
            only = functions[0] if len(functions) == 1 else None
            waiting = [row for row in rt.store.approvals.list(function=only, status="pending",
                                                              limit=50 if only else 200)
                       if row.function in functions]
        except Exception:
            time.sleep(0.2)
            continue
        for row in waiting:
            barrier = threading.Barrier(2)
            outcomes: list[str] = []
            who = rt.policies.get(row.function).approvers[:2]
            replies = pick(rng) if pick else (Approve(comment=who[0]), Approve(comment=who[1]))

            def answer(name: str, reply: Answer, approval_id: str = row.id,
                       barrier: threading.Barrier = barrier, outcomes: list[str] = outcomes
                       ) -> None:
                barrier.wait()
                try:
                    rt.approvals.answer(approval_id, reply, by=approver(rt, name))
                    outcomes.append(f"won:{reply.type}")
                except ConflictError:
                    outcomes.append("conflict")
                except Exception:
                    outcomes.append("error")

            racers = [threading.Thread(target=answer, args=(name, reply))
                      for name, reply in zip(who, replies, strict=True)]
            for r in racers:
                r.start()
            for r in racers:
                r.join()
            stats["races"] = stats.get("races", 0) + 1
            wins = [o for o in outcomes if o.startswith("won")]
            stats["double_wins"] = stats.get("double_wins", 0) + (len(wins) > 1)
            for w in wins:
                stats[w] = stats.get(w, 0) + 1
            stats["errors"] = stats.get("errors", 0) + outcomes.count("error")
        time.sleep(0.1)
