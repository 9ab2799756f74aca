"""Run the real ``decisionops`` command as a user would: its ``main`` with the user's
arguments, environment and working folder, and its output and exit code.

A call runs in a subprocess when it must (a crash point ends the process; tests about
processes ask for it with ``Cli(..., processes=True)``); otherwise in this process, through
the same ``agent.cli.main``, which saves the 2 s interpreter start-up per call."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def _environment(env: dict[str, str], cwd: Path) -> Iterator[None]:
    saved, here = dict(os.environ), os.getcwd()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(here)
        os.environ.clear()
        os.environ.update(saved)


def _in_process(args: tuple[str, ...], env: dict[str, str], cwd: Path
                ) -> subprocess.CompletedProcess[str]:
    from decisionops.agent.cli import _common, main

    # Rich fixes a console's width from COLUMNS when the console is made (once per
    # process, at import); a command run here must see its own COLUMNS, as a process would.
    for shared in (_common.console, _common.err_console):
        shared.width = None  # type: ignore[assignment]
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with _environment(env, cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except Exception:  # what the interpreter would print before exiting 1
            traceback.print_exc()
            code = 1
    return subprocess.CompletedProcess(["decisionops", *args], code, out.getvalue(),
                                       err.getvalue())


class Cli:
    def __init__(self, cwd: Path, *, processes: bool = False) -> None:
        self.cwd = cwd
        self.processes = processes
        # A clean configuration, but the switch that refuses real LLM endpoints stays on.
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("DECISIONOPS_") or k == "DECISIONOPS_FORBID_REAL_LLM"}
        self.env.update({"DECISIONOPS_HOME": str(cwd / "home"),
                         "DECISIONOPS_TOOL_BACKOFF_SECONDS": "0.01",
                         "DECISIONOPS_HOLDOUT_SHARE": "0",  # see tests/conftest.py
                         "PYTHONPATH": str(REPO), "COLUMNS": "200", "NO_COLOR": "1"})

    def __call__(self, *args: str, code: int | None = 0, env: dict[str, str] | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
        merged = {**self.env, **(env or {})}
        if self.processes or "DECISIONOPS_CRASH_AT" in merged:
            proc = subprocess.run([sys.executable, "-m", "decisionops.agent.cli", *args], cwd=self.cwd,
                                  env=merged, capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL)
        else:
            proc = _in_process(args, merged, self.cwd)
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
