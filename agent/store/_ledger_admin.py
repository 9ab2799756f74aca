"""Whether the holds and users tables say what the ledger says: ``ledger.verify``'s
check of the rows that decide who may answer and what may run (trial 31: a hold
deleted in the database, which let the loop act on the held entity, and an approver's
role raised to admin both verified clean).

=====  ===================================================================
holds  each hold as ``hold.placed`` recorded it (target, its type, until,
       reason), and whether it ended (``hold.released``, ``hold.lapsed``):
       a row that says it is still on when an entry ended it, or ended when
       none did, disagrees; a hold the ledger has that the store lost is
       named (the loop would act on what it held).
users  each user's role as ``user.created`` recorded it, the functions of
       its last ``user.created`` or ``user.functions_set``, and whether it
       is disabled (``user.disabled``, ``user.enabled``); a user the ledger
       never recorded is named (a made-up admin).
=====  ===================================================================

Not checked: e-mail addresses (where notifications go, not who may answer), tokens
(stored as hashes; a revoked one stays revoked in its own table), times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from decisionops.agent.store._ledger_value import _iso, _time, stream
from decisionops.agent.store._service_tables import holds, users

__all__ = ["AdminRecorded", "check_holds", "check_users"]

Add = Callable[..., None]


@dataclass
class _Hold:
    seq: int
    target_type: Any
    target: Any
    until: str | None
    reason: Any
    ended: int | None = None
    """The seq of the entry that released it, or recorded it lapsed."""


@dataclass
class _User:
    seq: int
    role: Any
    functions: list[Any]
    functions_seq: int
    disabled: bool = False
    disabled_seq: int | None = None


@dataclass
class AdminRecorded:
    """What the entries walked so far record of holds and users."""

    holds: dict[int, _Hold] = field(default_factory=dict)
    users: dict[str, _User] = field(default_factory=dict)

    def see(self, seq: int, name: str, body: dict[str, Any]) -> None:
        if name == "hold.placed" and isinstance(body.get("hold_id"), int):
            self.holds[body["hold_id"]] = _Hold(
                seq, body.get("target_type"), body.get("target"),
                _iso(_time(body.get("until"))), body.get("reason"))
        elif name in ("hold.released", "hold.lapsed") and isinstance(body.get("hold_id"), int):
            hold = self.holds.get(body["hold_id"])
            if hold is not None and hold.ended is None:
                hold.ended = seq
        elif name == "user.created" and isinstance(body.get("user"), str):
            self.users[body["user"]] = _User(seq, body.get("role"),
                                             list(body.get("functions") or []), seq)
        elif name.startswith("user.") and isinstance(body.get("user"), str):
            user = self.users.get(body["user"])
            if user is None:
                return
            if name == "user.functions_set":
                user.functions, user.functions_seq = list(body.get("functions") or []), seq
            elif name in ("user.disabled", "user.enabled"):
                user.disabled, user.disabled_seq = name == "user.disabled", seq


_HOLD_ROWS = select(holds.c.id, holds.c.target_type, holds.c.target, holds.c.until,
                    holds.c.reason, holds.c.released_at).order_by(holds.c.id)
_USER_ROWS = select(users.c.name, users.c.role, users.c.functions,
                    users.c.disabled_at).order_by(users.c.name)


def check_holds(conn: Connection, recorded: AdminRecorded, add: Add) -> int:
    """Every hold row against its entries; a recorded hold still on whose row is gone.
    How many rows were read."""
    count, seen = 0, set()
    for row in stream(conn, _HOLD_ROWS):
        count += 1
        seen.add(row.id)
        rec = recorded.holds.get(row.id)
        key = str(row.id)
        if rec is None:
            add("holds", key, "target", row.target, None, None)
            continue
        for name, want in (("target_type", rec.target_type), ("target", rec.target),
                           ("reason", rec.reason)):
            if getattr(row, name) != want:
                add("holds", key, name, getattr(row, name), want, rec.seq)
        if rec.until is not None and _iso(row.until) != rec.until:
            add("holds", key, "until", _iso(row.until), rec.until, rec.seq)
        if (row.released_at is not None) != (rec.ended is not None):
            add("holds", key, "released",
                "ended" if row.released_at is not None else "still on",
                "ended" if rec.ended is not None else "still on", rec.ended or rec.seq)
    for hold_id, rec in sorted(recorded.holds.items()):
        if hold_id not in seen and rec.ended is None:
            add("holds", str(hold_id), "row", None,
                f"hold.placed on {rec.target_type} {rec.target}", rec.seq)
    return count


def check_users(conn: Connection, recorded: AdminRecorded, add: Add) -> int:
    """Every user row's role, functions and disabled state against its entries. How many
    rows were read."""
    count = 0
    for row in stream(conn, _USER_ROWS):
        count += 1
        rec = recorded.users.get(row.name)
        if rec is None:
            add("users", row.name, "role", row.role, None, None)
            continue
        if row.role != rec.role:
            add("users", row.name, "role", row.role, rec.role, rec.seq)
        functions = list(row.functions) if isinstance(row.functions, list) else row.functions
        if functions != rec.functions:
            add("users", row.name, "functions", functions, rec.functions, rec.functions_seq)
        if (row.disabled_at is not None) != rec.disabled:
            add("users", row.name, "disabled", row.disabled_at is not None, rec.disabled,
                rec.disabled_seq or rec.seq)
    return count
