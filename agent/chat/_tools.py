"""The ops chat's tools: what the chat can read, and the few controls operators get.

Read tools (everyone with chat access): pending approvals, explain a decision, why an
entity was (not) acted on, search the ledger, metrics. Control tools (operators and
admins only): hold or release an entity or playbook until a time, re-run triage. There
is no tool that answers an approval: chat can never approve.

Each tool takes one argument model (validated: model output is untrusted input) and
returns JSON-able data, bounded in size. Used by the command parser, the free-phrasing
recogniser (``_intents``) and the LLM loop, so all three have exactly the same powers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from decisionops.agent.errors import (
    InvalidInputError,
    NotFoundError,
    PermissionDenied,
    pydantic_message,
)
from decisionops.agent.models import Identifier

__all__ = ["CONTROL_TOOLS", "ChatTools", "ChatUser"]

CONTROL_TOOLS = frozenset({"hold", "release", "rerun_triage"})


@dataclass(frozen=True)
class ChatUser:
    name: str
    role: str
    functions: tuple[str, ...] = ()

    @property
    def operator(self) -> bool:
        return self.role in ("operator", "admin")


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PendingArgs(_Args):
    function: Annotated[str, Field(max_length=64)] | None = None
    entity_id: Identifier | None = None


class DecisionArgs(_Args):
    decision_id: Identifier


class EntityArgs(_Args):
    entity_id: Identifier


class LedgerArgs(_Args):
    query: Annotated[str, Field(max_length=200)] | None = None
    """A decision id, or part of an event name (``approval.refused``)."""
    limit: Annotated[int, Field(ge=1, le=50)] = 20


class NoArgs(_Args):
    pass


class QueueArgs(_Args):
    limit: Annotated[int, Field(ge=1, le=50)] = 20


class HoldArgs(_Args):
    target: Identifier
    """An entity id (``ACC-10023``), a playbook name (``churn-retention``), a business
    function (``finance``) or a decision id."""
    until: datetime
    reason: Annotated[str, Field(max_length=500)] = ""

    @field_validator("until")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ReleaseArgs(_Args):
    target: Annotated[str, Field(pattern=r"^#\d{1,9}$")] | Identifier
    """What is held (as for ``hold``), or one hold by its number: ``#3``."""


_DESCRIPTIONS = {
    "pending_approvals": ("Pending approval requests, most urgent first (optionally of one "
                          "function, of one entity, or both).", PendingArgs),
    "explain_decision": ("Explain one decision: prediction, triage, plan steps and their "
                         "status, approvals, executions.", DecisionArgs),
    "why_entity": ("Why an entity was or was not acted on: its latest predictions with "
                   "triage verdicts, decisions, and holds.", EntityArgs),
    "search_ledger": ("Newest ledger entries matching a decision id or event name.",
                      LedgerArgs),
    "metrics": ("Counts: decisions by status, pending approvals by function, triage "
                "verdicts, step outcomes (for an approver: the decisions they see and "
                "their functions' requests only).", NoArgs),
    "needs_human_queue": ("Predictions waiting for a person (outcome needs_human: no "
                          "playbook for the kind, no value at stake, or a decision that "
                          "needs a human), oldest first, with the reason.", QueueArgs),
    "hold": ("Operators only. Hold an entity, a playbook or a business function until a "
             "time: triage drops the entity's or playbook's new predictions (reason 'hold'), "
             "and no answer is applied and no step started for work it covers until then "
             "or a release.", HoldArgs),
    "release": ("Operators only. Release the active holds on an entity, playbook or "
                "function; the work they held carries on.", ReleaseArgs),
    "rerun_triage": ("Operators only. Triage the predictions not triaged yet now.", NoArgs),
}


def _said(answer: dict[str, Any] | None) -> str:
    """What an answer said in words (trial 26: "why was it rejected?" left the reason
    out), or ""."""
    words = (answer or {}).get("reason") or (answer or {}).get("comment")
    return f"; said: {words}" if words and words not in ("policy",) else ""


class ChatTools:
    """The tools bound to one runtime and one user."""

    def __init__(self, runtime: Any, user: ChatUser) -> None:
        self._rt = runtime
        self.user = user
        self._impl: dict[str, Callable[[Any], Any]] = {
            "pending_approvals": self.pending_approvals, "explain_decision": self.explain,
            "why_entity": self.why, "search_ledger": self.search_ledger,
            "metrics": self.metrics, "hold": self.hold, "release": self.release,
            "rerun_triage": self.rerun_triage, "needs_human_queue": self.needs_human_queue}

    def names(self) -> list[str]:
        return [n for n in _DESCRIPTIONS if self.user.operator or n not in CONTROL_TOOLS]

    def openai_tools(self) -> list[dict[str, Any]]:
        out = []
        for name in self.names():
            description, model = _DESCRIPTIONS[name]
            schema = model.model_json_schema()
            schema.pop("title", None)
            out.append({"type": "function", "function": {
                "name": name, "description": description, "parameters": schema}})
        return out

    def call(self, name: str, arguments: Any) -> Any:
        """Run a tool; raises ``NotFoundError`` (unknown tool), ``PermissionDenied``
        (a control tool for a non-operator) or ``InvalidInputError`` (bad arguments)."""
        if name not in _DESCRIPTIONS:
            raise NotFoundError(f"unknown tool {name!r}; tools: {', '.join(self.names())}")
        if name in CONTROL_TOOLS and not self.user.operator:
            raise PermissionDenied(f"{name} is for operators; {self.user.name} is "
                                   f"{self.user.role}")
        model = _DESCRIPTIONS[name][1]
        try:
            args = model.model_validate(arguments if isinstance(arguments, dict) else {})
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            field = ".".join(str(p) for p in err["loc"]) or None
            raise InvalidInputError(pydantic_message(err), field=field) from None
        return self._impl[name](args)

    # ------------------------------------------------------------------ read tools

    def _functions(self) -> list[str] | None:
        return None if self.user.operator else list(self.user.functions)

    def _may_see(self, decision: dict[str, Any]) -> bool:
        # The store's one rule (agent.store.seen_by), as the API and the inbox ask it.
        return self._rt.store.decisions.seen(decision["id"], self._functions())

    def pending_approvals(self, args: PendingArgs) -> list[dict[str, Any]]:
        functions = self._functions()
        if args.function:
            self._rt.policies.get(args.function)
            if functions is not None and args.function not in functions:
                return []
            functions = [args.function]
        if functions == []:
            return []
        rows = self._rt.store.approvals.inbox(functions, entity_id=args.entity_id, limit=20)
        return [{"approval_id": r["id"], "function": r["function"], "decision_id":
                 r["decision_id"], "kind": r["kind"], "entity_id": r["entity_id"],
                 "deadline": r["deadline"].isoformat() if r["deadline"] else None,
                 "value_at_stake": r["value_at_stake"], "why_asked": r["reason"]} for r in rows]

    def explain(self, args: DecisionArgs) -> dict[str, Any]:
        store = self._rt.store
        try:
            decision = store.decisions.get(args.decision_id).to_dict()
        except NotFoundError:
            try:  # an approval request's id: its decision (trial 26: "no decision")
                request = store.approvals.get(args.decision_id)
            except NotFoundError:
                raise NotFoundError(f"no decision {args.decision_id!r}",
                                    field="decision_id") from None
            decision = store.decisions.get(request.decision_id).to_dict()
        if not self._may_see(decision):
            raise NotFoundError(f"no decision {args.decision_id!r}", field="decision_id")
        prediction = store.predictions.row(decision["prediction_id"]) or {}
        steps = (store.plans.steps(decision["id"], decision["plan_version"])
                 if decision["plan_version"] else [])
        return {
            "decision_id": decision["id"], "status": decision["status"],
            "kind": decision["kind"], "entity_id": decision["entity_id"],
            "expected_value": decision["expected_value"], "error": decision["error"],
            "score": prediction.get("score"),
            "triage": f"{prediction.get('triage_action')}: {prediction.get('triage_detail')}",
            "plan_version": decision["plan_version"],
            "steps": [f"{s['function']}:{s['step_id']} {s['tool']} -> {s['status']}"
                      + (f" ({s['detail']})" if s.get("detail") else "")  # why skipped
                      for s in steps],
            # Each request with why it went to a person (or policy), as the inbox says it.
            "approvals": [f"v{a.plan_version} {a.function}: {a.status.value}"
                          + (f" by {a.approver}" if a.approver else "")
                          + (f" (asked because: {a.reason})" if a.reason else "")
                          + _said(a.answer)  # a rejection's reason, an answer's comment
                          for a in store.approvals.list(decision_id=decision["id"])],
            "executions": [f"{e.step_id} {e.tool}: {e.status.value}"
                           for e in store.executions.list(decision["id"])][:20],
            "held": self._rt.approvals.held(store.decisions.get(decision["id"]),
                                            [s["function"] for s in steps]),
        }

    def why(self, args: EntityArgs) -> dict[str, Any]:
        store = self._rt.store
        # What this user sees of them: an approver the queue and their functions' decisions.
        predictions = store.prediction_views.list(entity_id=args.entity_id, limit=10,
                                                  functions=self._functions())
        holds = [h.to_dict() for h in store.holds.list() if h.target == args.entity_id]
        return {"entity_id": args.entity_id,
                "predictions": [{"prediction_id": p.id, "kind": p.kind, "score": p.score,
                                 "triage": p.triage_action or "untriaged",
                                 "reason": p.triage_reason, "detail": p.detail,
                                 "outcome": p.outcome, "decision": p.decision_id,
                                 "status": p.decision_status}
                                for p in predictions],
                "holds": [{"hold_id": h["id"], "until": h["until"].isoformat(),
                           "reason": h["reason"]} for h in holds]}

    def search_ledger(self, args: LedgerArgs) -> list[dict[str, Any]]:
        if not self.user.operator and args.query and args.query.startswith("dec_"):
            self.call("explain_decision", {"decision_id": args.query})  # visibility check
        elif not self.user.operator:
            raise PermissionDenied("approvers search the ledger of one decision they see: "
                                   "give its id")
        entries = self._rt.store.ledger.search(text=args.query, limit=args.limit)
        return [{"seq": e.seq, "at": e.at.isoformat(), "actor": e.actor, "event": e.event,
                 "decision_id": e.decision_id} for e in entries]

    def metrics(self, _args: NoArgs) -> dict[str, Any]:
        """The counts the user may see: an approver's are of the decisions they see
        and their functions' requests (triage and step counts are the operators')."""
        store = self._rt.store
        if (functions := self._functions()) is not None:
            return {"decisions": store.decisions.counts(functions=functions),
                    "pending": {f: n for f, n in store.approvals.pending_count().items()
                                if f in functions}}
        return {"decisions": store.decisions.counts(),
                "pending": store.approvals.pending_count(),
                "triage": {f"{a}:{r}": n for (a, r), n in
                           store.predictions.triage_counts().items()},
                "steps": store.executions.step_counts()}

    def needs_human_queue(self, args: QueueArgs) -> dict[str, Any]:
        queue = self._rt.queue
        return {"waiting": queue.size(), "predictions": [
            {"prediction_id": v.id, "kind": v.kind, "entity_id": v.entity_id, "score": v.score,
             "expected_value": v.expected_value, "reason": v.reason, "detail": v.detail,
             "decision": v.decision_id} for v in queue.list(limit=args.limit)]}

    # ------------------------------------------------------------------ control tools

    def hold(self, args: HoldArgs) -> dict[str, Any]:
        row = self._rt.approvals.hold(args.target, until=args.until,
                                      reason=args.reason or "ops chat", actor=self.user.name)
        return {"hold_id": row.id, "target_type": row.target_type, "target": row.target,
                "until": row.until.isoformat()}

    def release(self, args: ReleaseArgs) -> dict[str, Any]:
        released = self._rt.approvals.release_holds(args.target, actor=self.user.name)
        target = released[0].target if args.target.startswith("#") else args.target
        return {"target": target, "released": [h.id for h in released]}

    def rerun_triage(self, _args: NoArgs) -> dict[str, Any]:
        summary = self._rt.triage_pending()
        counts: dict[str, int] = {}
        for v in summary.verdicts:
            key = f"{v.action.value}:{v.reason}"
            counts[key] = counts.get(key, 0) + 1
        return {"triaged": len(summary.verdicts), "verdicts": counts}
