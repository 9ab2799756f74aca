"""The part of the LangGraph Server API that ``langgraph_sdk`` and Agent Inbox use, under
``/langgraph`` (point a client at ``http://<host>:<port>/langgraph``). An adapter: every
answer goes to ``ApprovalService.answer``, which owns the rules.

* One assistant, ``decision`` (graph ``decision``): ``POST /assistants/search``,
  ``GET /assistants/{id}``.
* A thread is a decision (thread id = decision id). Its status: ``interrupted`` while
  requests the caller may see are pending, ``idle`` once it is terminal, ``busy``
  otherwise. ``POST /threads/search`` (``status``, ``limit``, ``offset``),
  ``GET /threads/{id}``, ``GET /threads/{id}/state``. An interrupt is one pending
  approval request: ``{"id": <approval id>, "value": <HumanInterrupt>}``
  (``agent.approvals.human_interrupt``). Approvers see their functions' requests;
  operators and admins see all.
* ``POST /threads/{id}/runs`` and ``/runs/wait`` take ``command.resume`` only: a
  ``HumanResponse`` (alone when the caller has one pending request on the thread) or
  ``{<interrupt id>: <HumanResponse>}``. Each is answered through the approval service
  as the caller (channel ``langgraph``); the worker applies it. ``wait`` returns the
  thread's values once the worker has (``__interrupt__``: what still waits), or after
  ``WAIT_SECONDS``. Decisions start from predictions (``POST /v1/predictions``), never
  from run input.

Authentication: our API tokens, as ``x-api-key`` (what ``langgraph_sdk`` sends for
``api_key=``) or ``Authorization: Bearer``. Not here: streaming, crons, the store,
thread creation: 404 like any unknown path.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from decisionops.agent.api._approvals import approver
from decisionops.agent.api._auth import Principal, Unauthenticated, principal_from_token
from decisionops.agent.api._evidence import public, visible
from decisionops.agent.api._state import ServiceState, get_state
from decisionops.agent.approvals import (
    RESUME_HELP,
    answer_from_human,
    human_interrupt,
    visible_functions,
)
from decisionops.agent.errors import ConflictError, InvalidInputError, NotFoundError
from decisionops.agent.models import ApprovalStatus
from decisionops.agent.runtime import Runtime
from decisionops.agent.store import ApprovalRow, DecisionRow

__all__ = ["WAIT_SECONDS", "langgraph_router"]

ASSISTANT = "decision"
WAIT_SECONDS = 30.0
_EPOCH = "2026-01-01T00:00:00+00:00"


class _SearchIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=100_000)


class _AssistantSearchIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    graph_id: str | None = Field(None, max_length=100)
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=100_000)


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resume: Any = None
    update: None = None
    goto: None = None


class _RunIn(BaseModel):
    """What the SDK sends; only ``assistant_id`` and ``command.resume`` mean anything here."""

    model_config = ConfigDict(extra="ignore")
    assistant_id: str = Field(max_length=100)
    input: None = Field(None, description="not accepted: decisions start from predictions")
    command: _Command | None = None


def _assistant() -> dict[str, Any]:
    return {"assistant_id": ASSISTANT, "graph_id": ASSISTANT, "name": "DecisionOps decision",
            "description": "One decision per prediction: plan, approvals, execution.",
            "config": {}, "context": {}, "metadata": {}, "version": 1,
            "created_at": _EPOCH, "updated_at": _EPOCH}


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


class _Threads:
    """Decisions as LangGraph threads, as ``who`` may see them."""

    def __init__(self, rt: Runtime, who: Principal) -> None:
        self.rt, self.who = rt, who

    def _mine(self, rows: list[ApprovalRow]) -> list[ApprovalRow]:
        if self.who.sees_all:
            return rows
        return [r for r in rows if r.function in self.who.functions]

    def pending(self, decision: DecisionRow) -> list[ApprovalRow]:
        return self._mine(self.rt.store.approvals.list(
            decision_id=decision.id, status=ApprovalStatus.PENDING.value,
            plan_version=decision.plan_version))

    def get(self, thread_id: str) -> DecisionRow:
        try:
            decision = self.rt.store.decisions.get(thread_id)
        except NotFoundError:
            decision = None
        if decision is None or not visible(self.rt, self.who, decision):
            raise NotFoundError(f"no thread {thread_id!r}", field="thread_id")
        return decision

    def interrupts(self, rows: list[ApprovalRow]) -> list[dict[str, Any]]:
        out = []
        for row in rows:
            revisable, offer = self.rt.approvals.revise_offered(row)
            out.append({"id": row.id, "value": human_interrupt(
                row.request, revisable=revisable, revise_can=offer)})
        return out

    def values(self, decision: DecisionRow, rows: list[ApprovalRow]) -> dict[str, Any]:
        values = {k: v for k, v in public(decision).items()}
        if rows:
            values["__interrupt__"] = self.interrupts(rows)
        return values

    def status(self, decision: DecisionRow, rows: list[ApprovalRow]) -> str:
        if rows:
            return "interrupted"
        return "idle" if decision.status.terminal else "busy"

    def thread(self, decision: DecisionRow) -> dict[str, Any]:
        rows = self.pending(decision)
        return {"thread_id": decision.id, "created_at": _iso(decision.created_at),
                "updated_at": _iso(decision.updated_at),
                "metadata": {"graph_id": ASSISTANT, "assistant_id": ASSISTANT,
                             "kind": decision.kind, "entity_id": decision.entity_id},
                "status": self.status(decision, rows), "config": {}, "error": None,
                "values": self.values(decision, rows),
                "interrupts": {row.id: self.interrupts([row]) for row in rows}}

    def state(self, decision: DecisionRow) -> dict[str, Any]:
        rows = self.pending(decision)
        interrupts = self.interrupts(rows)
        checkpoint = {"thread_id": decision.id, "checkpoint_ns": "", "checkpoint_id": None}
        return {"values": self.values(decision, rows),
                "next": ["approval"] if rows else [],
                "tasks": [{"id": i["id"], "name": "approval", "interrupts": [i], "error": None,
                           "state": None, "checkpoint": None, "result": None, "path": []}
                          for i in interrupts],
                "interrupts": interrupts, "metadata": {"graph_id": ASSISTANT},
                "created_at": _iso(decision.updated_at), "checkpoint": checkpoint,
                "parent_checkpoint": None}

    def search(self, body: _SearchIn) -> list[dict[str, Any]]:
        if body.status == "error":
            return []
        functions = visible_functions(self.who)
        if body.status == "interrupted":
            # A decision with a pending request of the caller's functions is one they see.
            ids = list(dict.fromkeys(r["decision_id"] for r in self.rt.store.approvals.inbox(
                functions, limit=5000)))
            decisions = [self.rt.store.decisions.get(i) for i in ids]
        else:
            decisions = self.rt.store.decisions.list(limit=5000, functions=functions)
        out = []
        for decision in decisions:
            thread = self.thread(decision)
            if body.status is None or thread["status"] == body.status:
                out.append(thread)
        return out[body.offset:body.offset + body.limit]


def _resumes(resume: Any, rows: list[ApprovalRow], mine: list[ApprovalRow]) -> dict[str, Any]:
    """Approval id → HumanResponse, from ``command.resume``: keyed by any pending request
    of the thread (the approval service says who may answer it), or one HumanResponse for
    the caller's one pending request."""
    ids = [r.id for r in rows]
    if resume is None:
        raise InvalidInputError("a run here answers a pending request: send command.resume "
                                "(a HumanResponse, or {interrupt id: HumanResponse})",
                                field="command.resume")
    keyed = isinstance(resume, dict) and resume and "type" not in resume
    if keyed:
        for key in resume:
            if key not in ids:
                raise InvalidInputError(
                    f"no pending interrupt {key!r} on this thread (pending: "
                    f"{', '.join(ids) or 'none'}); {RESUME_HELP}", field=f"command.resume.{key}")
        return dict(resume)
    ids = [r.id for r in mine]
    if len(ids) != 1:
        raise InvalidInputError(
            f"{len(ids)} interrupts you can see are pending on this thread "
            f"({', '.join(ids) or 'none'}): resume with {{interrupt id: HumanResponse}}",
            field="command.resume")
    return {ids[0]: resume}


def _answered_before(t: _Threads, decision: DecisionRow, resume: dict[str, Any],
                     pending: dict[str, ApprovalRow]) -> None:
    """A resume keyed by a request of this thread that is no longer pending (answered,
    or of a plan version that is not current) goes to the approval service, which refuses
    it as on every other channel (``replay``, ``stale_plan``: 409, recorded)."""
    for key, value in resume.items():
        if key in pending:
            continue
        try:
            row = t.rt.store.approvals.get(str(key))
        except NotFoundError:
            continue  # not a request at all: _resumes says what is pending
        if row.decision_id != decision.id:
            continue
        try:
            answer = answer_from_human(row.request, value)
        except InvalidInputError:
            continue  # not an answer either: _resumes says what is pending
        t.rt.approvals.answer(row.id, answer, by=approver(t.who, "langgraph"),
                              plan_hash=row.plan_hash)


def langgraph_router() -> APIRouter:
    router = APIRouter(prefix="/langgraph", tags=["langgraph"])

    def caller(request: Request, state: ServiceState = Depends(get_state)) -> Principal:
        token = request.headers.get("x-api-key", "").strip()
        if not token:
            scheme, _, value = request.headers.get("authorization", "").partition(" ")
            token = value.strip() if scheme.lower() == "bearer" else ""
        if not token:
            raise Unauthenticated()
        who = principal_from_token(state.runtime.store, token)
        who.require("read")
        return who

    def threads(who: Principal = Depends(caller),
                state: ServiceState = Depends(get_state)) -> _Threads:
        return _Threads(state.runtime, who)

    @router.post("/assistants/search", summary="The one assistant: the decision graph")
    def search_assistants(body: _AssistantSearchIn, _who: Principal = Depends(caller)
                          ) -> list[dict[str, Any]]:
        found = [_assistant()] if body.graph_id in (None, ASSISTANT) else []
        return found[body.offset:body.offset + body.limit]

    @router.get("/assistants/{assistant_id}", summary="The decision assistant")
    def get_assistant(assistant_id: str, _who: Principal = Depends(caller)) -> dict[str, Any]:
        if assistant_id != ASSISTANT:
            raise NotFoundError(f"no assistant {assistant_id!r} (there is {ASSISTANT!r})",
                                field="assistant_id")
        return _assistant()

    @router.post("/threads/search", summary="Decisions as threads (status interrupted: "
                                            "waiting on the caller)")
    def search_threads(body: _SearchIn, t: _Threads = Depends(threads)) -> list[dict[str, Any]]:
        return t.search(body)

    @router.get("/threads/{thread_id}", summary="One decision as a thread")
    def get_thread(thread_id: str, t: _Threads = Depends(threads)) -> dict[str, Any]:
        return t.thread(t.get(thread_id))

    @router.get("/threads/{thread_id}/state", summary="A decision's state and interrupts")
    def get_thread_state(thread_id: str, t: _Threads = Depends(threads)) -> dict[str, Any]:
        return t.state(t.get(thread_id))

    def _run(thread_id: str, body: _RunIn, t: _Threads) -> tuple[DecisionRow, list[str]]:
        if body.assistant_id != ASSISTANT:
            raise NotFoundError(f"no assistant {body.assistant_id!r} (there is {ASSISTANT!r})",
                                field="assistant_id")
        decision = t.get(thread_id)
        every = t.rt.store.approvals.list(decision_id=decision.id,
                                          status=ApprovalStatus.PENDING.value,
                                          plan_version=decision.plan_version)
        rows = {r.id: r for r in every}
        resume = body.command.resume if body.command else None
        if isinstance(resume, dict) and resume and "type" not in resume:
            _answered_before(t, decision, resume, rows)
        resumes = _resumes(resume, every, t.pending(decision))
        keyed = isinstance(resume, dict) and "type" not in resume
        answers = {}
        for approval_id, value in resumes.items():
            try:
                answers[approval_id] = answer_from_human(rows[approval_id].request, value)
            except InvalidInputError as exc:
                where = str(exc.field or "resume").removeprefix("resume")
                field = f"command.resume.{approval_id}{where}" if keyed else f"command.resume{where}"
                raise InvalidInputError(str(exc).partition(": ")[2] or str(exc),
                                        field=field) from None
        by = approver(t.who, "langgraph")
        # The ones the caller may not answer first: the service refuses (and records) the
        # first of them before any answer is recorded, so a refused resume changes nothing.
        for approval_id in sorted(answers, key=lambda a: t.rt.approvals.can_answer(
                by, rows[a].function)):
            try:
                t.rt.approvals.answer(approval_id, answers[approval_id], by=by,
                                      plan_hash=rows[approval_id].plan_hash)
            except InvalidInputError as exc:
                if exc.field != "feedback":
                    raise
                # a response's feedback is its args here (trial 21: named "feedback")
                where = f"command.resume.{approval_id}" if keyed else "command.resume"
                raise InvalidInputError(exc.message.removeprefix("feedback: "),
                                        field=f"{where}.args") from None
            except ConflictError as exc:
                if exc.details.get("field") != "proposal_hash":
                    raise
                # an accept here cannot name the proposal it approves (trial 23: told to)
                raise ConflictError(exc.message + "; a LangGraph resume cannot name an edit "
                                    "proposal: approve it in the inbox, over the API "
                                    "(proposal_hash) or with the CLI (--proposal-hash)",
                                    **exc.details) from None
        return decision, list(answers)

    @router.post("/threads/{thread_id}/runs", summary="Answer pending requests (command.resume)")
    def create_run(thread_id: str, body: _RunIn, t: _Threads = Depends(threads)
                   ) -> dict[str, Any]:
        decision, answered = _run(thread_id, body, t)
        now = _iso(t.rt.store.decisions.get(decision.id).updated_at)
        return {"run_id": f"run-{answered[0]}", "thread_id": decision.id,
                "assistant_id": ASSISTANT, "created_at": now, "updated_at": now,
                "status": "pending", "metadata": {"answered": answered},
                "multitask_strategy": "enqueue", "kwargs": {}}

    @router.post("/threads/{thread_id}/runs/wait",
                 summary="Answer pending requests, wait for the worker to apply them")
    def wait_run(thread_id: str, body: _RunIn, t: _Threads = Depends(threads)
                 ) -> dict[str, Any]:
        decision, answered = _run(thread_id, body, t)
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            decision = t.rt.store.decisions.get(decision.id)
            rows = t.rt.store.approvals.list(decision_id=decision.id)
            # applied by the worker, or still pending (an edit proposed under four-eyes);
            # or not ready to apply: other functions have still to answer
            applied = all(r.applied_at is not None or r.status is ApprovalStatus.PENDING
                          for r in rows if r.id in answered)
            if applied or decision.status.terminal or time.monotonic() > deadline \
                    or not t.rt.store.approvals.ready(decision.id):
                break
            time.sleep(0.1)
        return t.values(decision, t.pending(decision))

    return router
