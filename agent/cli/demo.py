"""``decisionops demo``: the whole loop on the bundled sample predictions.

Ingest → triage → plan → approvals (answered by bundled demo personas, or by the person
at the terminal with ``--interactive``) → execution against the reference enterprise →
summary. Re-running says what is already done instead of repeating it.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from importlib import resources
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from decisionops.agent.approvals import Approver
from decisionops.agent.cli._common import (
    console,
    err_console,
    fail,
    print_table,
    runtime,
    say,
    settings,
    styled,
)
from decisionops.agent.errors import LoopAlreadyRunning
from decisionops.agent.hashing import digest
from decisionops.agent.looplock import LoopLock
from decisionops.agent.models import ApprovalStatus, Approve, Edit, Reject, TriageAction
from decisionops.agent.report.simulate import simulate_and_record
from decisionops.agent.sources import read_file
from decisionops.agent.store.ledger import verify as verify_chain
from decisionops.agent.worker import Worker

__all__ = ["demo", "demo_answer"]

SAMPLES = ("churn.csv", "failure.jsonl", "stockout.csv")


def demo_answer(request: dict[str, Any], prediction: dict[str, Any]) -> Any:
    """What the bundled demo persona of the request's function answers. Deterministic,
    and varied enough to show every path: approve, edit within limits, reject."""
    steps = {s["id"]: s for s in request["steps"]}
    function = request["function"]
    features = prediction.get("features", {})
    if function == "finance":
        credit = steps.get("goodwill_credit")
        if credit and credit["arguments"].get("amount", 0) > 150:
            return Edit(arguments={"goodwill_credit": {"amount": 150}},
                        comment="demo: credits above 150 are trimmed")
    if function == "sales":
        offer = steps.get("retention_offer")
        if (offer and features.get("segment") == "smb"
                and offer["arguments"].get("discount_pct", 0) >= 20):
            return Reject(reason="demo: SMB accounts get at most 10% off")
    if function == "supply_chain" and int(digest(request["decision_id"])[:2], 16) < 24:
        return Reject(reason="demo: the transfer lane is closed this week")
    return Approve(comment="demo persona")


def _ask(request: dict[str, Any], prediction: dict[str, Any]) -> Any | None:
    console.rule(f"{request['function']} · {request['approval_id']}")
    console.print(f"{prediction['kind']} {prediction['entity_id']} score {prediction['score']:.2f}"
                  f" · why asked: {request['reason']}")
    for step in request["steps"]:
        say("  [cyan]{}[/] {} {}", step["id"], step["tool"], step["arguments"])
    choice = typer.prompt("[a]pprove, [r]eject, [s]kip", default="a").strip().lower()
    if choice.startswith("a"):
        return Approve(comment="interactive")
    if choice.startswith("r"):
        return Reject(reason=typer.prompt("reason"))
    return None


def demo(
    reset: Annotated[bool, typer.Option("--reset", help="Delete the demo data folder first.")
                     ] = False,
    interactive: Annotated[bool, typer.Option(
        "--interactive", help="Ask you for each approval instead of the demo personas.")] = False,
) -> None:
    """Run the whole loop on the bundled sample predictions, embedded, nothing to set up.

    Example: decisionops demo --reset
    """
    if "DECISIONOPS_HOLDOUT_SHARE" not in os.environ:
        # The demo keeps a control group so the value report can show uplift.
        os.environ["DECISIONOPS_HOLDOUT_SHARE"] = "0.2"
    conf = settings()
    lock = LoopLock(conf, "demo")  # the demo runs the loop: not beside `run` or `serve`
    try:
        lock.probe()  # before --reset removes the folder a running loop works in
        if reset and conf.home.exists():
            shutil.rmtree(conf.home)
            say("[dim]removed {}/[/]", conf.home)
        lock.acquire()
    except LoopAlreadyRunning as exc:
        raise fail(exc.message, status=409) from None
    with lock, runtime(actor="demo", in_force=False) as rt:
        rt.enterprise.seed()
        console.rule(styled("[bold]1. ingest"))
        samples: set[str] = set()
        """The sample predictions' ids: the demo's personas answer their requests and
        its simulator gives them outcomes; another prediction in the folder is the
        user's (trial 32: a second demo approved those too)."""
        for name in SAMPLES:
            ref = resources.files("decisionops.agent") / "data" / "samples" / name
            with resources.as_file(ref) as path:
                batch = read_file(path)
            result = rt.ingest(batch.predictions, source=f"sample:{name}")
            samples.update(p.id for p in batch.predictions)
            note = f", {len(batch.errors)} rejected" if batch.errors else ""
            console.print(f"{name}: {batch.rows_read} rows → {len(result.new)} new, "
                          f"{len(result.duplicates)} already ingested{note}")
        console.rule(styled("[bold]2. triage"))
        triaged = rt.triage_pending()
        reasons = Counter((v.action.value, v.reason) for v in triaged.verdicts)
        if not triaged.verdicts:
            console.print("nothing new to triage (already done)")
        for (action, reason), n in sorted(reasons.items()):
            console.print(f"  {action:<5} {reason:<20} {n}")
        console.rule(styled("[bold]3. plan and route"))
        worker = Worker(rt, batch=100)
        todo = rt.store.predictions.queue_depth()
        started, errors = 0, []
        with _progress() as progress:
            task = progress.add_task("starting decisions", total=todo)
            while True:
                report = worker.tick()
                started += report.started
                errors += report.errors
                progress.advance(task, report.started)
                if not report.started:
                    break
        waiting, others = _samples_requests(rt, samples)
        console.print(f"{started} decisions started; {len(waiting)} approval requests waiting")
        if others:
            # The personas answer the samples' requests only (trial 32: a second demo
            # approved the user's own pending requests, and the next pass ran them).
            say("[yellow]{} request(s) of predictions not from the demo's samples wait for "
                "people: the demo personas answer only the samples'[/]", others)
        print_table("approval requests (first 8)", ["id", "function", "steps", "why asked"],
                    [[a.id, a.function, ", ".join(s.id for s in a.request.steps), a.reason]
                     for a in waiting[:8]], empty="none waiting")
        console.rule(styled("[bold]4. approvals"))
        if not interactive:
            say("[yellow]answering as the bundled demo approvers (demo personas, not people, "
                "registered as approvers); use --interactive to answer yourself[/]")
        personas = _personas(rt)
        answered: Counter[tuple[str, str]] = Counter()
        for round_no in range(3):
            if round_no:
                # Plans whose previews no longer held when they were about to run (another
                # decision moved the same stock or credited the same account) came back.
                say("[yellow]{} request(s) came back: what their steps would change moved "
                    "since they were routed (impact preview); the approvers answer the new "
                    "versions[/]", len(waiting))
            _answer_all(rt, waiting, personas, answered, interactive)
            if round_no == 0:
                for (function, kind), n in sorted(answered.items()):
                    if kind:
                        console.print(f"  {function:<13} {kind:<8} {n}")
                console.rule(styled("[bold]5. execute"))
            todo = len(rt.store.approvals.decisions_with_answers(limit=100_000))
            with _progress() as progress:
                task = progress.add_task("executing approved steps", total=todo)
                while True:
                    report = worker.tick()
                    errors += report.errors
                    progress.advance(task, report.resumed)
                    if not report.did_work:
                        break
            waiting, _ = _samples_requests(rt, samples)
            if not waiting:
                break
        for error in errors:
            say("  [yellow]![/] {}", error, err=True, highlight=False)
        console.rule(styled("[bold]6. outcomes (SIMULATED)"))
        sim = simulate_and_record(rt.store, actor="demo", seed=0, only=samples)
        say("[yellow]simulated, not observed:[/] {} new outcomes ({} treated, {} control "
            "group)", len(sim.recorded), sim.treated, sim.control)
        _summary(rt)


def _samples_requests(rt: Any, samples: set[str]) -> tuple[list[Any], int]:
    """The pending requests of decisions on the sample predictions (what the demo's
    personas may answer), and how many others are pending (the user's own
    predictions': people answer those)."""
    pending = rt.store.approvals.list(status=ApprovalStatus.PENDING.value, limit=100_000)
    ours = [row for row in pending
            if rt.store.decisions.get(row.decision_id).prediction_id in samples]
    return ours, len(pending) - len(ours)


def _answer_all(rt: Any, waiting: list[Any], personas: dict[str, list[Approver]],
                answered: Counter[tuple[str, str]], interactive: bool) -> None:
    for row in waiting:
        request = row.request.model_dump(mode="json")
        prediction = rt.store.predictions.get(
            rt.store.decisions.get(row.decision_id).prediction_id).model_dump(mode="json")
        answer = (_ask(request, prediction) if interactive
                  else demo_answer(request, prediction))
        if answer is None:
            continue
        # The function's approvers take turns, as two people sharing an inbox do.
        people = personas[row.function]
        rt.approvals.answer(row.id, answer, by=people[answered[(row.function, "")] % len(people)])
        answered[(row.function, "")] += 1
        answered[(row.function, answer.type)] += 1


def _personas(rt: Any) -> dict[str, list[Approver]]:
    """function → the demo personas who answer for it: the function's approvers in the
    policies, each registered as an approver user (once) so it answers under the same
    rules as anyone."""
    out: dict[str, list[Approver]] = {}
    for function, policy in sorted(rt.policies.functions.items()):
        out[function] = []
        for name in policy.approvers:
            functions = sorted(f for f, p in rt.policies.functions.items() if name in p.approvers)
            user = rt.store.users.get(name)
            if user is None:
                rt.store.users.create(name, role="approver", functions=functions, actor="demo")
                user = rt.store.users.get(name)
            out[function].append(Approver(name=user["name"], role=user["role"],
                                          functions=tuple(user["functions"]), channel="cli"))
    return out


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                    console=err_console, transient=True)


def _summary(rt: Any) -> None:
    console.rule(styled("[bold]summary"))
    triage = rt.store.predictions.triage_counts()
    total = sum(triage.values())
    acted = sum(n for (a, _), n in triage.items() if a == TriageAction.ACT.value)
    console.print(f"predictions in: {total}; acted on: {acted}; dropped by triage: "
                  f"{sum(n for (a, _), n in triage.items() if a == TriageAction.DROP.value)}")
    for (action, reason), n in sorted(triage.items()):
        if action == TriageAction.DROP.value:
            console.print(f"  dropped {reason}: {n}")
    for (action, reason), n in sorted(triage.items()):
        if action == TriageAction.NEEDS_HUMAN.value:
            console.print(f"  needs a human ({reason}): {n}; see decisionops predictions queue")
    held = sum(n for (a, _), n in triage.items() if a == TriageAction.HOLD.value)
    if held:
        console.print(f"held out as the control group (not acted on, to measure uplift): {held}")
    approvals = rt.store.approvals.counts()
    functions = sorted({f for f, _ in approvals})
    statuses = sorted({s for _, s in approvals})
    print_table("approvals by function", ["function", *statuses],
                [[f, *(approvals.get((f, s), 0) for s in statuses)] for f in functions])
    steps = rt.store.executions.step_counts()
    console.print("steps: " + ", ".join(f"{k} {v}" for k, v in sorted(steps.items())))
    decisions = rt.store.decisions.counts()
    console.print("decisions: " + ", ".join(f"{k} {v}" for k, v in sorted(decisions.items())))
    rows = rt.store.decisions.list(limit=100_000)
    covered = sum(d.expected_value or 0 for d in rows if d.status == "completed")
    at_stake = sum(d.expected_value or 0 for d in rows)
    console.print(f"expected value covered: {covered:,.0f} of {at_stake:,.0f} acted on "
                  f"({covered / at_stake:.0%})" if at_stake else "expected value covered: 0")
    report = verify_chain(rt.store.engine)
    if report.ok:
        say("ledger: {} entries, [green]verifies[/]", report.entries)
    else:
        say("ledger: {} entries, [red]BROKEN: {}[/]", report.entries, report.problem)
    console.print("next: decisionops decisions list · decisionops approvals list · "
                  "decisionops decisions show <id> · decisionops report --since 30d "
                  "--out report.html")
    if not report.ok:
        raise fail("ledger does not verify", 1)
