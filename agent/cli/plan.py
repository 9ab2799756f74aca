"""``decisionops plan explain``: how each plan version of a decision was drafted: the
planner, prompt version, model, the model's raw replies, tokens and cost, the guard's
verdicts, cache use and any fallback. ``decisionops plan preview``: what the loop would
do with a prediction (``agent.scenario``), without a decision."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from decisionops.agent.cli._common import console, fail, print_json, print_table, say, settings
from decisionops.agent.errors import NotFoundError, status_for
from decisionops.agent.preview import preview_summary
from decisionops.agent.store import Store

__all__ = ["app", "explain"]

app = typer.Typer(no_args_is_help=True, help="Plans: how they were drafted, and what "
                  "a prediction would get.\n\n"
                  "Example: decisionops plan preview churn-2026-11-20-ACC-10004 --score 0.9")

_RAW_PREVIEW = 400


def _versions(store: Store, decision_id: str, version: int | None) -> list[dict[str, Any]]:
    try:
        store.decisions.get(decision_id)
    except NotFoundError as exc:
        raise fail(exc.message, status=status_for(exc), field="decision_id") from None
    rows = store.plans.records(decision_id)
    if version is not None:
        rows = [r for r in rows if r["version"] == version]
        if not rows:
            raise fail(f"--version: decision {decision_id} has no plan version {version}")
    return rows


@app.command("explain")
def explain(
    decision_id: Annotated[str, typer.Argument(help="Decision id.")],
    version: Annotated[int | None, typer.Option(min=1, help="Only this plan version.")] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Show the model's replies in full.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Explain how a decision's plans were drafted: planner, prompt version, model raw
    output, tokens, cost, guard verdicts, plan cache and fallback.

    Example: decisionops plan explain dec_5a1c… --version 2

    Example: decisionops plan explain dec_5a1c… --json
    """
    store = Store.open(settings().resolved_database_url)
    try:
        rows = _versions(store, decision_id, version)
        calls = [c for c in store.llm.llm_calls(decision_id)
                 if version is None or c["plan_version"] == version]
        events = [e for e in store.ledger.entries(decision_id)
                  if e.event.startswith("planner.")]
    finally:
        store.close()
    if not rows and not calls and not events:
        raise fail(f"decision_id: {decision_id} has no plan yet (it is still planning, or "
                   "no planner could draft one)")
    versions = [{"version": r["version"], "planner": r["planner"], "playbook": r["playbook"],
                 "verdict": r["verdict"], "hash": r["hash"], "problems": r["problems"] or [],
                 "record": r["meta"] or {},
                 "steps": [f"{s['function']}:{s['id']}:{s['tool']}" for s in r["body"]["steps"]]}
                for r in rows]
    if as_json:
        print_json({"decision_id": decision_id, "versions": versions, "llm_calls": calls,
                    "planner_events": [e.model_dump(mode="json") for e in events]})
        return
    for v in versions:
        _print_version(v, raw)
    if not versions:  # every draft refused, or the model unreachable, with a person next
        say("[yellow]no plan was stored[/]: the planner's drafts and why they were not used "
            "are below (a person drafts the plan: decisionops predictions)", highlight=False)
    print_table("LLM calls", ["version", "purpose", "model", "outcome", "tokens in", "tokens out",
                              "cost", "ms"],
                [[c["plan_version"], c["purpose"], c["model"], c["outcome"], c["tokens_in"],
                  c["tokens_out"], f"{c['cost']:.6f}", c["latency_ms"]] for c in calls],
                empty="no LLM calls (a deterministic planner, or the plan cache)")
    for e in events:
        console.print(f"ledger {e.seq} {e.event}: {json.dumps(e.body, ensure_ascii=False)}",
                      highlight=False)


def _print_version(v: dict[str, Any], raw: bool) -> None:
    record = v["record"]
    say("[bold]v{}[/] {} · planner {} (plan by {}, playbook {}) · hash {}", v["version"],
        v["verdict"], record.get("planner") or v["planner"], v["planner"], v["playbook"],
        v["hash"][:12])
    if record.get("model") or record.get("prompt_version"):
        console.print(f"  model {record.get('model')} · prompt {record.get('prompt_version')}",
                      highlight=False)
    console.print(f"  LLM calls {record.get('llm_calls', 0)} · tokens {record.get('tokens_in', 0)}"
                  f" in / {record.get('tokens_out', 0)} out · cost {record.get('cost', 0.0):.6f}"
                  f" · cache {'hit' if record.get('cache_hit') else 'miss'}")
    if record.get("fallback"):
        say("  [yellow]fallback:[/] {}", record["fallback"], highlight=False)
    for index, problems in enumerate(record.get("guard_verdicts") or [], 1):
        console.print(f"  guard refused draft {index}: {'; '.join(problems)}", highlight=False)
    for problem in v["problems"]:
        say("  [red]guard:[/] {}", problem, highlight=False)
    for note in record.get("notes") or []:
        console.print(f"  note: {note}", highlight=False)
    for index, output in enumerate(record.get("raw_outputs") or [], 1):
        text = output if raw or len(output) <= _RAW_PREVIEW else output[:_RAW_PREVIEW] + " …"
        console.print(f"  reply {index}: {text}", highlight=False, markup=False)
    console.print("  steps: " + ", ".join(v["steps"]), highlight=False)


@app.command("preview")
def preview(
    prediction_id: Annotated[str, typer.Argument(help="A stored prediction's id.")],
    score: Annotated[float | None, typer.Option(help="What if the model said this (0 to 1).")
                     ] = None,
    value: Annotated[float | None, typer.Option(
        "--value", help="What if this were the value at stake.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """What the loop would do with a prediction, without a decision: triage, the plan,
    who would be asked (or what policy or earned autonomy would approve), what each step
    would change (its preview), the plan's cost and value, and the entity's open
    decisions. Nothing is stored and no step runs.

    Example: decisionops plan preview churn-2026-11-20-ACC-10004

    Example: decisionops plan preview churn-2026-11-20-ACC-10004 --score 0.9 --json
    """
    from decisionops.agent.cli._common import runtime
    from decisionops.agent.errors import DecisionOpsError
    from decisionops.agent.scenario import what_if

    with runtime() as rt:
        try:
            out = what_if(rt, prediction_id, score=score, value_at_stake=value)
        except NotFoundError as exc:
            raise fail(exc.message, status=status_for(exc), field="prediction_id") from None
        except DecisionOpsError as exc:
            raise fail(exc.message.replace("value_at_stake:", "--value:", 1)
                       .replace("score:", "--score:", 1), exc.exit_code) from None
    if as_json:
        print_json(out)
        return
    _print_what_if(out)


def _print_what_if(out: dict[str, Any]) -> None:
    p, t = out["prediction"], out["triage"]
    changed = ", ".join(f"{k} {v}" for k, v in out["changed"].items())
    say("[bold]{}[/] {} {} · score {:.2f}{} · nothing is stored", p["id"], p["kind"],
        p["entity_id"], p["score"], f" · what if: {changed}" if changed else "",
        highlight=False)
    console.print(f"triage: {t['action']} ({t['reason']}){': ' + t['detail'] if t['detail'] else ''}",
                  highlight=False, markup=False)
    for other in out["open_decisions"]:
        say("[yellow]open on {}:[/] {} {} {}", p["entity_id"], other["decision_id"],
            other["kind"], other["status"], highlight=False)
    for problem in out["problems"]:
        say("[red]no plan:[/] {}", problem, highlight=False)
    plan = out["plan"]
    if plan is None:
        return
    console.print(f"plan by {plan['planner']} (playbook {plan['playbook']}): cost "
                  f"{plan['expected_cost']:,.0f} · value {plan['expected_value']:,.0f}",
                  highlight=False)
    steps = {s["id"]: s for s in plan["steps"]}
    for route in out["routing"]:
        who = (f"asks {', '.join(route['approvers'])}" if route["approval"] == "people"
               else f"approved by {route['approval']}")
        say("[bold]{}[/]: {} ({})", route["function"], who, route["why"], highlight=False)
        for step_id in route["steps"]:
            step = steps[step_id]
            args = ", ".join(f"{k}={v}" for k, v in step["arguments"].items())
            console.print(f"  {step_id}: {step['tool']}({args})", highlight=False, markup=False)
            found = route["previews"].get(step_id)
            if found is None:
                console.print("    no preview: the tool declares none", style="dim")
            elif "result" in found:
                console.print(f"    would change: {preview_summary(found['result'])}",
                              highlight=False, markup=False)
            else:
                console.print(f"    preview unavailable: {found['error']}", highlight=False,
                              markup=False)
