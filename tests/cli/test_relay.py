"""The supervisor's relay of its workers' stdout (agent.cli._relay), with real pipes and
real child processes: what reaches stdout is whole lines, however the children write
them, with the supervisor's own lines between them."""

from __future__ import annotations

import io
import json
import multiprocessing
import subprocess
import sys
import textwrap
import time

from decisionops.agent.cli._relay import LineRelay


def _child(script: str) -> tuple[subprocess.Popen[bytes], multiprocessing.connection.Connection]:
    """A Python child writing ``script``'s output to a pipe the relay reads (fd ``OUT``)."""
    reader, writer = multiprocessing.Pipe(duplex=False)
    fd = writer.fileno()
    code = f"import os, sys, time\nOUT = {fd}\n" + textwrap.dedent(script)
    proc = subprocess.Popen([sys.executable, "-c", code], pass_fds=(fd,))
    writer.close()
    return proc, reader


class _Closed(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_line_written_in_pieces_reaches_stdout_whole_with_our_own_lines_beside_it() -> None:
    out, warnings = io.BytesIO(), []
    relay = LineRelay(out, warnings.append)
    # A long JSON line written a few bytes at a time, the way a line spills from a
    # buffer or a slow reader splits it, by two children at once.
    script = """
        line = ('{"worker": WORKER, "started": ['
                + ",".join(['"d-{:04d}"'.format(i) for i in range(900)]) + ']}\\n').encode()
        for start in range(0, len(line), 777):
            os.write(OUT, line[start:start + 777])
            time.sleep(0.002)
        """
    children = [_child(script.replace("WORKER", str(n))) for n in (0, 1)]
    for proc, reader in children:
        relay.follow(reader, f"worker (pid {proc.pid})")
    for i in range(40):  # the supervisor's own events meanwhile
        relay.line(json.dumps({"supervisor": "tick", "i": i}))
        time.sleep(0.002)
    for proc, _ in children:
        assert proc.wait(30) == 0
    relay.close()
    lines = [json.loads(line) for line in out.getvalue().decode().splitlines()]
    assert sorted(e["worker"] for e in lines if "worker" in e) == [0, 1]
    assert all(len(e["started"]) == 900 for e in lines if "worker" in e)
    assert [e["i"] for e in lines if "i" in e] == list(range(40))
    assert warnings == []


def test_a_line_cut_short_by_the_childs_death_is_said_not_passed_on() -> None:
    out, warnings = io.BytesIO(), []
    relay = LineRelay(out, warnings.append)
    proc, reader = _child("""
        os.write(OUT, b'{"whole": 1}\\n{"cut": ')
        os.kill(os.getpid(), 9)
        """)
    relay.follow(reader, "worker 3 (pid 42)")
    assert proc.wait(30) == -9
    relay.close()
    assert out.getvalue() == b'{"whole": 1}\n'
    assert warnings == ["worker 3 (pid 42) ended in the middle of a line: its last 8 bytes "
                        "were not passed on"]


def test_once_stdout_is_closed_the_children_are_still_read_and_never_block() -> None:
    warnings: list[str] = []
    relay = LineRelay(_Closed(), warnings.append)  # type: ignore[arg-type]
    # Ten times what a pipe holds: a child nobody read from would block forever.
    proc, reader = _child("""
        for _ in range(10_000):
            os.write(OUT, b"x" * 63 + b"\\n")
        """)
    relay.follow(reader, "worker 0")
    assert proc.wait(30) == 0
    relay.line("an event of our own, dropped too")
    relay.close()
    assert warnings == ["stdout is closed: the workers' output is dropped from now on"]
