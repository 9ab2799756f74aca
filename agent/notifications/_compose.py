"""What an approver notification says and whom it goes to.

``Composer`` is the store's event hook (``Database.event_hooks``): for each ledger event
of an approval request (``approval.requested``, ``approval.reminder``,
``approval.escalation``, ``approval.expired``) it writes one outbox row per channel and
recipient, in the event's own transaction. Slack gets Block Kit blocks with a plain
``text`` fallback; e-mail a subject and a text body. Both name the request id, function,
entity, amount or expected value and deadline, and link to the request in the inbox.

Not here: sending (``_deliver``) and the outbox table (``agent.store._outbox``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from decisionops.agent.approvals import policy_identity
from decisionops.agent.hashing import short_id
from decisionops.agent.policy import Policies
from decisionops.agent.settings import Settings
from decisionops.agent.store import Event
from decisionops.agent.store import _tables as t
from decisionops.agent.store._outbox import NotificationRepo
from decisionops.agent.store._service_tables import users
from decisionops.agent.store._users import EMAIL

__all__ = ["EVENTS", "Composer"]

EVENTS = {"approval.requested": "requested", "approval.reminder": "reminder",
          "approval.escalation": "escalation", "approval.expired": "expired"}
_HEADLINE = {"requested": "Approval requested", "reminder": "Reminder: approval waiting",
             "escalation": "Escalation: approval about to expire",
             "expired": "Approval expired"}


class Composer:
    """Writes the outbox rows for approval events (see the module docstring)."""

    def __init__(self, settings: Settings, policies: Policies) -> None:
        self._policies = policies
        self._slack = settings.slack_webhook_url is not None
        self._email = settings.smtp_url is not None
        self._emails = dict(settings.approver_emails)
        self._base = (settings.public_url or "http://127.0.0.1:8000").rstrip("/")

    @property
    def enabled(self) -> bool:
        return self._slack or self._email

    def __call__(self, conn: Connection, events: Sequence[Event], now: datetime) -> None:
        rows: list[dict[str, Any]] = []
        for event in events:
            kind = EVENTS.get(event.event)
            approval_id = (event.body or {}).get("approval_id")
            if kind is None or not approval_id:
                continue
            facts = _facts(conn, approval_id)
            if facts is None:
                continue
            rows += self._messages(conn, kind, facts)
        NotificationRepo.enqueue(conn, rows, now)

    def link(self, approval_id: str) -> str:
        return f"{self._base}/inbox/requests/{approval_id}"

    def _recipients(self, conn: Connection, function: str, kind: str) -> list[str]:
        """The function's approvers' addresses: registered users' ``email`` first, then
        ``approver_emails``, then an approver whose name is an address; an escalation
        also goes to ``escalate_to`` when that is (or maps to) an address. A revoked
        user gets nothing, whichever of these names their address."""
        policy = self._policies.functions.get(function)
        if policy is None:
            return []
        people = list(policy.approvers)
        if kind == "escalation" and policy.escalate_to:
            people.append(policy.escalate_to)
        found: dict[str, str] = {}
        revoked: set[str] = set()
        rows = list(conn.execute(
            select(users.c.name, users.c.functions, users.c.email, users.c.disabled_at)))
        registered = {row[0] for row in rows}
        for name, functions, email, disabled_at in rows:
            entry = policy_identity(people, name, registered=registered.__contains__)
            if entry is None:
                continue
            if disabled_at is not None:
                revoked.add(entry)
            elif email is not None and (function in (functions or []) or entry not in
                                        policy.approvers):
                found[entry] = email
        addresses = [found.get(p) or self._emails.get(p, p) for p in people if p not in revoked]
        return sorted({a for a in addresses if EMAIL.match(a)})

    def _messages(self, conn: Connection, kind: str, facts: dict[str, Any]
                  ) -> list[dict[str, Any]]:
        text, lines = self._text(kind, facts)
        base = {"decision_id": facts["decision_id"], "approval_id": facts["approval_id"],
                "event": kind}
        out = []
        if self._slack:
            mid = short_id("notify", facts["approval_id"], kind, "slack", length=32)
            out.append({**base, "id": mid, "channel": "slack",
                        "recipient": f"#approvals-{facts['function']}",
                        "payload": {"client_msg_id": mid, "text": text,
                                    "blocks": _blocks(_HEADLINE[kind], lines,
                                                      self.link(facts["approval_id"]))}})
        if self._email:
            for to in self._recipients(conn, facts["function"], kind):
                mid = short_id("notify", facts["approval_id"], kind, "email", to, length=32)
                out.append({**base, "id": mid, "channel": "email", "recipient": to,
                            "payload": {"subject": f"[DecisionOps] {_HEADLINE[kind]}: "
                                                   f"{facts['approval_id']} "
                                                   f"({facts['function']})",
                                        "body": text + "\n"}})
        return out

    def _text(self, kind: str, f: dict[str, Any]) -> tuple[str, list[str]]:
        value = (f"amount at stake {f['value_at_stake']:,.2f}"
                 if f["value_at_stake"] is not None else "amount at stake unknown")
        if f["expected_value"] is not None:
            value += f", expected value {f['expected_value']:,.2f}"
        deadline = (f"{f['deadline']:%Y-%m-%d %H:%M} UTC" if f["deadline"] is not None
                    else "no deadline")
        lines = [f"Request: {f['approval_id']}", f"Function: {f['function']}",
                 f"Entity: {f['entity_id']} ({f['kind']})", f"Value: {value}",
                 f"Deadline: {deadline}"]
        if kind == "expired":
            lines.append(_expiry(f))
        link = self.link(f["approval_id"])
        text = (f"{_HEADLINE[kind]}: {f['approval_id']} ({f['function']}) for "
                f"{f['entity_id']}; {value}; due {deadline}. Open: {link}\n"
                + "\n".join(lines))
        return text, lines


def _expiry(f: dict[str, Any]) -> str:
    """What an expiry did (trial 26: "expired" alone, where ``on_timeout: approve`` ran
    the step)."""
    answer = f.get("answer") or {}
    if answer.get("type") == "approve":
        return (f"Expired: approved, as the {f['function']} policy's on_timeout says: its "
                "steps run")
    if answer.get("type") == "reject":
        _, _, why = str(answer.get("reason") or "").partition("; not approved on expiry: ")
        if why:  # on_timeout: approve, but a step only a person may approve
            return f"Expired: rejected, not approved on expiry ({why}): its steps do not run"
        return (f"Expired: rejected, as the {f['function']} policy's on_timeout says: its "
                "steps do not run")
    return f"Expired: {f['status']}"


def _blocks(headline: str, lines: list[str], link: str) -> list[dict[str, Any]]:
    return [
        {"type": "header", "text": {"type": "plain_text", "text": headline}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": line} for line in lines]},
        {"type": "actions", "elements": [{
            "type": "button", "text": {"type": "plain_text", "text": "Open in inbox"},
            "url": link, "action_id": "open_request"}]},
    ]


def _facts(conn: Connection, approval_id: str) -> dict[str, Any] | None:
    a, d, p = t.approvals, t.decisions, t.predictions
    row = conn.execute(
        select(a.c.id, a.c.decision_id, a.c.function, a.c.deadline, a.c.status, a.c.answer,
               d.c.kind,
               d.c.entity_id, d.c.expected_value, p.c.value_at_stake)
        .join(d, d.c.id == a.c.decision_id).join(p, p.c.id == d.c.prediction_id)
        .where(a.c.id == approval_id)).first()
    if row is None:
        return None
    return {"approval_id": row.id, "decision_id": row.decision_id, "function": row.function,
            "deadline": row.deadline, "status": row.status, "answer": row.answer,
            "kind": row.kind,
            "entity_id": row.entity_id, "expected_value": row.expected_value,
            "value_at_stake": row.value_at_stake}
