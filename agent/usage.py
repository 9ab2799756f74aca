"""Totals where they bind: right before calls are made, inside the executor's write-ahead
transaction. Each call's share of the function policies' totals (``policy.Total``) is
checked against what every other call used (``usage``), serialized per total on
PostgreSQL, and claimed in the same transaction; a call that would take a total over
its maximum is refused. The arithmetic is ``policy``'s; the record is the store's.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from decisionops.agent.policy import Policies, Total
from decisionops.agent.ports import ToolPort
from decisionops.agent.store import DecisionTx, Store
from decisionops.agent.store._executions import Share, used

__all__ = ["Call", "claim_shares"]


@dataclass(frozen=True)
class Call:
    """A call about to be made: its idempotency key, function, tool and arguments."""

    key: str
    function: str
    tool: str
    arguments: Mapping[str, Any]


def claim_shares(tx: DecisionTx, store: Store, policies: Policies, tools: ToolPort,
                 calls: Sequence[Call], *, auto: Collection[str] = ()) -> dict[str, str]:
    """Key → why the call is refused, for calls over a total; the others' shares are
    claimed. ``auto``: functions policy approved (their auto-approve totals bind too)."""
    checks: list[tuple[Call, Total, Share, bool]] = []
    for call in calls:
        policy = policies.get(call.function)
        totals = [(t, False) for t in policy.totals]
        if call.function in auto:
            totals += [(t, True) for t in policy.auto_approve.totals]
        for total, automatic in totals:
            value = call.arguments.get(total.sum)
            if total.tool != call.tool or not isinstance(value, int | float) \
                    or isinstance(value, bool):
                continue
            target = tools.spec(call.tool).target_of(call.arguments)
            checks.append((call, total, Share(call.key, total.tool, total.sum, target,
                                              float(value)), automatic))
    if not checks:
        return {}
    store.executions.lock_totals(tx, [f"{total.tool}:{total.sum}" for _, total, _, _ in checks])
    ours = sorted({c.key for c, _, _, _ in checks})
    batch: dict[tuple[Any, ...], float] = {}
    refused: dict[str, str] = {}
    for call, total, share, automatic in checks:
        if call.key in refused:
            continue
        group = {"decision": tx.decision_id, "entity": share.target, "all": "*"}[total.per]
        since = tx.now - timedelta(days=total.within_days) if total.within_days else None
        prior = used(tx.conn, tool=total.tool, measure=total.sum,
                     target=share.target if total.per == "entity" else None,
                     since=None if total.per == "decision" else since,
                     decision_id=tx.decision_id if total.per == "decision" else None,
                     exclude_keys=ours)
        key = (total, group)
        amount = prior + batch.get(key, 0.0) + share.amount
        if amount > total.max + 1e-9:
            refused[call.key] = (f"refused: {total.tool} {total.sum} would add up to "
                                 f"{amount:g}, over the {'auto-approve ' if automatic else ''}"
                                 f"total of {total.max:g} {total.scope()}")
            continue
        batch[key] = batch.get(key, 0.0) + share.amount
    # One share per call and argument, however many totals count it.
    store.executions.claim_shares(tx, list({(s.key, s.measure): s for c, _, s, _ in checks
                                            if c.key not in refused}.values()))
    return refused
