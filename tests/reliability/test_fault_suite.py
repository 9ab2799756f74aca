"""The fault suite: real worker processes on a real PostgreSQL, killed, paused and cut
off from their database while multi-step plans execute against tools that fail, hang
and drop connections after committing. The stored history must show nothing lost,
nothing stuck, nothing duplicated, nothing unapproved, and a ledger that verifies
(checker.py). Every crash point, and random kills on SQLite too: test_crash_and_kill.py.

Scaled to run in about a minute; ``DECISIONOPS_FAULT_SCALE=4`` runs four times longer.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest

from decisionops.agent.models import Prediction
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from tests.reliability.checker import check
from tests.reliability.conftest import PrivatePostgres
from tests.reliability.harness import REPO, SCALE, Workers, database, race_approvals
from tests.support import approver as register_approver

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]


def _policy(folder: Path) -> Path:
    """Sales needs a human (answered by racing approvers below); the rest is automatic."""
    from decisionops.agent.policy import load_policies

    lines = ["functions:"]
    for name, policy in load_policies().functions.items():
        lines += [f"  {name}:", f"    approvers: {json.dumps(list(policy.approvers))}",
                  f"    tools: {json.dumps(list(policy.tools))}",
                  f"    auto_approve: {{max_risk: {'low' if name == 'sales' else 'high'}}}"]
    path = folder / "functions.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _predictions(rt: Runtime, n_churn: int, n_failure: int) -> list[Prediction]:
    accounts = [a["account_id"] for a in rt.enterprise.rows("accounts")
                if "ignore" not in (a["notes"] or "").lower()][:n_churn]
    assets = rt.enterprise.rows("assets")[:n_failure]
    out = [Prediction(id=f"f-churn-{i}", model="churn-gbm", kind="churn", entity_type="account",
                      entity_id=acc, score=0.9, value_at_stake=30_000,
                      features={"segment": "enterprise", "plan": "scale"},
                      observed_at="2026-11-20T08:00:00Z") for i, acc in enumerate(accounts)]
    out += [Prediction(id=f"f-fail-{i}", model="asset-failure-lstm", kind="failure",
                       entity_type="asset", entity_id=a["asset_id"], score=0.8,
                       value_at_stake=50_000,
                       features={"site": a["site"], "asset_class": a["asset_class"],
                                 "spare_part_sku": a["spare_part_sku"],
                                 "remaining_useful_life_hours": 100},
                       observed_at="2026-11-20T08:00:00Z") for i, a in enumerate(assets)]
    return out


def test_faults_lose_nothing_repeat_nothing_and_act_only_on_approval(
        private_pg: PrivatePostgres, tmp_path: Path) -> None:
    rng = random.Random(20261127)
    url = database(private_pg, "faults")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DECISIONOPS_") or k == "DECISIONOPS_FORBID_REAL_LLM"}
    env.update({"DECISIONOPS_HOLDOUT_SHARE": "0",  # see tests/conftest.py
                "DECISIONOPS_DATABASE_URL": url, "DECISIONOPS_HOME": str(tmp_path / "home"),
                "DECISIONOPS_FUNCTIONS_FILE": str(_policy(tmp_path)),
                "DECISIONOPS_LEASE_SECONDS": "5", "DECISIONOPS_TOOL_BACKOFF_SECONDS": "0.02",
                "DECISIONOPS_TOOL_ATTEMPTS": "6", "PYTHONPATH": str(REPO)})
    settings = Settings(**{k.removeprefix("DECISIONOPS_").lower(): v
                           for k, v in env.items()
                           if k.startswith("DECISIONOPS_") and k != "DECISIONOPS_FORBID_REAL_LLM"})
    with Runtime(settings, actor="fault-suite") as rt:
        predictions = _predictions(rt, int(160 * SCALE), int(60 * SCALE))
        rt.ingest(predictions, source="fault-suite")
        for who in ("raj@sales", "mia@sales"):
            register_approver(rt, who)  # registered before the racers start
        tool_faults = {"delay": int(400 * SCALE), "fail_retryable": int(40 * SCALE),
                       "commit_then_fail": int(40 * SCALE)}
        for mode, times in tool_faults.items():
            rt.enterprise.inject_fault("*", mode, times=times, delay_s=0.03)
        workers = Workers(env, tmp_path)
        for i in range(3):
            workers.start(i)
        stop, stats = threading.Event(), {"races": 0, "double_wins": 0}
        approver = threading.Thread(target=race_approvals, args=(rt, stop, stats))
        approver.start()
        faults = {"sigkill": 0, "sigstop": 0, "pg_restart": 0}
        started = time.monotonic()
        deadline = started + 420 * SCALE

        def done() -> bool:
            try:
                with rt.store.reading() as conn:
                    from sqlalchemy import func, select

                    from decisionops.agent.store import _tables as t
                    open_ = conn.scalar(select(func.count()).select_from(t.decisions).where(
                        t.decisions.c.status.not_in(["completed", "failed", "compensated",
                                                     "rejected", "needs_human"])))
                    untriaged = conn.scalar(select(func.count()).select_from(t.predictions)
                                            .where(t.predictions.c.triaged_at.is_(None)))
                    decided = conn.scalar(select(func.count()).select_from(t.decisions))
            except Exception:
                return False
            return open_ == 0 and untriaged == 0 and decided == len(predictions)

        try:
            while time.monotonic() < deadline:
                elapsed = time.monotonic() - started
                if faults["pg_restart"] == 0 and elapsed > 6:
                    private_pg.restart()
                    faults["pg_restart"] += 1
                elif faults["sigstop"] < 2 and elapsed > 3 + 9 * faults["sigstop"]:
                    victim = rng.choice(workers.alive())
                    workers.signal(victim, signal.SIGSTOP)
                    time.sleep(6)  # past its 5 s lease: another worker takes its decision over
                    workers.signal(victim, signal.SIGCONT)
                    faults["sigstop"] += 1
                elif workers.alive() and elapsed < 40 * SCALE:
                    workers.kill(rng.choice(workers.alive()))
                    faults["sigkill"] += 1
                time.sleep(rng.uniform(0.3, 0.8))
                workers.restart_dead()
                if elapsed > 12 and faults["pg_restart"] and done():
                    break
        finally:
            stop.set()
            approver.join()
            workers.stop_all()
        assert done(), "the workers did not finish within the time limit; see logs in " \
                       f"{workers.logs}"
        consumed = sum(tool_faults[f.mode.value] - f.remaining
                       for f in rt.enterprise.faults())
        verdict = check(rt.store, tmp_path / "home" / "enterprise.sqlite")
        injected = sum(faults.values()) + consumed
        print(f"\n{verdict.line(injected)}\n"
              f"  (SIGKILL {faults['sigkill']}, SIGSTOP {faults['sigstop']}, PostgreSQL "
              f"restarts {faults['pg_restart']}, tool faults {consumed}); "
              f"{verdict.decisions} decisions, {verdict.approved_steps} approved steps, "
              f"{verdict.effects} effects; approver races {stats['races']}, "
              f"double wins {stats['double_wins']}; "
              f"{time.monotonic() - started:.0f} s")
        assert verdict.lost == [], verdict.lost[:10]
        assert verdict.stuck == [], verdict.stuck[:10]
        assert verdict.duplicated == [], verdict.duplicated[:10]
        assert verdict.unapproved == [], verdict.unapproved[:10]
        assert verdict.ledger_ok
        assert stats["double_wins"] == 0
        assert faults["sigkill"] >= 4 and consumed > 0
