"""The ops chat without an LLM: a fixed set of commands, answered deterministically.

::

    help                                  this list
    pending [function]                    pending approvals, most urgent first
    explain <decision id>                 a decision: triage, plan, approvals, executions
    why <entity id>                       latest predictions about an entity and their fate
    ledger <decision id | event>          newest matching ledger entries
    metrics                               counts of decisions, approvals, triage, steps
    hold <entity|playbook|function> until <when> [because <reason>]   operators: pause acting on it
    release <entity|playbook|function>    operators: lift its holds
    triage                                operators: triage waiting predictions now
    queue                                 predictions waiting for a person, and why

``<when>`` is a date (``2026-12-01``), a time (``2026-12-01T09:00Z``) or relative
(``+4h``, ``+2d``). Anything else is natural language, which needs an LLM.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.chat._tools import ChatTools
from agent.errors import InvalidInputError

__all__ = ["HELP", "NEEDS_LLM", "REFUSE_APPROVAL", "is_approval_attempt", "run_command"]

HELP = __doc__.split("::", 1)[1].split("``<when>``", 1)[0].strip("\n")
NEEDS_LLM = ("I only understand the commands below without an LLM; natural-language "
             "questions need one (set DECISIONOPS_LLM_BASE_URL).\n\n" + HELP)
REFUSE_APPROVAL = ("Chat cannot approve, edit, reject or revise: answer approvals in the "
                   "inbox (/inbox) or through the approvals API, where your credential "
                   "is checked.")

_APPROVAL_WORDS = re.compile(r"^\s*(approve|approved|accept|edit|reject|revise|sign off)\b",
                             re.IGNORECASE)
_HOLD = re.compile(r"^hold\s+(\S+)\s+until\s+(\S+)(?:\s+because\s+(.+))?$", re.IGNORECASE)
_RELATIVE = re.compile(r"^\+(\d{1,4})([hd])$")


def is_approval_attempt(text: str) -> bool:
    return bool(_APPROVAL_WORDS.match(text))


def parse_when(text: str, now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    rel = _RELATIVE.match(text)
    if rel:
        amount = int(rel.group(1))
        return now + (timedelta(hours=amount) if rel.group(2) == "h" else timedelta(days=amount))
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(f"{text!r} is not a date (2026-12-01), a time "
                                "(2026-12-01T09:00Z) or relative (+4h, +2d)",
                                field="until") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _lines(rows: list[str], empty: str) -> str:
    return "\n".join(rows) if rows else empty


def run_command(tools: ChatTools, text: str) -> tuple[str, Any] | None:
    """Answer ``text`` if it is a command: (reply, data). None when it is not one."""
    words = text.strip().split()
    if not words:
        return None
    verb, rest = words[0].lower(), words[1:]
    if verb in ("help", "?"):
        return HELP, None
    if verb == "pending" and len(rest) <= 1:
        rows = tools.call("pending_approvals", {"function": rest[0] if rest else None})
        return _lines([f"{r['approval_id']}  {r['function']:<12} {r['kind']} {r['entity_id']}  "
                       f"due {r['deadline'] or '-'}  at stake {r['value_at_stake']}"
                       for r in rows], "Nothing pending."), rows
    if verb == "explain" and len(rest) == 1:
        data = tools.call("explain_decision", {"decision_id": rest[0]})
        body = [f"{data['decision_id']}: {data['status']} ({data['kind']} {data['entity_id']}, "
                f"score {data['score']}, expected value {data['expected_value']})",
                f"triage: {data['triage']}"]
        body += [f"step {s}" for s in data["steps"]]
        body += [f"approval {a}" for a in data["approvals"]]
        body += [f"execution {e}" for e in data["executions"]]
        return "\n".join(body), data
    if verb == "why" and len(rest) == 1:
        data = tools.call("why_entity", {"entity_id": rest[0]})
        body = [f"{p['prediction_id']} ({p['kind']}, score {p['score']}): {p['triage']}"
                f"{' / ' + p['reason'] if p['reason'] else ''}"
                f"{' - ' + p['detail'] if p['detail'] else ''}"
                + (f" -> {p['decision']} {p['status']}" if p["decision"] else "")
                for p in data["predictions"]]
        body += [f"hold #{h['hold_id']} until {h['until']}: {h['reason']}" for h in data["holds"]]
        return _lines(body, f"No predictions about {rest[0]}."), data
    if verb == "ledger" and len(rest) == 1:
        rows = tools.call("search_ledger", {"query": rest[0], "limit": 20})
        return _lines([f"#{r['seq']} {r['at']} {r['actor']} {r['event']} {r['decision_id'] or ''}"
                       for r in rows], "No matching ledger entries."), rows
    if verb == "metrics" and not rest:
        data = tools.call("metrics", {})
        return json.dumps(data, indent=2, sort_keys=True, default=str), data
    if verb == "hold":
        match = _HOLD.match(text.strip())
        if not match:
            raise InvalidInputError("use: hold <entity|playbook|function> until <when> "
                                    "[because <reason>]",
                                    field="command")
        until = parse_when(match.group(2))
        data = tools.call("hold", {"target": match.group(1), "until": until.isoformat(),
                                   "reason": (match.group(3) or "").strip()})
        return (f"Hold #{data['hold_id']} on {data['target_type']} {data['target']} until "
                f"{data['until']}: no answer is applied and no step started for work it "
                "covers until then (or a release)."), data
    if verb == "release" and len(rest) == 1:
        data = tools.call("release", {"target": rest[0]})
        ids = ", ".join(f"#{i}" for i in data["released"])
        return (f"Released {ids} on {rest[0]}." if ids else f"No active hold on {rest[0]}."), data
    if verb == "queue" and not rest:
        data = tools.call("needs_human_queue", {})
        rows = [f"{p['prediction_id']} ({p['kind']} {p['entity_id']}, score {p['score']:.2f}): "
                f"{p['reason']} - {p['detail']}" for p in data["predictions"]]
        more = data["waiting"] - len(rows)
        if rows:
            rows.append("Answer in the inbox (/queue) or with decisionops predictions "
                        "pick|supply-value|dismiss." + (f" {more} more waiting." if more else ""))
        return _lines(rows, "Nothing needs a human."), data
    if verb == "triage" and not rest:
        data = tools.call("rerun_triage", {})
        return f"Triaged {data['triaged']} prediction(s): {data['verdicts'] or 'none waiting'}.", data
    return None
