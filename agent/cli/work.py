"""``decisionops run`` (``ingest`` lives in ``agent.cli.ingest``)."""

from __future__ import annotations

import os
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from decisionops.agent.cli._common import console, fail, print_json, runtime, say, settings
from decisionops.agent.errors import LoopAlreadyRunning
from decisionops.agent.looplock import LoopLock
from decisionops.agent.models import utcnow

if TYPE_CHECKING:
    from decisionops.agent.runtime import Runtime
    from decisionops.agent.worker import TickReport

__all__ = ["run"]


def run(
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    workers: Annotated[int, typer.Option(
        "--workers", min=1, max=64,
        help="Worker processes for the continuous loop (more than 1 needs PostgreSQL).")] = 1,
    poll: Annotated[float, typer.Option(
        "--poll", min=0.05, max=3600, help="Seconds to wait when there is no work.")] = 1.0,
    max_restarts: Annotated[int, typer.Option(
        "--max-restarts", min=0, max=1000,
        help="With --workers N: restarts of one worker tolerated within --restart-window; "
        "one more death stops all workers and exits 1.")] = 5,
    restart_window: Annotated[float, typer.Option(
        "--restart-window", min=1, max=86400,
        help="With --workers N: seconds over which a worker's deaths are counted.")] = 300.0,
    restart_backoff: Annotated[float, typer.Option(
        "--restart-backoff", min=0.01, max=60, hidden=True,
        help="First wait before restarting a dead worker (doubles up to 60 s); for tests."
    )] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    planner: Annotated[str | None, typer.Option(
        "--planner", help="playbook, llm or hybrid; overrides the planner setting for this run "
        "(llm and hybrid need DECISIONOPS_LLM_BASE_URL and DECISIONOPS_LLM_MODEL).")] = None,
) -> None:
    """Pick up work: triage new predictions, start decisions for actionable ones, apply
    approvals answered since the last pass, carry on decisions whose worker stopped, and
    run the housekeeping passes. Without --once it runs until SIGTERM/Ctrl-C. On SQLite
    one loop runs per data folder: while `run` or `serve` loops there, another is refused.

    With --workers N (PostgreSQL) this process supervises N worker processes: one that
    dies is reported (with --json also as a {"supervisor": "worker_exited", …} line) and
    restarted after a backoff of 1 s doubling to 60 s; one that dies more than
    --max-restarts times within --restart-window seconds stops them all (exit 1).
    SIGTERM/Ctrl-C stops every worker (SIGKILL after 30 s); exit 0 when they stopped cleanly.

    Example: decisionops run --once

    Example: DECISIONOPS_LLM_BASE_URL=… DECISIONOPS_LLM_MODEL=… decisionops run --once --planner llm

    Example: DECISIONOPS_DATABASE_URL=postgresql+psycopg://… decisionops run --workers 4

    Example: decisionops run --workers 4 --max-restarts 3 --restart-window 600 --json
    """
    if planner is not None and planner not in ("playbook", "llm", "hybrid"):
        raise fail(f"--planner: {planner!r} is not one of playbook, llm, hybrid")
    if once and workers > 1:
        raise fail("--workers: one pass (--once) runs in this process; several workers are "
                   "for the continuous loop (drop --once)", field="--workers")
    warning = settings().uplift_warning
    if warning and not (once and as_json):  # --once --json carries it in the summary
        say("[yellow]warning:[/] {}", warning, err=True, highlight=False)
    if not once:
        from decisionops.agent.cli.loop import run_loop

        if planner is not None:
            # Through the environment, so the worker processes it spawns use it too.
            os.environ["DECISIONOPS_PLANNER"] = planner
        run_loop(workers=workers, poll_seconds=poll, as_json=as_json,
                 max_restarts=max_restarts, restart_window=restart_window,
                 restart_backoff=restart_backoff)
        return
    overrides = {"planner": planner} if planner else {}
    lock = LoopLock(settings(**overrides), "run --once")  # one loop per SQLite folder
    try:
        lock.acquire()
    except LoopAlreadyRunning as exc:
        raise fail(exc.message, status=409) from None
    try:
        with runtime(in_force=False, **overrides) as rt:  # the loop: not on a broken file
            since = utcnow()
            report = rt.run_once()
            queued = rt.store.predictions.queue_depth()
            pending = sum(rt.store.approvals.pending_count().values())
            fallbacks = _fallbacks(rt, report, since)
    finally:
        lock.release()
    summary = report.summary()
    if as_json:
        print_json({**summary, "queued": queued, "pending_approvals": pending,
                    "fallbacks": fallbacks, "warnings": [warning] if warning else []})
        return
    console.print(f"triaged {report.triaged} (act {summary['act']}, dropped {summary['drop']}, "
                  f"held {summary['hold']}, needs a human {summary['needs_human']}); started "
                  f"{report.started} decisions; applied answers to {report.resumed}; carried on "
                  f"{report.recovered}")
    if any(report.housekeeping.values()):
        console.print("housekeeping: " + ", ".join(f"{k} {v}" for k, v in
                                                   report.housekeeping.items() if v))
    asked = sum(len(r.pending_approvals) for results in report.results.values()
                for r in results)
    if pending:  # every request waiting, not only those this pass asked
        console.print(f"{pending} approval request(s) waiting"
                      + (f" ({asked} asked in this pass)" if asked != pending else "")
                      + ": decisionops approvals list")
    if fallbacks:
        # Otherwise a pass whose model was down looks like one the model planned.
        to_people = [f for f in fallbacks if f["to"] == "human"]
        if to_people:  # no plan was drafted: the fallback is a person
            console.print(f"{len(to_people)} prediction(s) sent to a person, the model "
                          f"unavailable (last: {to_people[-1]['reason']}): decisionops "
                          "predictions queue", highlight=False)
        if len(to_people) < len(fallbacks):
            drafted = [f for f in fallbacks if f["to"] != "human"]
            console.print(f"{len(drafted)} plan(s) drafted by the fallback, not the model "
                          f"(last: {drafted[-1]['reason']}; then {drafted[-1]['to']}): "
                          f"decisionops plan explain {drafted[-1]['decision_id']}",
                          highlight=False)
    if queued:
        # A pass starts at most a batch (the planning slots, with a model).
        console.print(f"{queued} prediction(s) still queued: run another pass "
                      "(decisionops run --once), or keep the loop running (decisionops run)")
    if report.handed_over:  # another worker carries them on: not errors
        console.print(f"{len(report.handed_over)} decision(s) handed over to another worker "
                      f"midway (last: {report.handed_over[-1]}); a lease shorter than a leg's "
                      "work does this (lease_seconds)", highlight=False)
    for error in report.errors:
        say("  [yellow]![/] {}", error, err=True, highlight=False)


def _fallbacks(rt: Runtime, report: TickReport, since: datetime) -> list[dict[str, Any]]:
    """The LLM planner's fallbacks in this pass (its ``planner.fallback`` ledger entries
    for the decisions the pass worked on): decision, cause, reason, and to what."""
    found = []
    for results in report.results.values():
        for result in results:
            found += [{"decision_id": result.decision_id, "cause": entry.body.get("cause"),
                       "reason": entry.body.get("reason"), "to": entry.body.get("to")}
                      for entry in rt.store.ledger.entries(result.decision_id)
                      if entry.event == "planner.fallback" and entry.at >= since]
    return found
