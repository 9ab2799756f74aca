"""``DecisionEngine``: runs the decision graph with the guards LangGraph leaves to us.

LangGraph silently accepts several misuses (see the crib sheet): resuming a finished
thread returns its final state, a resume keyed by an unknown interrupt id is ignored,
and new input on a thread with a pending interrupt abandons it. The engine refuses each
with a ``ConflictError`` before anything is invoked. It also keeps the store's approval
rows in step with the pending interrupts, and holds the decision's lease (with its
fencing token) while the graph runs, so one decision has one writer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Literal

from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from agent.checkpoints import FencedCheckpointer
from agent.errors import ConflictError, NothingToResume
from agent.models import (
    SCHEMA_VERSION,
    ApprovalRequest,
    ApprovalStatus,
    DecisionStatus,
    Prediction,
    TriageAction,
    decision_id_for,
)
from agent.policy import Policies
from agent.store import Claim, Store
from agent.telemetry import Metrics, carrier, span
from graphs.context import DecisionContext

__all__ = ["DecisionEngine", "StepResult"]


@dataclass
class StepResult:
    decision_id: str
    status: str
    pending_approvals: list[str] = field(default_factory=list)


class DecisionEngine:
    def __init__(self, graph: CompiledStateGraph, *, store: Store, policies: Policies,
                 context: Callable[[int], DecisionContext], owner: str,
                 lease_seconds: float = 120,
                 durability: Literal["exit", "async", "sync"] = "exit",
                 fencing: FencedCheckpointer | None = None,
                 metrics: Metrics | None = None) -> None:
        self.graph = graph
        self._store = store
        self._policies = policies
        self._context = context
        self._owner = owner
        self._lease_seconds = lease_seconds
        self._durability = durability
        self._fencing = fencing
        self._metrics = metrics

    @staticmethod
    def config(decision_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": decision_id}}

    # ------------------------------------------------------------------ public

    def start(self, prediction_id: str) -> StepResult:
        """Start the decision for an actionable prediction (refused if it exists)."""
        row = self._store.prediction_row(prediction_id)
        if row is None:
            raise ConflictError(f"no prediction {prediction_id!r}")
        if row["triage_action"] != TriageAction.ACT.value:
            raise ConflictError(f"prediction {prediction_id} was triaged "
                                f"{row['triage_action'] or 'not yet'} ({row['triage_reason']}); "
                                "only actionable predictions start decisions")
        decision_id = decision_id_for(prediction_id)
        self._refuse_started_thread(decision_id)
        prediction = Prediction.model_validate(row["payload"])
        fence = self._store.create_decision(decision_id, prediction, playbook=row["playbook"],
                                            expected_value=row["expected_value"],
                                            actor=self._owner, lease_seconds=self._lease_seconds)
        if fence is None:
            raise ConflictError(f"decision {decision_id} exists already; use recover()")
        return self._invoke(decision_id, self._input(decision_id, prediction.model_dump(mode="json"),
                                                     row["playbook"]), fence=fence, leg="start",
                            fresh=True)

    def start_claimed(self, claim: Claim) -> StepResult:
        """Run a decision whose row this worker created and leased
        (``Store.claim_new_decisions``, which read the prediction in the same
        transaction)."""
        self._refuse_started_thread(claim.decision_id)
        return self._invoke(claim.decision_id,
                            self._input(claim.decision_id, claim.prediction, claim.playbook),
                            fence=claim.fence, leg="start", fresh=True)

    def _refuse_started_thread(self, decision_id: str) -> None:
        snapshot = self.graph.get_state(self.config(decision_id))
        if snapshot.values:
            if snapshot.next:
                raise ConflictError(f"decision {decision_id} is waiting for approvals; answer "
                                    "them instead of starting it again")
            raise ConflictError(f"decision {decision_id} already finished "
                                f"({snapshot.values.get('outcome')})")

    def resume(self, decision_id: str) -> StepResult:
        """Apply every recorded-but-unapplied approval answer of the decision."""
        answered = self._store.answered_unapplied(decision_id)
        if not answered:
            raise NothingToResume(f"decision {decision_id} has no answered approvals to apply")
        snapshot = self.graph.get_state(self.config(decision_id))
        if not snapshot.next:
            raise ConflictError(f"decision {decision_id} already finished; nothing to resume")
        pending = {i.id for i in snapshot.interrupts}
        resume: dict[str, Any] = {}
        stale: list[str] = []
        for row in answered:
            if row["status"] == ApprovalStatus.AUTO_APPROVED.value:
                stale.append(row["id"])
            elif row["interrupt_id"] in pending:
                resume[row["interrupt_id"]] = {"answer": row["answer"], "approver": row["approver"],
                                               "approved_arguments": row["approved_arguments"]}
            else:
                raise ConflictError(f"approval {row['id']} answers an interrupt that is not "
                                    f"pending on {decision_id}")
        self._store.mark_applied(stale)
        if not resume:
            return self._result(decision_id)
        applied = [r["id"] for r in answered if r["interrupt_id"] in resume]
        # Marked while this worker still holds the lease, so no other worker can apply
        # the same answers again in between.
        return self._invoke(decision_id, Command(resume=resume), leg="resume",
                            parent=snapshot.values.get("trace"),
                            before_release=lambda: self._store.mark_applied(applied))

    def resume_interrupts(self, decision_id: str, answers: Mapping[str, Any]) -> StepResult:
        """Low-level resume by interrupt id, refusing ids that are not pending."""
        if not answers:
            raise ConflictError("no answers given")
        snapshot = self.graph.get_state(self.config(decision_id))
        if not snapshot.values:
            raise ConflictError(f"decision {decision_id} has never started")
        if not snapshot.next:
            raise ConflictError(f"decision {decision_id} already finished; nothing to resume")
        pending = {i.id for i in snapshot.interrupts}
        unknown = sorted(set(answers) - pending)
        if unknown:
            raise ConflictError(f"interrupt ids not pending on {decision_id}: "
                                f"{', '.join(unknown)} (pending: {', '.join(sorted(pending)) or 'none'})")
        return self._invoke(decision_id, Command(resume=dict(answers)), leg="resume",
                            parent=snapshot.values.get("trace"))

    def recover(self, decision_id: str) -> StepResult:
        """Carry on a decision whose worker stopped mid-way (crash, lost lease)."""
        decision = self._store.decision(decision_id)
        snapshot = self.graph.get_state(self.config(decision_id))
        if not snapshot.values:
            prediction = self._store.prediction(decision["prediction_id"])
            return self._invoke(decision_id, self._input(
                decision_id, prediction.model_dump(mode="json"), decision["playbook"]),
                leg="recover")
        if not snapshot.next:
            return self._result(decision_id)
        if self._store.answered_unapplied(decision_id):
            return self.resume(decision_id)
        self._sync_interrupts(decision_id, snapshot.interrupts)
        return self._result(decision_id)

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _input(decision_id: str, prediction: dict[str, Any], playbook: str | None
               ) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "decision_id": decision_id,
                "prediction": prediction, "playbook": playbook, "plan": None,
                "feedback": [], "answers": {}, "outcome": None, "error": None}

    def _invoke(self, decision_id: str, payload: Any, *, leg: str,
                parent: dict[str, str] | None = None, fence: int | None = None,
                before_release: Callable[[], None] | None = None, fresh: bool = False
                ) -> StepResult:
        with span(f"decision {leg}", parent=parent,
                  attributes={"decisionops.decision_id": decision_id,
                              "decisionops.leg": leg}) as current:
            if isinstance(payload, dict):
                payload = {**payload, "trace": carrier()}
            result = self._invoke_leased(decision_id, payload, fence, before_release,
                                         fresh=fresh)
            current.set_attribute("decisionops.status", result.status)
        if self._metrics is not None and DecisionStatus(result.status).terminal:
            self._metrics.decisions.labels(result.status).inc()
        return result

    def _invoke_leased(self, decision_id: str, payload: Any, fence: int | None,
                       before_release: Callable[[], None] | None, *, fresh: bool = False
                       ) -> StepResult:
        if fence is None:
            fence = self._store.claim(decision_id, self._owner, self._lease_seconds)
        released = False
        if self._fencing is not None:
            self._fencing.expect(decision_id, fence)
        context = replace(self._context(fence), fresh=fresh, settled=(
            partial(self._fencing.forget, decision_id) if self._fencing is not None else None))
        try:
            out = self.graph.invoke(payload, self.config(decision_id),
                                    context=context, durability=self._durability)
            if out.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
                raise ConflictError(f"decision {decision_id} has state schema version "
                                    f"{out.get('schema_version')}; this build reads {SCHEMA_VERSION}")
            self._sync_interrupts(decision_id, out.get("__interrupt__", ()))
            if before_release is not None:
                before_release()
            outcome = out.get("outcome")
            if not out.get("__interrupt__") and outcome and DecisionStatus(outcome).terminal:
                # The record node wrote this status (fenced) and released the lease in
                # the transaction that ended the run: nothing is pending any more.
                result = StepResult(decision_id, outcome, [])
            else:
                result = self._result(decision_id)
            released = DecisionStatus(result.status).terminal  # the record node released it
        finally:
            if self._fencing is not None:
                self._fencing.forget(decision_id)
            if not released:
                self._store.release(decision_id, fence)
        return result

    def _sync_interrupts(self, decision_id: str, interrupts: Any) -> None:
        requests = []
        for intr in interrupts:
            request = ApprovalRequest.model_validate(intr.value)
            sla = self._policies.get(request.function).sla_hours
            requests.append((request, intr.id, sla))
        if requests:
            self._store.request_approvals(requests, actor=self._owner)

    def _result(self, decision_id: str) -> StepResult:
        decision = self._store.decision(decision_id)
        pending = [a["id"] for a in self._store.approvals(decision_id=decision_id,
                                                          status=ApprovalStatus.PENDING.value)]
        return StepResult(decision_id, decision["status"], pending)
