"""A chat tool's result as the reply text: the one place that turns ``ChatTools`` data
into words, shared by the fixed commands (``_commands``) and the free-phrasing intents
(``_intents``) so both say the same thing about the same data.

Each ``say_*`` takes what its tool returned and gives ``(reply, data)``.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["say_explain", "say_hold", "say_ledger", "say_metrics", "say_pending",
           "say_queue", "say_release", "say_triage", "say_why"]


def _lines(rows: list[str], empty: str) -> str:
    return "\n".join(rows) if rows else empty


def say_pending(rows: list[dict[str, Any]], function: str | None = None) -> tuple[str, Any]:
    empty = f"Nothing pending for {function}." if function else "Nothing pending."
    return _lines([f"{r['approval_id']}  {r['function']:<12} {r['kind']} {r['entity_id']}  "
                   f"due {r['deadline'] or '-'}  at stake {r['value_at_stake']}"
                   for r in rows], empty), rows


def say_explain(data: dict[str, Any]) -> tuple[str, Any]:
    body = [f"{data['decision_id']}: {data['status']} ({data['kind']} {data['entity_id']}, "
            f"score {data['score']}, expected value {data['expected_value']})",
            f"triage: {data['triage']}"]
    if data.get("error"):
        body.append(f"error: {data['error']}")
    if data.get("held"):
        body.append(f"held: {data['held']}")
    body += [f"step {s}" for s in data["steps"]]
    body += [f"approval {a}" for a in data["approvals"]]
    body += [f"execution {e}" for e in data["executions"]]
    return "\n".join(body), data


def say_why(data: dict[str, Any]) -> tuple[str, Any]:
    body = [f"{p['prediction_id']} ({p['kind']}, score {p['score']}): {p['triage']}"
            f"{' / ' + p['reason'] if p['reason'] else ''}"
            f"{' - ' + p['detail'] if p['detail'] else ''}"
            + (f" -> {p['decision']} {p['status']}" if p["decision"] else "")
            for p in data["predictions"]]
    body += [f"hold #{h['hold_id']} until {h['until']}: {h['reason']}" for h in data["holds"]]
    return _lines(body, f"No predictions about {data['entity_id']}."), data


def say_ledger(rows: list[dict[str, Any]]) -> tuple[str, Any]:
    return _lines([f"#{r['seq']} {r['at']} {r['actor']} {r['event']} {r['decision_id'] or ''}"
                   for r in rows], "No matching ledger entries."), rows


def say_metrics(data: dict[str, Any]) -> tuple[str, Any]:
    """What the loop is doing, in a sentence (what waits on people, by function), then
    the counts in full."""
    decisions = {k: v for k, v in sorted(data["decisions"].items()) if v}
    pending = {k: v for k, v in sorted(data["pending"].items()) if v}
    said = ("Decisions: " + (", ".join(f"{v} {k.replace('_', ' ')}" for k, v in
                                       decisions.items()) or "none yet") + ". ")
    said += ("Waiting on people: " + ", ".join(f"{v} request(s) for {k}" for k, v in
                                                pending.items()) + " (ask 'pending <function>' "
             "for which and why)." if pending else "Nothing waits on a person's answer.")
    return said + "\n" + json.dumps(data, indent=2, sort_keys=True, default=str), data


def say_hold(data: dict[str, Any]) -> tuple[str, Any]:
    return (f"Hold #{data['hold_id']} on {data['target_type']} {data['target']} until "
            f"{data['until']}: no answer is applied and no step started for work it "
            "covers until then (or a release)."), data


def say_release(data: dict[str, Any]) -> tuple[str, Any]:
    ids = ", ".join(f"#{i}" for i in data["released"])
    target = data["target"]
    return (f"Released {ids} on {target}." if ids else f"No active hold on {target}."), data


def say_triage(data: dict[str, Any]) -> tuple[str, Any]:
    return (f"Triaged {data['triaged']} prediction(s): {data['verdicts'] or 'none waiting'}.",
            data)


def say_queue(data: dict[str, Any]) -> tuple[str, Any]:
    rows = [f"{p['prediction_id']} ({p['kind']} {p['entity_id']}, score {p['score']:.2f}): "
            f"{p['reason']} - {p['detail']}" for p in data["predictions"]]
    more = data["waiting"] - len(rows)
    if rows:
        rows.append("Answer in the inbox (/queue) or with decisionops predictions "
                    "pick|plan|supply-value|dismiss." + (f" {more} more waiting." if more else ""))
    return _lines(rows, "Nothing needs a human."), data
