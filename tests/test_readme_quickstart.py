"""The README's quickstart works verbatim for a new approver: its shell block is taken
from README.md and run as written with bash in an empty folder (fresh data folder, clean
configuration), so the README cannot drift from the commands. Two lines are not run as
such: ``pip install -e .`` (this test runs in the environment that install made: the
``decisionops`` on PATH is this checkout's) and the long-running ``decisionops serve``,
which is started on a free port until the new approver has signed in to the inbox with
the token ``users token`` printed and seen the requests waiting for them."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def quickstart_block(readme: str) -> str:
    """The first ```bash block of the ``## Quickstart`` section."""
    section = readme.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"^```bash\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert match, "the quickstart has no ```bash block"
    return match.group(1)


def _strip_comment(line: str) -> str:
    return re.sub(r"\s+#\s.*$", "", line).strip()


def _split(block: str) -> tuple[str, str]:
    """(the script to run, the serve command); the install line is checked, not run."""
    lines = block.splitlines()
    commands = [(i, _strip_comment(line)) for i, line in enumerate(lines)]
    installs = [i for i, c in commands if c.startswith("pip install")]
    assert [commands[i][1] for i in installs] == ["pip install -e ."], "one install line"
    serve = [i for i, c in commands if c.startswith("decisionops serve")]
    assert serve == [len(lines) - 1], "`decisionops serve` is the last line (it runs until stopped)"
    script = [("# " + line) if i in installs else line for i, line in enumerate(lines[:-1])]
    return "\n".join(script) + "\n", commands[serve[0]][1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DECISIONOPS_") or k == "DECISIONOPS_FORBID_REAL_LLM"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(HOME=str(folder), COLUMNS="200", NO_COLOR="1")
    return env


def test_the_quickstart_runs_verbatim_and_a_new_approver_can_use_the_inbox(
        tmp_path: Path) -> None:
    script, serve = _split(quickstart_block((REPO / "README.md").read_text("utf-8")))
    env = _environment(tmp_path)
    installed = subprocess.run(["bash", "-c", "command -v decisionops"], env=env,
                               capture_output=True, text=True, check=True).stdout.strip()
    assert Path(installed).parent == Path(sys.executable).parent  # this checkout's install

    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert (tmp_path / ".decisionops").is_dir()  # the default data folder, in this folder
    token = re.search(r"omar@finance: token \S+ issued.*?\n(dops_[\w-]+)", done.stdout,
                      re.DOTALL)
    assert token, done.stdout
    listed = set(re.findall(r"apr_[0-9a-f]+", done.stdout))

    port = _free_port()
    server = subprocess.Popen(["bash", "-c", f"exec {serve} --port {port}"], cwd=tmp_path,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=10) as browser:
            assert browser.get("/inbox").status_code in (200, 303)
            form = browser.get("/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert csrf, form.text
            signed_in = browser.post("/login", data={"token": token.group(1),
                                                     "csrf_token": csrf.group(1),
                                                     "next": "/inbox"})
            assert signed_in.status_code == 303, signed_in.text
            inbox = browser.get("/inbox")
            assert inbox.status_code == 200 and "omar@finance" in inbox.text
            waiting = set(re.findall(r"apr_[0-9a-f]+", inbox.text))
            assert waiting and waiting & listed, inbox.text  # what `approvals list` showed
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=40)
