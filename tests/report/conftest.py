"""Fixtures for outcomes and the value report: a real SQLite store in ``tmp_path``, filled
through the store's own API (ingest, triage, decisions), and the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from decisionops.agent.models import Prediction, TriageAction, TriageVerdict, decision_id_for
from decisionops.agent.store import Store
from decisionops.agent.store import _tables as t
from decisionops.agent.store._outcome_tables import outcome_records

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
"""A time safely in the past, so outcomes after it are not 'in the future'."""

_REASONS = {"act": "act", "hold": "holdout", "drop": "below_threshold"}


class World:
    """Predictions with their triage verdicts and decisions, made through ``Store``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def predict(self, kind: str, entity: str, at: datetime, *, action: str = "act",
                reason: str | None = None, score: float = 0.8, stake: float = 1000.0,
                features: dict[str, Any] | None = None, currency: str = "EUR") -> Prediction:
        return self.predict_many([(kind, entity, at, action)], reason=reason, score=score,
                                 stake=stake, features=features, currency=currency)[0]

    def predict_many(self, specs: list[tuple[str, str, datetime, str]], *,
                     reason: str | None = None, score: float = 0.8, stake: float = 1000.0,
                     features: dict[str, Any] | None = None,
                     currency: str = "EUR") -> list[Prediction]:
        """(kind, entity, time, triage action) each; one ingest and one triage for all."""
        made = [(Prediction(id=f"{kind}-{entity}-{at:%Y%m%dT%H%M}", model="test-model",
                            kind=kind, entity_type="account", entity_id=entity, score=score,
                            value_at_stake=stake, currency=currency,
                            features=features or {"region": "EMEA"},
                            observed_at=at), action) for kind, entity, at, action in specs]
        self.store.predictions.ingest([p for p, _ in made], source="test", actor="test")
        self.store.predictions.record_triage([TriageVerdict(
            prediction_id=p.id, action=TriageAction(action), reason=reason or _REASONS[action],
            expected_value=p.expected_value) for p, action in made], actor="test")
        for p, action in made:
            if action == "act":
                self.store.decisions.create(decision_id_for(p.id), p, playbook=None,
                                            expected_value=p.expected_value, owner="test",
                                            lease_seconds=60)
        return [p for p, _ in made]

    def counts(self) -> tuple[int, int]:
        """(outcome records, ledger entries): what an import may change."""
        with self.store.reading() as conn:
            return (conn.scalar(select(func.count()).select_from(outcome_records)) or 0,
                    conn.scalar(select(func.count()).select_from(t.ledger)) or 0)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "both_backends: run on SQLite and on PostgreSQL "
                            "(when reachable); other tests here use SQLite only")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        both = metafunc.definition.get_closest_marker("both_backends") is not None
        metafunc.parametrize("backend", ["sqlite", pytest.param(
            "postgres", marks=pytest.mark.postgres)] if both else ["sqlite"])


@pytest.fixture
def store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store: a SQLite file in ``tmp_path``, or (tests marked
    ``both_backends``) also a fresh PostgreSQL database."""
    url = (f"sqlite:///{tmp_path / 'store.sqlite'}" if backend == "sqlite"
           else request.getfixturevalue("pg_url"))
    store = Store.open(url)
    yield store
    store.close()


@pytest.fixture
def world(store: Store) -> World:
    return World(store)


@pytest.fixture
def home_world(home: Path) -> Iterator[World]:
    """A SQLite store where the CLI finds it (``home`` fixture: DECISIONOPS_HOME)."""
    store = Store.open(f"sqlite:///{home / 'decisionops.sqlite'}")
    yield World(store)
    store.close()


class Cli:
    """``python -m agent.cli`` in ``cwd`` with ``cwd/home`` as DECISIONOPS_HOME."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DECISIONOPS_")}
        self.env.update({"DECISIONOPS_HOME": str(cwd / "home"), "PYTHONPATH": str(REPO),
                         "COLUMNS": "200", "NO_COLOR": "1", "USER": "tester"})

    def __call__(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "decisionops.agent.cli", *args], cwd=self.cwd,
                              env=self.env, capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
        assert proc.returncode == code, (
            f"decisionops {' '.join(args)} exited {proc.returncode}, expected {code}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc


@pytest.fixture
def cli_process(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


class InProcessCli:
    """``agent.cli.main`` called in this process, with the environment a user would have
    (``home`` fixture: cwd ``tmp_path``, DECISIONOPS_HOME ``tmp_path/home``): the same
    entry point and exit codes as the installed command, without a process start."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys

    def __call__(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        from decisionops.agent.cli import main

        self._capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            main(list(args))
        out = self._capsys.readouterr()
        returncode = exited.value.code if isinstance(exited.value.code, int) else 1
        assert returncode == code, (
            f"decisionops {' '.join(args)} exited {returncode}, expected {code}\n"
            f"stdout:\n{out.out}\nstderr:\n{out.err}")
        return subprocess.CompletedProcess(list(args), returncode, out.out, out.err)


@pytest.fixture
def cli(home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
        ) -> InProcessCli:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("USER", "tester")
    return InProcessCli(capsys)
