"""Test-wide guards and fixtures.

No test may reach the outside network (and so no real LLM): any socket connection to a
non-loopback address fails the test. Local servers (PostgreSQL, scripted LLM servers)
are on 127.0.0.1 and stay reachable.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

ALLOW_OUTSIDE_NETWORK = False

# Agent code refuses to build an LLM client for a non-loopback base URL while this is set
# (agent.llm.check_endpoint); subprocesses started by tests inherit it.
os.environ["DECISIONOPS_FORBID_REAL_LLM"] = "1"
# The product holds back a control group by default (holdout_share 0.05); tests of the
# loop assert what is acted on, so they run without one unless they set it themselves
# (tests of the holdout do; tests/cli/test_predictions.py checks the default and the
# warning when it is 0).
os.environ["DECISIONOPS_HOLDOUT_SHARE"] = "0"

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check(address: object) -> None:
    if ALLOW_OUTSIDE_NETWORK or not isinstance(address, tuple):
        return  # unix sockets are local
    host = str(address[0])
    if host in ("localhost",):
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise RuntimeError(f"tests may not connect to {host!r}: only loopback is allowed "
                       "(no real LLM or outside network in tests)")


def _guarded_connect(self: socket.socket, address: object) -> None:
    _check(address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    _check(address)
    return _real_connect_ex(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty DecisionOps data folder, used through the environment like a user would."""
    folder = tmp_path / "home"
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith("DECISIONOPS_") and key != "DECISIONOPS_FORBID_REAL_LLM":
            monkeypatch.delenv(key)
    monkeypatch.setenv("DECISIONOPS_HOME", str(folder))
    monkeypatch.setenv("DECISIONOPS_HOLDOUT_SHARE", "0")  # see the top of this file
    monkeypatch.setenv("DECISIONOPS_TOOL_BACKOFF_SECONDS", "0.01")
    yield folder


_DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The PostgreSQL server for tests. CI must have it (the test fails there); a
    developer machine without one skips."""
    import psycopg

    from decisionops.agent.checkpoints import psycopg_conninfo

    url = os.environ.get("DECISIONOPS_TEST_PG_URL", _DEFAULT_PG)
    try:
        with psycopg.connect(psycopg_conninfo(url), connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {url} is required in CI: {exc}")
        pytest.skip(f"no PostgreSQL at {url} ({exc.__class__.__name__})")
    return url


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    from decisionops.agent.checkpoints import psycopg_conninfo

    name = f"dops_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg_conninfo(pg_admin_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
