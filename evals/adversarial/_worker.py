"""Worker processes of the suite: ``run_in_workers`` starts them and hands out cases one
at a time (the next goes to whichever worker finishes first); a worker (``python -m
evals.adversarial._worker ROOT TEMPLATE``) reads ``<number> <case id>`` lines on stdin,
runs each case under ``ROOT`` and writes its result as one JSON line. Anything else a
case prints goes to the worker's log (``ROOT/worker-N.log``), never into the results.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from decisionops.evals.adversarial._arena import REPO
from decisionops.evals.adversarial._suite import Case, CaseResult, run_case

__all__ = ["main", "run_in_workers"]


def run_in_workers(cases: Sequence[Case], root: Path, template: Path, workers: int,
                   progress: Callable[[CaseResult], None] | None) -> list[CaseResult]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    queue = deque(enumerate(cases, 1))
    results: dict[str, CaseResult] = {}
    procs: list[subprocess.Popen[str]] = []
    selector = selectors.DefaultSelector()

    busy: dict[int, str] = {}
    """pid → the case a worker is running."""

    def feed(proc: subprocess.Popen[str]) -> None:
        assert proc.stdin is not None
        if queue:
            number, case = queue.popleft()
            busy[proc.pid] = case.id
            proc.stdin.write(f"{number} {case.id}\n")
            proc.stdin.flush()
        else:
            busy.pop(proc.pid, None)
            if not proc.stdin.closed:
                proc.stdin.close()

    try:
        for index in range(workers):
            log = (root / f"worker-{index + 1}.log").open("w")
            proc = subprocess.Popen(
                [sys.executable, "-m", "decisionops.evals.adversarial._worker", str(root), str(template)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=env,
                cwd=root)
            log.close()
            procs.append(proc)
            selector.register(proc.stdout, selectors.EVENT_READ, proc)  # type: ignore[arg-type]
            feed(proc)
        while len(results) < len(cases):
            for key, _ in selector.select(timeout=600):
                proc = key.data
                line = proc.stdout.readline()
                if not line:
                    selector.unregister(proc.stdout)
                    if proc.pid not in busy:
                        continue  # it had no case left and ended, as told
                    log = root / f"worker-{procs.index(proc) + 1}.log"
                    raise RuntimeError(f"an adversarial worker died running {busy[proc.pid]} "
                                       f"(exit {proc.wait()}): {log.read_text()[-2000:]}")
                result = CaseResult.from_json(json.loads(line))
                results[result.id] = result
                if progress is not None:
                    progress(result)
                feed(proc)
    finally:
        selector.close()
        for proc in procs:
            if proc.stdin is not None and not proc.stdin.closed:
                proc.stdin.close()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
    return [results[case.id] for case in cases]


def main(argv: Sequence[str]) -> None:
    from decisionops.evals.adversarial import all_cases

    root, template = Path(argv[0]), Path(argv[1])
    out = sys.stdout
    sys.stdout = sys.stderr  # what cases print goes to the log
    cases = {case.id: case for case in all_cases()}
    for line in sys.stdin:
        number, case_id = line.split()
        result = run_case(cases[case_id], root / f"{int(number):03d}-{case_id}", template)
        out.write(json.dumps(result.to_json()) + "\n")
        out.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
