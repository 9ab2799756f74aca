"""LLM planner records: one row per model call (``llm_calls``), spend and token sums
for the caps, the plan cache (``plan_cache``) and planner ledger entries.
``Store.llm``; implements ``agent.llm.LLMStore``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from sqlalchemy import Integer, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from decisionops.agent.models import Plan, utcnow
from decisionops.agent.store import _tables as t
from decisionops.agent.store._db import Repo, insert_or_skip
from decisionops.agent.store._plans import PlanRepo, drop_replies
from decisionops.agent.store.ledger import Event

__all__ = ["REPLAYED", "Journaled", "LLMRepo"]

REPLAYED = "replayed"
"""The outcome of a call answered from the journal: no request was sent."""


class Journaled(NamedTuple):
    """A reply kept for a draft, and what the call that got it cost."""

    reply: str
    tokens_in: int
    tokens_out: int
    cost: float


_INSERT_CALL = insert(t.llm_calls)
_SPEND_ON = select(t.llm_spend.c.cost).where(t.llm_spend.c.day == bindparam("day"))
_DECISION_TOKENS = (select(func.coalesce(func.sum(t.llm_calls.c.tokens_in
                                                  + t.llm_calls.c.tokens_out), 0))
                    .where(t.llm_calls.c.decision_id == bindparam("decision_id")))
"""Built once, as ``_SPEND_ON``: both are read before every draft (the caps)."""
_JOURNAL = select(t.llm_replies.c.request_hash, t.llm_replies.c.occurrence,
                  t.llm_replies.c.reply, t.llm_replies.c.tokens_in, t.llm_replies.c.tokens_out,
                  t.llm_replies.c.cost).where(
    t.llm_replies.c.decision_id == bindparam("decision_id"),
    t.llm_replies.c.plan_version == bindparam("plan_version"))
_KEEP_REPLY = insert_or_skip(t.llm_replies)


def _day(at: datetime) -> str:
    return at.astimezone(UTC).date().isoformat()


class LLMRepo(Repo):
    # ------------------------------------------------------------------ calls and spend

    def record_llm_call(self, *, decision_id: str | None, plan_version: int | None,
                        purpose: str, model: str, prompt_version: str | None, tokens_in: int,
                        tokens_out: int, cost: float, latency_ms: float | None,
                        outcome: str, at: datetime | None = None,
                        request_hash: str | None = None, occurrence: int = 1,
                        reply: str | None = None) -> None:
        """One call (an HTTP attempt, or a reply replayed from the journal: outcome
        ``replayed``, at no cost and not counted in the day's calls); with ``reply`` the
        successful reply is journaled under ``request_hash`` (asked for the
        ``occurrence``-th time in the draft) until the plan version is stored
        (``journal``)."""
        at = at or utcnow()
        with self.transaction() as conn:
            conn.execute(_INSERT_CALL, {
                "decision_id": decision_id, "plan_version": plan_version,
                "purpose": purpose[:32], "model": model[:200],
                "prompt_version": (prompt_version or "")[:64] or None, "tokens_in": tokens_in,
                "tokens_out": tokens_out, "cost": cost, "latency_ms": latency_ms,
                "outcome": outcome[:32], "at": at})
            if outcome != REPLAYED:
                # The call's day's total, in the same transaction (what the cap reads).
                dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
                add = dialect.insert(t.llm_spend).values(day=_day(at), cost=cost, calls=1)
                conn.execute(add.on_conflict_do_update(
                    index_elements=[t.llm_spend.c.day], set_={
                        "cost": t.llm_spend.c.cost + add.excluded.cost,
                        "calls": t.llm_spend.c.calls + add.excluded.calls}))
            if reply is not None and request_hash is not None and decision_id is not None \
                    and plan_version is not None:
                conn.execute(_KEEP_REPLY[conn.dialect.name], {
                    "decision_id": decision_id, "plan_version": plan_version,
                    "request_hash": request_hash, "occurrence": occurrence, "reply": reply,
                    "tokens_in": tokens_in, "tokens_out": tokens_out, "cost": cost, "at": at})

    def record_replay(self, *, decision_id: str, plan_version: int, purpose: str, model: str,
                      prompt_version: str | None, at: datetime | None = None) -> None:
        """A request a draft run again answered from the journal (``REPLAYED``): listed
        with the decision's calls, at no cost, not counted as a call sent."""
        self.record_llm_call(decision_id=decision_id, plan_version=plan_version,
                             purpose=purpose, model=model, prompt_version=prompt_version,
                             tokens_in=0, tokens_out=0, cost=0.0, latency_ms=0.0,
                             outcome=REPLAYED, at=at)

    def journal(self, decision_id: str, plan_version: int) -> dict[tuple[str, int], Journaled]:
        """The replies journaled while drafting this plan version (a draft cut short
        before the version was stored), by (request hash, occurrence); usually none."""
        with self.reading() as conn:
            return {(r.request_hash, r.occurrence): Journaled(r.reply, r.tokens_in,
                                                                r.tokens_out, r.cost)
                    for r in conn.execute(_JOURNAL, {"decision_id": decision_id,
                                                     "plan_version": plan_version})}

    def replies_held(self, decision_id: str) -> int:
        """How many replies are journaled for the decision's drafts (every version)."""
        with self.reading() as conn:
            return int(conn.scalar(select(func.count()).select_from(t.llm_replies).where(
                t.llm_replies.c.decision_id == decision_id)) or 0)

    def drop_replies(self, decision_id: str, plan_version: int) -> None:
        """Forget the replies journaled for a plan version (stored: nothing replays them)."""
        with self.transaction() as conn:
            drop_replies(conn, decision_id, plan_version)

    def spend_on(self, day: date) -> float:
        """What the LLM calls of UTC day ``day`` cost (every planner, every worker)."""
        with self.reading() as conn:
            total = conn.scalar(_SPEND_ON, {"day": day.isoformat()})
        return float(total or 0.0)

    def decision_tokens(self, decision_id: str) -> int:
        with self.reading() as conn:
            total = conn.scalar(_DECISION_TOKENS, {"decision_id": decision_id})
        return int(total or 0)

    def llm_calls(self, decision_id: str | None = None, *, limit: int = 1000
                  ) -> list[dict[str, Any]]:
        """Recorded calls, oldest first (of one decision, or all)."""
        query = select(t.llm_calls).order_by(t.llm_calls.c.id).limit(limit)
        if decision_id is not None:
            query = query.where(t.llm_calls.c.decision_id == decision_id)
        with self.reading() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def llm_usage(self, since: datetime | None = None) -> dict[str, Any]:
        """Calls, tokens and cost in total (since ``since``), and calls by outcome."""
        where = [t.llm_calls.c.at >= since] if since is not None else []
        with self.reading() as conn:
            made = (t.llm_calls.c.outcome != REPLAYED).cast(Integer)  # replays sent nothing
            row = conn.execute(select(func.coalesce(func.sum(made), 0),
                                      func.coalesce(func.sum(t.llm_calls.c.tokens_in), 0),
                                      func.coalesce(func.sum(t.llm_calls.c.tokens_out), 0),
                                      func.coalesce(func.sum(t.llm_calls.c.cost), 0.0))
                               .where(*where)).one()
            outcomes = dict(conn.execute(select(t.llm_calls.c.outcome, func.count())  # type: ignore[arg-type]
                                         .where(*where).group_by(t.llm_calls.c.outcome)).all())
        return {"calls": int(row[0]), "tokens_in": int(row[1]), "tokens_out": int(row[2]),
                "cost": float(row[3]), "outcomes": outcomes}

    # ------------------------------------------------------------------ plan cache

    def cache_get(self, signatures: Sequence[str], *, newer_than: datetime
                  ) -> dict[str, Any] | None:
        """The newest entry under any of ``signatures`` created after ``newer_than``."""
        with self.reading() as conn:
            row = conn.execute(select(t.plan_cache)
                               .where(t.plan_cache.c.signature.in_(list(signatures)),
                                      t.plan_cache.c.created_at >= newer_than)
                               .order_by(t.plan_cache.c.created_at.desc(), t.plan_cache.c.signature)
                               .limit(1)).first()
        return None if row is None else dict(row._mapping)

    def cache_hit(self, signature: str, at: datetime | None = None) -> None:
        with self.transaction() as conn:
            conn.execute(update(t.plan_cache).where(t.plan_cache.c.signature == signature)
                         .values(hits=t.plan_cache.c.hits + 1, last_hit_at=at or utcnow()))

    def cache_put(self, signature: str, *, kind: str, playbook: str | None, planner: str,
                  body: dict[str, Any], source_decision_id: str | None,
                  at: datetime | None = None) -> None:
        """Store (or replace) the entry for ``signature``; its age restarts. Planners
        drafting at once may store one signature together: the later write wins."""
        values = {"kind": kind, "playbook": playbook, "planner": planner, "body": body,
                  "source_decision_id": source_decision_id, "created_at": at or utcnow(),
                  "hits": 0, "last_hit_at": None}
        with self.transaction() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            conn.execute(dialect.insert(t.plan_cache).values(signature=signature, **values)
                         .on_conflict_do_update(index_elements=[t.plan_cache.c.signature],
                                                set_=values))

    def cache_stats(self) -> dict[str, int]:
        with self.reading() as conn:
            entries, hits = conn.execute(select(func.count(),
                                                func.coalesce(func.sum(t.plan_cache.c.hits), 0))
                                         ).one()
        return {"entries": int(entries), "hits": int(hits)}

    # ------------------------------------------------------------------ plans and ledger

    def plan(self, decision_id: str, version: int | None = None) -> Plan:
        """A stored plan version (``NotFoundError`` if none)."""
        return PlanRepo(self._db).get(decision_id, version)

    def record_planner_event(self, *, decision_id: str, event: str, body: dict[str, Any],
                             actor: str) -> None:
        with self.transaction() as conn:
            self.record(conn, [Event(actor=actor, event=event, decision_id=decision_id,
                                     body=body)])
