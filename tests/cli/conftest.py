"""Run the real ``decisionops`` command in subprocesses, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


class Cli:
    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        # A clean configuration, but the switch that refuses real LLM endpoints stays on.
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("DECISIONOPS_") or k == "DECISIONOPS_FORBID_REAL_LLM"}
        self.env.update({"DECISIONOPS_HOME": str(cwd / "home"),
                         "DECISIONOPS_TOOL_BACKOFF_SECONDS": "0.01",
                         "PYTHONPATH": str(REPO), "COLUMNS": "200", "NO_COLOR": "1"})

    def __call__(self, *args: str, code: int | None = 0, env: dict[str, str] | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "agent.cli", *args], cwd=self.cwd,
                              env={**self.env, **(env or {})}, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        if code is not None:
            assert proc.returncode == code, (
                f"decisionops {' '.join(args)} exited {proc.returncode}, expected {code}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    def json(self, *args: str, **kw: Any) -> Any:
        return json.loads(self(*args, "--json", **kw).stdout)

    def approvers(self, *names: str) -> None:
        """Register approvers (``dana@finance``: of finance): the CLI answers as one."""
        for name in names:
            function = {"finance": "finance", "sales": "sales", "support": "support",
                        "maint": "maintenance", "ops": "operations",
                        "supply": "supply_chain"}[name.partition("@")[2]]
            self("users", "add", name, "--role", "approver", "--function", function)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return _write
