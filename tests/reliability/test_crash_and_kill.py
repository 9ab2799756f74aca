"""Every crash point, and SIGKILL at random moments, on SQLite and on PostgreSQL.

Crash points (``agent.faults.POINTS``): for each point, real ``decisionops`` processes
(``run --once``, or ``approvals approve`` applying the last answer) exit at it
(``DECISIONOPS_CRASH_AT``) on plans that reach it (crash_cases.py): new plans, a revise
leg, multi-wave plans, an all-or-nothing plan compensating. Each case has a data folder
(and database) of its own, so the processes of one case never see another's work and a
dead process's lease lapses while the next case runs. After the crash the loop (``run
--once`` repeated, every request answered) must bring every decision to the end its
answers call for.

Random kills: ``decisionops run`` workers SIGKILLed at seeded random moments of their
work and replaced, while two approvers of each function race to answer every request
through the approval service and the tools misbehave: on SQLite one worker at a time
(the single-loop lock: a killed one is replaced), on PostgreSQL three.

Each backend prints one line, ``sqlite: faults injected N (crash points a, SIGKILL b,
tool faults c); lost 0, stuck 0, duplicated 0, unapproved 0`` (see checker.py), and the
test asserts the zeros. Setup and the recovery run in-process; only what crashes is a
process of its own. ``DECISIONOPS_FAULT_SCALE=4`` runs four times the random kills and
work, and the longer crash cases.
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import select

from decisionops.agent.faults import POINTS
from decisionops.agent.models import Answer, Approve, Reject, Revise
from decisionops.agent.runtime import Runtime
from decisionops.agent.store import Store
from decisionops.agent.store import _tables as t
from decisionops.agent.worker import wait_for
from tests.reliability.checker import Verdict, check
from tests.reliability.crash_cases import RUN, Case, churn, failure
from tests.reliability.harness import (
    SCALE,
    Place,
    Workers,
    database,
    finish,
    open_work,
    race_approvals,
    register_approvers,
)

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]

CRASHED = 86
"""``agent.faults``: the exit status of a process that reached its crash point."""
LEASE_SECONDS = 5.5
"""A dead process's lease has lapsed this long after it died (``Place``: 5 s leases)."""


def test_the_cases_cover_every_crash_point() -> None:
    # after_model_reply needs a model: tests/llm/test_replay.py kills a worker there.
    assert {case.point for case in RUN} == POINTS - {"after_model_reply"}


@dataclass
class _Crash:
    case: Case
    place: Place
    args: list[str]
    proc: subprocess.Popen[str]
    ended: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.case.point}: {self.case.shape}"


def _crash_points(backend: str, place_for: Callable[[str], Place]
                  ) -> tuple[Verdict, int, list[str]]:
    """Run every case; the verdict over all, the crashes, and what went wrong otherwise.

    Pipelined: while one case's process runs, the next case is set up and the cases
    whose dead process's lease has lapsed are recovered (each case has its own store)."""
    problems: list[str] = []
    verdict = Verdict(ledger_ok=True)
    running: _Crash | None = None
    crashed: list[_Crash] = []
    crashes = 0

    def wait(crash: _Crash) -> None:
        nonlocal crashes
        out, err = crash.proc.communicate(timeout=120)
        crash.ended = time.monotonic()
        if crash.proc.returncode == CRASHED:
            crashes += 1
            crashed.append(crash)
        else:
            problems.append(f"{backend} {crash.label}: decisionops {' '.join(crash.args)} "
                            f"exited {crash.proc.returncode}, not at the crash point\n{out}\n{err}")

    def recover(crash: _Crash) -> None:
        nonlocal verdict
        label = f"{backend} {crash.label}"
        with crash.place.runtime() as rt:
            try:
                crash.case.reached(rt, crash.place)
            except AssertionError as exc:
                problems.append(f"{label}: the crash did not happen where the case means "
                                f"({exc!r})")
            refused = finish(rt, timeout=60)
            problems.extend(f"{label}: answer refused: {r}" for r in refused)
            for decision_id, status in crash.case.ends.items():
                got = rt.store.decisions.get(decision_id)
                if got.status != status:
                    problems.append(f"{label}: {decision_id} ended {got.status.value}, not "
                                    f"{status.value} (error {got.error!r})")
            verdict += check(rt.store, crash.place.enterprise_db, label=label)

    for i, case in enumerate(RUN):
        place = place_for(f"crash{i}")
        with place.runtime() as rt:
            register_approvers(rt)
            args = case.prepare(rt)
        if running is not None:
            wait(running)
        running = _Crash(case, place, args, place.spawn(
            *args, env={"DECISIONOPS_CRASH_AT": case.point}))
        while crashed and time.monotonic() > crashed[0].ended + LEASE_SECONDS:
            recover(crashed.pop(0))
    if running is not None:
        wait(running)
    for crash in crashed:
        recover(crash)  # finish() waits for the lease to lapse
    return verdict, crashes, problems


# ---------------------------------------------------------------------- random kills


def _answers(rng: random.Random) -> tuple[Answer, Answer]:
    """What two racing approvers answer: mostly both approve; sometimes one rejects or
    asks for a revision (whoever is recorded first wins)."""
    draw = rng.random()
    if draw < 0.15:
        return Approve(), Reject(reason="fault suite: not now")
    if draw < 0.25:
        return Revise(feedback="fault suite: a 15% discount; repair due within 168 hours"), Approve()
    return Approve(), Approve()


def _tool_faults(rt: Runtime, rng: random.Random) -> dict[int, int]:
    """Arm the tools: a downtime that fails for good (an all-or-nothing plan
    compensates), then delays, retryable failures and commits whose answer is lost, in a
    seeded order. Returns fault id → times armed."""
    armed = {rt.enterprise.inject_fault("operations.schedule_downtime", "fail_permanent"): 1}
    modes = ["delay"] * 6 + ["fail_retryable"] * 2 + ["commit_then_fail"] * 2 + [
        "commit_then_timeout"]
    for _ in range(int(40 * SCALE)):
        times = rng.randint(1, 4)
        armed[rt.enterprise.inject_fault("*", rng.choice(modes), times=times,
                                         delay_s=0.05)] = times
    return armed


def _busy(store: Store, pool: Workers) -> list[int]:
    """The workers holding a decision's lease (mid-leg; a worker's owner id ends with
    its pid)."""
    with store.reading() as conn:
        owners = list(conn.scalars(select(t.decisions.c.lease_owner).where(
            t.decisions.c.lease_owner.is_not(None))))
    return [i for i, p in pool.procs.items()
            if p.poll() is None and any(o.endswith(f":{p.pid}") for o in owners)]


@dataclass
class KillRun:
    verdict: Verdict
    kills: int
    mid_leg: int
    tool_faults: int
    stats: dict[str, int]
    problems: list[str]


def _random_kills(backend: str, place: Place, rng: random.Random) -> KillRun:
    workers = 1 if backend == "sqlite" else 3
    target = max(1, round(3 * SCALE))
    problems: list[str] = []
    with place.runtime() as rt:
        register_approvers(rt)
        rt.ingest([churn(rt, n) for n in range(int(10 * SCALE))]
                  + [failure(rt, n) for n in range(int(4 * SCALE))], source="fault-suite")
        armed = _tool_faults(rt, rng)
        pool = Workers(place.env, place.folder)
        for i in range(workers):
            pool.start(i)
        stop, stats = threading.Event(), {"races": 0, "double_wins": 0}
        racer = threading.Thread(target=race_approvals, args=(rt, stop, stats), kwargs={
            "functions": tuple(rt.policies.functions), "pick": _answers,
            "rng": random.Random(rng.random())})
        racer.start()
        kills = mid_leg = 0
        deadline = time.monotonic() + 150 * SCALE
        try:
            while kills < target and time.monotonic() < deadline and any(
                    open_work(rt.store).values()):
                # A random moment of the loop's work: once a worker holds a lease (start-up
                # takes about 3 s; or after 8 s), up to 0.15 s later.
                wait_for(lambda: bool(_busy(rt.store, pool)), timeout=8, interval=0.05)
                time.sleep(rng.uniform(0.0, 0.15))
                busy = _busy(rt.store, pool)
                candidates = busy or pool.alive()
                if not candidates:
                    pool.restart_dead()
                    continue
                pool.kill(rng.choice(candidates))
                kills += 1
                mid_leg += bool(busy)
                pool.restart_dead()  # SQLite: the killed loop's lock is free again
            while time.monotonic() < deadline and any(open_work(rt.store).values()):
                pool.restart_dead()
                time.sleep(0.2)
        finally:
            stop.set()
            racer.join()
            pool.stop_all()
        problems += pool.unexpected
        left = open_work(rt.store)
        if any(left.values()):
            problems.append(f"{backend} random kills: the workers left {left} within the time "
                            f"limit (logs in {pool.logs}); the loop was run here to the end")
            problems += [f"answer refused: {r}" for r in finish(rt, timeout=60)]
        consumed = sum(armed[f.fault_id] - f.remaining for f in rt.enterprise.faults()
                       if f.fault_id in armed)
        verdict = check(rt.store, place.enterprise_db, label=f"{backend} random kills",
                        describe=partial(_graph_state, rt))
    return KillRun(verdict, kills, mid_leg, consumed, stats, problems)


def _graph_state(rt: Runtime, decision_id: str) -> str:
    """What a decision's checkpoint says (for a finding about a stuck decision)."""
    state = rt.graph.get_state(rt.engine.config(decision_id))
    waiting = [i.value.get("approval_id") or i.value for i in state.interrupts
               if isinstance(i.value, dict)]
    return f"next {list(state.next)}, interrupts {waiting}, outcome {state.values.get('outcome')}"


# ---------------------------------------------------------------------- the test


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_every_crash_point_and_random_kills_lose_and_repeat_nothing(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    began = time.monotonic()
    pg = request.getfixturevalue("private_pg") if backend == "postgresql" else None

    def place_for(name: str) -> Place:
        url = database(pg, f"dops_{name}") if pg is not None else None
        return Place(tmp_path / name, database_url=url)

    verdict, crashes, problems = _crash_points(backend, place_for)
    halfway = time.monotonic()
    kills = _random_kills(backend, place_for("kills"), random.Random(20261201))
    verdict += kills.verdict
    problems += kills.problems
    injected = crashes + kills.kills + kills.tool_faults
    stats = kills.stats
    print(f"\n{backend}: faults injected {injected} (crash points {crashes}, SIGKILL "
          f"{kills.kills}, tool faults {kills.tool_faults}); {verdict.counts()}\n"
          f"  ({len(RUN)} crash cases over {len(POINTS)} points; {kills.mid_leg} kills "
          f"mid-leg; {verdict.decisions} decisions, {verdict.approved_steps} approved steps, "
          f"{verdict.effects} effects; approver races {stats['races']}, double wins "
          f"{stats['double_wins']}, failed answers {stats.get('errors', 0)}; crash points "
          f"{halfway - began:.0f} s, random kills {time.monotonic() - halfway:.0f} s)")
    if kills.stats["double_wins"]:
        problems.append(f"{kills.stats['double_wins']} requests recorded two racing answers")
    findings = verdict.findings + problems
    assert findings == [], "\n".join(findings)
    assert crashes == len(RUN) and kills.kills >= 1
