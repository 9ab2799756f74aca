"""A private, throw-away PostgreSQL cluster for the fault suite, so restarting the
database mid-run disturbs no other test. Needs root (to run the server as the
``postgres`` user) and the PostgreSQL server binaries; CI has both (the test fails there
without them), a developer machine without them skips."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.reliability


@dataclass
class PrivatePostgres:
    bindir: Path
    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", str(self.bindir / "pg_ctl"),
                        "-D", str(self.data), "-l", str(self.data / "server.log"), "-w", *args],
                       check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 "
                   "-c max_connections=200 -c fsync=on")
        self._ctl("-o", options, "start")

    def restart(self) -> None:
        """Crash-restart: stop without a clean shutdown, then start."""
        self._ctl("-m", "immediate", "stop")
        self.start()

    def stop(self) -> None:
        self._ctl("-m", "immediate", "stop")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the fault suite must run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivatePostgres]:
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if os.geteuid() != 0 or not bins or shutil.which("runuser") is None:
        _unavailable("needs root, runuser and the PostgreSQL server binaries")
    bindir = Path(bins[-1]).parent
    data = Path(tempfile.mkdtemp(prefix="dops-pg-", dir="/tmp"))
    os.chmod(data, 0o700)
    shutil.chown(data, "postgres", "postgres")
    subprocess.run(["runuser", "-u", "postgres", "--", str(bindir / "initdb"), "-D", str(data),
                    "-A", "trust", "-U", "postgres", "--no-sync"],
                   check=True, capture_output=True, timeout=120)
    server = PrivatePostgres(bindir, data, _free_port())
    server.start()
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(data, ignore_errors=True)
