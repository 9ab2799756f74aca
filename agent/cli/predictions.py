"""``decisionops predictions``: every prediction with its outcome and reason, and the
needs-a-human queue.

The outcome is the prediction's full fate (``agent.store.PredictionView``); answers to
the queue go to ``agent.prediction_queue`` as the registered user ``--as`` names, under
the same rules as the API and the inbox. This module only translates.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table

from decisionops.agent.cli._common import (
    console,
    exit_for,
    fail,
    limited,
    print_json,
    runtime,
    say,
    say_more,
)
from decisionops.agent.errors import (
    ConflictError,
    InvalidInputError,
    LoopAlreadyRunning,
    NotFoundError,
    error_fields,
    status_for,
)
from decisionops.agent.looplock import LoopLock
from decisionops.agent.store import OUTCOMES

if TYPE_CHECKING:
    from decisionops.agent.prediction_queue import QueueUser
    from decisionops.agent.runtime import Runtime
    from decisionops.agent.store import PredictionView

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help=(
    "Predictions: each with its outcome (act, drop, hold, needs_human, pending) and reason; "
    "the needs-a-human queue and its answers.\n\n"
    "Example: decisionops predictions list --outcome needs_human\n\n"
    "Example: decisionops predictions pick p-17 --playbook churn-retention --as olga\n\n"
    "Example: decisionops predictions plan p-17 --steps plan.yaml --as olga"))

Json = Annotated[bool, typer.Option("--json", help="Print as JSON.")]
PredictionId = Annotated[str, typer.Argument(help="The prediction id (from 'predictions list').")]
As = Annotated[str, typer.Option("--as", help="The registered user you answer as (approver, "
                                 "operator or admin: 'decisionops users add NAME --role "
                                 "operator').")]
NoStart = Annotated[bool, typer.Option(
    "--no-start", help="Only record the answer; the next 'decisionops run' starts the decision.")]


def _money(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def _table(title: str, views: list[PredictionView]) -> None:
    """Fits 100 columns; ids are never wrapped (cropped with … only if longer than the screen)."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True)

    def longest(values: list[str], floor: int, cap: int) -> int:
        return min(max([floor, *(len(line) for v in values for line in v.split("\n"))]), cap)

    # On a narrow screen (below ~100 columns) the prediction id, kind, entity, score,
    # value and outcome keep their width; the decision column gives way first (its id
    # is cropped with …; predictions show ID has it whole).
    for name, options in (
            ("id", {"no_wrap": True, "min_width": longest([v.id for v in views], 2, 48)}),
            ("kind", {"overflow": "fold",  # the kind whole; "(as …)" may fold under it
                      "min_width": longest([v.kind for v in views], 4, 16)}),
            ("entity", {"no_wrap": True,
                        "min_width": longest([v.entity_id for v in views], 6, 24)}),
            ("score", {"justify": "right", "no_wrap": True, "min_width": 5}),
            ("exp. value", {"justify": "right", "no_wrap": True, "min_width": 10}),
            ("outcome / reason", {"no_wrap": True, "min_width": longest(
                [f"{v.outcome}\n{v.reason or ''}" for v in views], 7, 22)}),
            ("decision / status", {"no_wrap": True, "overflow": "ellipsis"})):
        table.add_column(name, **options)
    taken = sum(c.min_width or 0 for c in table.columns[:-1]) + 2 * len(table.columns)
    if taken + 12 > console.width:
        _stacked(title, views)  # long ids on a narrow screen: one record per block
        return
    table.columns[-1].max_width = max(10, console.width - taken)
    for v in views:
        decision = f"{v.decision_id}\n{v.decision_status}" if v.decision_id else ""
        kind = v.kind if v.kind_as_received is None else f"{v.kind}\n(as {v.kind_as_received})"
        table.add_row(v.id, kind, v.entity_id, f"{v.score:.2f}", _money(v.expected_value),
                      f"{v.outcome}\n{v.reason or ''}".rstrip(), decision)
    console.print(table)


def _stacked(title: str, views: list[PredictionView]) -> None:
    """Each prediction as two lines: its id whole, then the rest."""
    say("[bold]{}[/]", title)
    for v in views:
        kind = v.kind if v.kind_as_received is None else f"{v.kind} (as {v.kind_as_received})"
        value = _money(v.expected_value)
        decision = f" · {v.decision_id} {v.decision_status}" if v.decision_id else ""
        console.print(v.id, highlight=False, markup=False, soft_wrap=True)
        console.print(f"  {kind} · {v.entity_id} · score {v.score:.2f}"
                      + (f" · exp. value {value}" if value else "")
                      + f" · {v.outcome}{' (' + v.reason + ')' if v.reason else ''}{decision}",
                      highlight=False, markup=False)


@app.command("list")
def list_(
    outcome: Annotated[str | None, typer.Option(
        help="Only this outcome: " + ", ".join(OUTCOMES) + ".")] = None,
    kind: Annotated[str | None, typer.Option(help="Only this kind (after kind_aliases).")] = None,
    entity: Annotated[str | None, typer.Option(help="Only this entity id.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Json = False,
) -> None:
    """List predictions, newest first, each with its outcome, reason and the decision it
    started. The outcome is the full fate: a decision that ended needs_human shows as
    needs_human with that decision's reason.

    Example: decisionops predictions list --outcome needs_human --json

    Example: decisionops predictions list --kind churn --entity ACC-10023
    """
    if outcome is not None and outcome not in OUTCOMES:
        raise fail(f"--outcome: {outcome!r} is not one of {', '.join(OUTCOMES)}")
    with runtime() as rt:
        views, more = limited(rt.store.prediction_views.list(
            outcome=outcome, kind=kind, entity_id=entity, limit=limit + 1), limit)
    if as_json:
        print_json([v.to_dict() for v in views])
    elif not views:
        say("[dim]no predictions{}[/]", f" with outcome {outcome}" if outcome else "")
    else:
        _table("predictions" + (f" ({outcome})" if outcome else ""), views)
    if more:
        say_more(limit, 10_000, as_json=as_json)


def _detail(view: PredictionView) -> None:
    rows: list[tuple[str, Any]] = [
        ("id", view.id), ("kind", view.kind), ("kind as received", view.kind_as_received),
        ("entity", f"{view.entity_type} {view.entity_id}"), ("model", view.model),
        ("score", f"{view.score:.2f}"),
        ("value at stake", view.value_at_stake is not None and
         f"{_money(view.value_at_stake)} ({view.value_at_stake_source})"),
        ("expected value", _money(view.expected_value)), ("outcome", view.outcome),
        ("reason", view.reason), ("detail", view.detail), ("playbook", view.playbook),
        ("decision", view.decision_id and f"{view.decision_id} ({view.decision_status})"),
        ("observed", f"{view.observed_at:%Y-%m-%d %H:%M}Z"),
        ("triaged", view.triaged_at and f"{view.triaged_at:%Y-%m-%d %H:%M}Z"),
        ("plan by hand", view.hand_plan and (
            f"{view.hand_plan['author']} at {view.hand_plan['at']:%Y-%m-%d %H:%M}Z, "
            f"hash {view.hand_plan['hash'][:12]}")),
        ("features", view.features and _pairs(view.features)),
        ("explanation", view.explanation and _pairs(view.explanation))]
    for label, value in rows:
        if value not in (None, False, ""):
            say("[bold]{}:[/] {}", label, value, highlight=False)


def _pairs(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())  # scalars (Prediction's model)


@app.command("show")
def show(prediction_id: PredictionId, as_json: Json = False) -> None:
    """One prediction: its fields, outcome, reason in full and the decision it started.

    Example: decisionops predictions show p-17 --json
    """
    with runtime() as rt, _fields():
        view = rt.store.prediction_views.get(prediction_id)
    if as_json:
        print_json(view.to_dict())
        return
    _detail(view)


@app.command("queue")
def queue(limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
          as_json: Json = False) -> None:
    """The predictions waiting for a person (outcome needs_human), oldest first. Answer
    each with 'predictions pick', 'predictions supply-value' or 'predictions dismiss'.

    Example: decisionops predictions queue --json
    """
    with runtime() as rt:
        views, more = limited(rt.queue.list(limit=limit + 1), limit)
    if as_json:
        print_json([v.to_dict() for v in views])
    elif not views:
        say("[dim]nothing needs a human[/]")
    else:
        _table("needs a human", views)
    if more:
        say_more(limit, 10_000, as_json=as_json)


@contextmanager
def _fields() -> Iterator[None]:
    """A missing or moved prediction, named by the argument it came from."""
    try:
        yield
    except (NotFoundError, ConflictError) as exc:
        field = exc.details.get("field")
        raise fail(f"{field}: {exc.message}" if field else exc.message, exc.exit_code,
                   status=status_for(exc), **error_fields(exc)) from None


def _user(rt: Any, name: str) -> QueueUser:
    try:
        return rt.queue.registered(name, channel="cli")  # type: ignore[no-any-return]
    except InvalidInputError as exc:  # field "as": said as --as, like every option's
        raise exit_for(exc) from None


def _said(verb: str, view: PredictionView, *, as_json: bool, **more: Any) -> None:
    """What an answer did: a line for a person, or the prediction as ``show --json``
    prints it (and ``more``: what became of its decision) for a script."""
    if as_json:
        print_json(view.to_dict() | more)
        return
    console.print(f"{verb} {view.id}: outcome {view.outcome} ({view.reason}: {view.detail})",
                  highlight=False)


@app.command("pick")
def pick(prediction_id: PredictionId, as_: As,
         playbook: Annotated[str, typer.Option(help="The playbook to plan it with, by name "
                                               "(a wrong name lists the known ones).")],
         note: Annotated[str, typer.Option(help="Optional note; recorded.")] = "",
         no_start: NoStart = False, as_json: Json = False) -> None:
    """Plan a prediction from the queue with a playbook you name; its decision starts
    the way the loop starts any other.

    Example: decisionops predictions pick p-17 --playbook churn-retention --as olga
    """
    with runtime() as rt, _fields():
        view = rt.queue.pick(prediction_id, playbook, by=_user(rt, as_), note=note)
        _started(rt, view, f"picked {playbook} for", "predictions pick", start=not no_start,
                 as_json=as_json)


def _started(rt: Runtime, view: PredictionView, said: str, command: str, *,
             start: bool, as_json: bool) -> None:
    """What an answer planned (the prediction, or its follow-up when it was planned
    again), after a pass of the loop that starts its decision: not beside a running
    `run` or `serve` on this SQLite folder (one loop per folder), which starts it then."""
    beside_loop = False
    if start:
        lock = LoopLock(rt.settings, command)
        try:
            lock.acquire()
        except LoopAlreadyRunning:
            beside_loop = True
        else:
            try:
                rt.run_once()
            finally:
                lock.release()
            view = rt.store.prediction_views.get(view.id)
    if as_json:  # its decision, or who starts it: "loop" beside a running one, or "next run"
        _said(said, view, as_json=True, starts=None if view.decision_id else
              "loop" if beside_loop else "next run")
        return
    _said(said, view, as_json=False)
    if view.decision_id:
        console.print(f"decision {view.decision_id} is {view.decision_status}: "
                      f"decisionops decisions show {view.decision_id}", highlight=False)
    elif beside_loop:
        console.print("the loop running on this data folder starts its decision")
    else:
        console.print("the next 'decisionops run' starts its decision")


@app.command("plan")
def plan(prediction_id: PredictionId, as_: As,
         steps: Annotated[Path, typer.Option(
             "--steps", help="A YAML or JSON file: a list of steps (id, function, tool, "
             "arguments, depends_on, risk, rationale), or a mapping with 'steps' and "
             "optionally 'rationale' and 'all_or_nothing'.")],
         note: Annotated[str, typer.Option(help="Optional note; recorded.")] = "",
         no_start: NoStart = False, as_json: Json = False) -> None:
    """Plan a prediction from the queue by hand: you write the steps. The plan must pass
    the same guard as any plan (a refused one changes nothing and says why); its
    decision starts the way the loop starts any other, and each function still approves
    its part (four-eyes counts you as the plan's requester).

    Example: decisionops predictions plan p-17 --steps plan.yaml --as olga

    A plan.yaml of one step (JSON works too): [{id: offer, function: sales, tool:
    crm.create_retention_offer, arguments: {account_id: ACC-10001, offer_type: discount,
    discount_pct: 10, duration_months: 6}, risk: medium, rationale: "loyal; keep them"}]
    """
    try:
        text = steps.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"--steps: cannot read {steps}: {getattr(exc, 'strerror', None) or exc}"
                   ) from None
    with runtime() as rt, _fields():
        view = rt.queue.plan_by_hand(prediction_id, text, by=_user(rt, as_), note=note)
        _started(rt, view, "planned by hand", "predictions plan", start=not no_start,
                 as_json=as_json)


@app.command("supply-value")
def supply_value(prediction_id: PredictionId, as_: As,
                 value_at_stake: Annotated[float, typer.Option(
                     "--value-at-stake", min=0, help="Money at risk if the event happens; the "
                     "prediction is triaged again with it.")],
                 as_json: Json = False) -> None:
    """Give a prediction from the queue the value at stake it lacks; it is triaged again
    with the same rules (and planned with that value if it acts).

    Example: decisionops predictions supply-value p-18 --value-at-stake 12000 --as olga
    """
    with runtime() as rt, _fields():
        view = rt.queue.supply_value(prediction_id, value_at_stake, by=_user(rt, as_))
    _said(f"value at stake {value_at_stake:,.0f} for", view, as_json=as_json)


@app.command("dismiss")
def dismiss(prediction_id: PredictionId, as_: As,
            reason: Annotated[str, typer.Option(help="Why no action; recorded and shown.")],
            as_json: Json = False) -> None:
    """Dismiss a prediction from the queue: no action; the outcome becomes drop with
    "dismissed by YOU: REASON" (your name, and the reason you give).

    Example: decisionops predictions dismiss p-19 --reason "test account" --as olga
    """
    with runtime() as rt, _fields():
        view = rt.queue.dismiss(prediction_id, reason, by=_user(rt, as_))
    _said("dismissed", view, as_json=as_json)
