"""``ApprovalService``: every rule of the approval protocol, in one place.

Channels (HTTP API, web inbox, human-in-the-loop endpoint, CLI) translate their input
into an ``Answer`` and an ``Approver`` and call ``answer``; they re-check nothing.
An answer is recorded only when every check passes, in this order; each refusal is
recorded in the ledger (``approval.refused`` with a reason code) and changes nothing
else:

* ``cli_refused`` 403: the answer came from the CLI and the deployment refuses that
  (setting ``cli_answers``).
* ``not_an_approver`` 403: the user's role does not answer approvals.
* ``wrong_function`` 403: the request is another function's part of the plan.
* ``not_in_policy`` 403: the function's policy does not list the user as an approver.
* ``replay`` 409: the request was already answered (a captured answer sent again, or
  another approver's answer that won a race: the same refusal either way).
* ``withdrawn`` 409: another function's answer ended the request's plan version (a
  revise; a reject of an all-or-nothing plan) and withdrew the request
  (``agent.approvals.end_version``): nothing of it can run whatever this answer says.
* ``stale_plan`` 409: the request's plan version is not the decision's current one, or
  the caller answered another version than the request's (``plan_hash``).
* ``expired`` 409: the request's deadline passed (no hold stopping its clock): it
  expires then, as its policy's ``on_timeout`` says (``_deadlines.expire_if_due``),
  whenever the loop last swept.
* ``four_eyes`` 403: the function has ``four_eyes: true`` and the user asked for this
  plan or a change it carries (submitted the prediction, wrote it by hand, or asked for
  a revision of any earlier version) or proposed an edit to it. Under four-eyes an
  edit is recorded as a proposal that a second approver approves: their approve names
  it (``proposal_hash``, ``proposal``).
* ``proposal_pending`` 409: under four-eyes, an approve named no proposal while one
  stands (it would approve an edit its approver may never have seen).
* ``stale_proposal`` 409: the approve named another proposal than the one standing (a
  third approver's edit replaced it since), or one no longer standing.
* ``stale_preview`` 409: the caller answered other previews than the request's
  (``preview_hash``: what each step would change, read at routing; ``agent.preview``).
* ``conflict`` 409: the request changed meanwhile other than by an answer (a new plan
  version superseded it; compare-and-set on the request).

Bulk approve (``approve_many``, ``_bulk``) answers each request here in turn and adds one
refusal, ``not_for_bulk`` 403: a step above its function's bulk risk ceiling.

Bad input is not a refusal: an edit naming an unknown step, changing a locked target
(``LockedArgumentError``), or breaking the tool schema, the function's limits or its
totals is refused with the field named (HTTP 422, CLI exit 2) and nothing is recorded.

Recording an answer never touches the decision's lease: it is a compare-and-set on the
request, in the decision's unit of work without a fencing token. Workers apply answers
(``graphs.DecisionEngine``); ``on_answer`` tells an in-process worker at once.

Also here: routing a plan (which functions policy approves, which need people and by
when), operator holds, and the SLA sweep (``_deadlines``).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, NoReturn

from pydantic import TypeAdapter, ValidationError

from decisionops.agent.approvals._autonomy import EarnedAutonomy, step_statuses
from decisionops.agent.approvals._bulk import BulkItem, BulkOutcome, approve_many, not_for_bulk
from decisionops.agent.approvals._deadlines import SLA_ACTOR, expire_if_due, sweep
from decisionops.agent.approvals._edits import check_edit, locked_arguments
from decisionops.agent.approvals._identity import Approver, policy_identity
from decisionops.agent.approvals._previews import changed_since_routed
from decisionops.agent.approvals._resolution import (
    Resolution,
    before_answer,
    end_version,
    grant_hashes,
    resolution,
)
from decisionops.agent.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDenied,
    ToolArgumentsError,
    pydantic_message,
)
from decisionops.agent.hashing import digest, short_id
from decisionops.agent.models import (
    Answer,
    ApprovalRequest,
    ApprovalStatus,
    Approve,
    Edit,
    Plan,
    RelatedDecision,
    Revise,
    Risk,
    Step,
    utcnow,
)
from decisionops.agent.planner import Revisions
from decisionops.agent.policy import Policies, Total, UsedAmount, total_problems
from decisionops.agent.ports import ToolPort
from decisionops.agent.preview import preview_steps
from decisionops.agent.store import ApprovalRow, DecisionRow, Event, HoldRow, Store
from decisionops.agent.targets import Subject, acts_elsewhere
from decisionops.agent.telemetry import Metrics

__all__ = ["AnswerResult", "ApprovalService", "EditPreview", "Routing", "WorldCheck",
           "approval_request", "change_text", "parse_answer", "shown_value"]

_ANSWER: TypeAdapter[Any] = TypeAdapter(Answer)
_HASH = re.compile(r"[0-9a-f]{64}")
_STORE_ID = re.compile(r"(?:dec|apr)_\w+")
"""The shape of a decision's or an approval request's id (``dec_…``, ``apr_…``)."""
_STATUS = {"approve": ApprovalStatus.APPROVED, "edit": ApprovalStatus.EDITED,
           "reject": ApprovalStatus.REJECTED, "revise": ApprovalStatus.REVISE}
_ANSWERED = {ApprovalStatus.APPROVED, ApprovalStatus.EDITED, ApprovalStatus.REJECTED,
             ApprovalStatus.REVISE, ApprovalStatus.AUTO_APPROVED, ApprovalStatus.EXPIRED}


def parse_answer(data: Any) -> Answer:
    try:
        return _ANSWER.validate_python(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise InvalidInputError(pydantic_message(err), field=field or "answer") from exc


def approval_request(plan: Plan, function: str, reason: str, approvers: Sequence[str],
                     related: Sequence[RelatedDecision] = (),
                     previews: Mapping[str, dict[str, Any]] | None = None) -> ApprovalRequest:
    """One function's part of a plan version, as its approvers see it, beside the other
    open decisions on the same entity, with what each step would change."""
    return ApprovalRequest(
        approval_id=short_id("apr", plan.decision_id, plan.version, function),
        decision_id=plan.decision_id, function=function, plan_version=plan.version,
        plan_hash=plan.hash, steps=tuple(plan.steps_of(function)),
        other_steps=tuple(f"{s.function}:{s.id}" for s in plan.steps if s.function != function),
        approvers=tuple(approvers), reason=reason, related=tuple(related),
        previews=dict(previews or {}))


@dataclass(frozen=True)
class AnswerResult:
    approval_id: str
    status: str
    """What was recorded: approved, edited, rejected, revise, or proposed (four-eyes)."""
    decision_id: str
    decision_status: str
    pending_approvals: list[str] = field(default_factory=list)
    """The decision's requests still waiting for an answer."""
    held: str | None = None
    """Why the answer waits before a worker applies it (an operator hold), or None."""


@dataclass(frozen=True)
class EditPreview:
    arguments: dict[str, dict[str, Any]]
    """Step id → the complete argument set the edit would approve."""
    changes: list[dict[str, Any]]
    """``step_id``, ``argument``, ``before``, ``after`` for each changed argument."""
    locked: dict[str, list[str]]


@dataclass(frozen=True)
class Routing:
    """How a plan version is routed: what policy approves, what people must answer."""

    auto: list[Resolution]
    auto_requests: list[ApprovalRequest]
    ask: list[tuple[ApprovalRequest, datetime]]
    """Requests with their deadlines (the function's SLA)."""
    earned: dict[str, str] = field(default_factory=dict)
    """approval id → the comment of an approval by earned autonomy (its classes and why)."""
    class_rows: list[dict[str, Any]] = field(default_factory=list)
    """The earned-autonomy record of those approvals (``store.autonomy.record_answers``)."""

    @property
    def waiting_on(self) -> list[str]:
        return sorted(r.function for r, _ in self.ask)


@dataclass(frozen=True)
class WorldCheck:
    """The world changed for approved parts of a plan version since they were routed."""

    changed: dict[str, str]
    """function → how (the watched preview fields that moved beyond their tolerance)."""
    again: bool
    """The plan goes back to be drafted and routed again; False: past ``max_replans``,
    the changed parts are skipped and the rest runs."""


class _Refusal(Exception):
    """A refusal found inside the answer's transaction (recorded once it rolled back)."""

    def __init__(self, code: str, message: str, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.code, self.message, self.conflict = code, message, conflict


_EXPIRED = {"approve": "approved", "reject": "rejected"}
"""What an expiry did, by its answer's type."""
_FIELDS = {"stale_plan": "plan_hash", "stale_preview": "preview_hash",
           "proposal_pending": "proposal_hash", "stale_proposal": "proposal_hash",
           "replan_limit": "answer"}
"""The field a refusal names (the value at fault); any other: the request answered."""


def _nobody(name: str) -> bool:
    return False


def _withdrawn(row: ApprovalRow, why: str) -> str:
    return (f"approval {row.id} was withdrawn: {why}; there is nothing to answer "
            "on this request")


def _answered(row: ApprovalRow) -> str:
    """One wording whoever sends the answer again (trial 27: two said the same)."""
    by_whom = f" by {row.approver}" if row.approver else ""
    return (f"approval {row.id} was already answered{by_whom} ({row.status.value}); an "
            "answer is used once, the first one stands")


def changes_of(request: ApprovalRequest, arguments: Mapping[str, Mapping[str, Any]]
               ) -> list[dict[str, Any]]:
    """What argument sets ``arguments`` (step id → arguments) change in what ``request``
    proposed: ``{"step_id", "argument", "before", "after"}`` each, in step order."""
    out = []
    for step in request.steps:
        if step.id not in arguments:
            continue
        after = arguments[step.id]
        for name in sorted(set(step.arguments) | set(after)):
            if step.arguments.get(name) != after.get(name):
                out.append({"step_id": step.id, "argument": name,
                            "before": step.arguments.get(name), "after": after.get(name)})
    return out


def change_text(change: Mapping[str, Any]) -> str:
    """One change of ``changes_of`` as a person reads it: ``step.argument before → after``
    (values as JSON; a whole number as one, however the tool's schema stored it)."""
    return (f"{change['step_id']}.{change['argument']} {shown_value(change['before'])} → "
            f"{shown_value(change['after'])}")


def shown_value(value: Any) -> str:
    """An argument's value as a person reads it: JSON, a whole number as one (``120``,
    not the ``120.0`` a tool's float field stores)."""
    whole = isinstance(value, float) and value.is_integer()
    return json.dumps(int(value) if whole else value, ensure_ascii=False)


def hash_of_proposal(proposal: Mapping[str, Any]) -> str:
    """What identifies a four-eyes edit proposal to the approver who approves it: its
    plan version, its proposer and the arguments it would approve."""
    return digest({"plan_hash": proposal["plan_hash"], "proposer": proposal["proposer"],
                   "arguments": proposal["arguments"]})


class ApprovalService:
    def __init__(self, store: Store, tools: ToolPort, policies: Policies, *,
                 playbooks: Sequence[str] = (), cli_answers: bool = True,
                 on_answer: Callable[[str], None] | None = None,
                 metrics: Metrics | None = None,
                 playbook_steps: Mapping[str, Mapping[str, tuple[str, str]]] | None = None,
                 playbook_kinds: Mapping[str, str] | None = None,
                 max_replans: int = 2,
                 revisions: Revisions | None = None,
                 refresh: Callable[[], object] | None = None) -> None:
        self._store = store
        self._refresh = refresh
        """Takes up an edited functions file, asked before each answer is checked (the
        runtime's ``refresh_policies``): who may answer is the file as it is now."""
        self._revisions = revisions
        """What the planner can apply of revise feedback (None: any text is read): a
        revise it would re-draft unchanged is refused (``PlaybookPlanner``)."""
        self._max_replans = max_replans
        """Plan versions past this one are not re-drafted: a revise of one is refused."""
        self._tools = tools
        self._policies = policies
        self._playbooks = frozenset(playbooks)
        self.autonomy = EarnedAutonomy(store, tools, policies,
                                       playbook_steps=playbook_steps or {},
                                       playbook_kinds=playbook_kinds or {})
        """Earned autonomy: its record, promotions and demotions (``_autonomy``)."""
        self._cli_answers = cli_answers
        self.on_answer = on_answer
        """Called with the decision id after an answer is recorded (wakes a worker)."""
        self._metrics = metrics

    # ------------------------------------------------------------------ who may answer

    def identity(self, by: Approver, function: str) -> str | None:
        """The policy's approver name for ``by`` in ``function``, or None."""
        if by.role != "approver" or function not in by.functions:
            return None
        try:
            return policy_identity(self._policies.get(function).approvers, by.name,
                                   registered=self._store.users.registered)
        except NotFoundError:
            return None

    def _answers_as(self, entry: str, function: str) -> bool:
        """Whether an enabled approver of ``function`` is registered as the policy's
        ``entry`` (under its name, or its short name while the name is free)."""
        for name in dict.fromkeys((entry, entry.partition("@")[0])):
            user = self._store.users.get(name)
            if user is not None:
                return (user["disabled_at"] is None and user["role"] == "approver"
                        and function in user["functions"]
                        and policy_identity(self._policies.get(function).approvers, name,
                                            registered=self._store.users.registered) == entry)
        return False

    def _own_user(self, name: str, function: str) -> str:
        """Why a short name listed in the policy stands for nobody, or ""."""
        entry = next((e for e in self._policies.get(function).approvers
                      if e != name and e.partition("@")[0] == name), None)
        return ("" if entry is None else
                f" ({entry}, whom {name} would stand for, is a registered user of their own: "
                f"only {entry} answers as {entry})")

    def may_revise(self, plan_version: int) -> bool:
        """Whether an approver may still ask for a revision of this plan version: the loop
        drafts at most ``max_replans`` versions after the first. Every channel offers
        the revise answer by this (the inbox's form, a LangGraph client's
        ``allow_respond``), and ``answer`` refuses one past it (``replan_limit``)."""
        return plan_version <= self._max_replans

    def revise_offer(self, plan: Plan) -> str | None:
        """What a revise of ``plan`` can change, in words (every channel says it beside
        the revise answer); "" when nothing, and no revise is offered (``revisable``);
        None when the planner reads any feedback."""
        return None if self._revisions is None else self._revisions.can(plan)

    def revise_can(self, row: ApprovalRow) -> str | None:
        """``revise_offer`` for ``row``'s plan version."""
        if self._revisions is None:
            return None
        plan = self._store.plans.find(row.decision_id, row.plan_version)
        return None if plan is None else self.revise_offer(plan)

    def revise_offered(self, row: ApprovalRow) -> tuple[bool, str | None]:
        """Whether a revise of ``row`` is offered (a pending request of a version the
        planner can still change: ``revisable``), and what it can change
        (``revise_offer``; None for a request no longer pending). Every channel that
        shows a request says both by this."""
        if row.status is not ApprovalStatus.PENDING:
            return False, None
        offer = self.revise_can(row)
        return self.revisable(row.plan_version, offer), offer

    def revisable(self, plan_version: int, offer: str | None) -> bool:
        """Whether a revise is offered: a version the loop may still re-draft
        (``may_revise``) whose planner can change something in it (``revise_offer``)."""
        return self.may_revise(plan_version) and offer != ""

    def can_answer(self, by: Approver, function: str) -> bool:
        return self.identity(by, function) is not None and (
            by.channel != "cli" or self._cli_answers)

    def may_approve(self, row: ApprovalRow, by: Approver) -> str | None:
        """Why ``by``, who may answer ``row``, may not approve or edit it (four eyes: they
        asked for the plan or a change it carries, or proposed the standing edit); None:
        they may. What every channel offers follows this; ``answer`` refuses by it."""
        identity = self.identity(by, row.function)
        if identity is None or not self._policies.get(row.function).four_eyes:
            return None
        return self._four_eyes_bar(row, {identity, by.name})

    def _four_eyes_bar(self, row: ApprovalRow, same: set[str]) -> str | None:
        approvers = self._policies.get(row.function).approvers
        function = row.function
        requesters = self._as_policy(approvers, self._store.approvals.requesters(
            row.decision_id, row.plan_version))
        proposers = self._as_policy(approvers, self._store.approvals.proposers(
            row.decision_id, row.id))
        if same & requesters:
            why = ("you asked for this plan or a change it carries (a revise of an earlier "
                   "version), so another approver must decide it")
        elif same & proposers:
            why = "you proposed an edit to this request, so another approver must approve it"
        else:
            return None
        # Who is left: with every approver barred the request cannot be approved at all
        # (trial 18: two approvers who each proposed an edit), which is worth saying.
        left = [a for a in approvers
                if a not in requesters | proposers and self._answers_as(a, function)]
        said = (f"; {', '.join(left)} may" if left else
                f"; no approver of {function} is left who may (each asked for the plan, "
                "proposed an edit, or is not an enabled user): reject or revise it, or add "
                f"an approver to {function}")
        return f"{function} requires four eyes: {why}{said}"

    # ------------------------------------------------------------------ answering

    def proposal(self, approval_id: str) -> dict[str, Any] | None:
        """The four-eyes edit proposal standing on a request, with its ``hash`` (what an
        approve of it names) and its ``changes`` (``changes_of``), or None."""
        row = self._store.approvals.get(approval_id)
        found = self._store.approvals.proposal(approval_id)
        if found is None or found["plan_hash"] != row.plan_hash or \
                row.status is not ApprovalStatus.PENDING:
            return None
        return {**found, "hash": hash_of_proposal(found),
                "changes": changes_of(row.request, found["arguments"])}

    def answer(self, approval_id: str, answer: Answer, *, by: Approver,
               plan_hash: str | None = None, preview_hash: str | None = None,
               proposal_hash: str | None = None) -> AnswerResult:
        """Check and record an answer (see the module docstring for the checks).
        ``preview_hash``: the previews the approver saw (``ApprovalRequest.preview_hash``);
        without it the answer binds to the stored ones. ``proposal_hash``: under
        four-eyes, the edit proposal an approve approves (``proposal``); an approve of a
        request with a proposal standing must name it."""
        for name, value in (("plan_hash", plan_hash), ("preview_hash", preview_hash),
                            ("proposal_hash", proposal_hash)):
            if value is not None and not _HASH.fullmatch(value.lower()):
                raise InvalidInputError(f"must be the 64 hex characters of the request's "
                                        f"{name}", field=name)  # not recorded
        # Hex in either case is the same hash (trial 30: upper case was refused).
        plan_hash, preview_hash, proposal_hash = (
            None if v is None else v.lower() for v in (plan_hash, preview_hash, proposal_hash))
        if self._refresh is not None:
            self._refresh()
        row = self._store.approvals.get(approval_id)
        function = row.function

        def refuse(code: str, message: str, *, conflict: bool = False) -> NoReturn:
            self._refuse(by, row, code, message, conflict=conflict)

        if by.channel == "cli" and not self._cli_answers:
            refuse("cli_refused", "this deployment refuses answers from the CLI (setting "
                   "cli_answers); answer in the inbox or through the API")
        if by.role != "approver":
            refuse("not_an_approver", f"{by.name} ({by.role}) does not answer approvals; only "
                   "approvers do")
        if function not in by.functions:
            listed = self.identity(replace(by, functions=(function,)), function) is not None
            refuse("wrong_function", f"{by.name} approves {', '.join(by.functions) or 'no function'}"
                   f", not {function}" + (
                       f" (the policy lists them for {function}, but their user is registered "
                       f"for {', '.join(by.functions) or 'none'}: both must name it)"
                       if listed else ""))
        identity = self.identity(by, function)
        if identity is None:
            refuse("not_in_policy", f"{by.name} is not among the approvers of {function} in the "
                   "function policies" + self._own_user(by.name, function))
        if row.status in _ANSWERED:
            refuse("replay", _answered(row), conflict=True)
        if (why := row.withdrawn) is not None:
            refuse("withdrawn", _withdrawn(row, why), conflict=True)
        decision = self._store.decisions.get(row.decision_id)
        if row.status is not ApprovalStatus.PENDING or decision.plan_hash != row.plan_hash:
            refuse("stale_plan", f"approval {approval_id} is for plan version {row.plan_version} "
                   f"({row.plan_hash[:12]}), which is not current (the decision is on version "
                   f"{decision.plan_version})", conflict=True)
        if expire_if_due(self._store, self._policies, row, now=utcnow(),
                         autonomy=self.autonomy, only_a_person=self._only_a_person):
            if self.on_answer is not None:
                self.on_answer(row.decision_id)  # a worker applies the expiry
            ended = self._store.approvals.get(approval_id)
            assert row.deadline is not None
            how = _EXPIRED.get((ended.answer or {}).get("type"), "resolved")
            refuse("expired", f"approval {approval_id} was due {row.deadline:%Y-%m-%d %H:%M}Z: "
                   "an answer after the deadline is not taken; it " + (
                       f"expired, {how} as the {function} policy's on_timeout says"
                       if ended.approver == SLA_ACTOR else
                       f"was answered meanwhile by {ended.approver} ({ended.status.value})"),
                   conflict=True)
        if plan_hash is not None and plan_hash != row.plan_hash:
            refuse("stale_plan", f"plan_hash: you answered plan {plan_hash[:12]}, but approval "
                   f"{approval_id} is for plan version {row.plan_version} ({row.plan_hash[:12]}"
                   "), the current one: reload the request", conflict=True)
        if isinstance(answer, Revise) and not self.may_revise(row.plan_version):
            refuse("replan_limit", f"approval {approval_id} is for the last plan version the "
                   f"loop drafts ({row.plan_version}; max_replans {self._max_replans}): "
                   "approve, edit or reject it", conflict=True)
        if preview_hash is not None and preview_hash != row.request.preview_hash:
            refuse("stale_preview", f"preview_hash: approval {approval_id} was previewed as "
                   f"{row.request.preview_hash[:12] or 'nothing'}, not {preview_hash[:12]}: "
                   "what you saw is not what was stored; reload the request", conflict=True)
        approved = None
        if isinstance(answer, Revise) and self._revisions is not None:
            plan = self._store.plans.find(row.decision_id, row.plan_version)
            if plan is not None and (why := self._revisions.cannot_apply(plan, answer.feedback)):
                raise InvalidInputError(why, field="feedback")  # bad input: not recorded
        if isinstance(answer, Edit):
            approved = self.check_edit(row, dict(answer.arguments))  # bad input: not recorded
            if not changes_of(row.request, approved):
                raise InvalidInputError("the edit changes no argument of what was proposed: "
                                        "approve it as proposed instead", field="arguments")
        policy = self._policies.get(function)
        same = {identity, by.name}  # compared as the policy knows people: "dana" = "dana@finance"
        if policy.four_eyes and isinstance(answer, Approve | Edit):
            barred = self._four_eyes_bar(row, same)
            if barred is not None:
                refuse("four_eyes", barred)
            if isinstance(answer, Edit):
                assert approved is not None
                with self._store.decision_tx(row.decision_id, fence=None, actor=identity,
                                             durable=True) as tx:
                    self._store.approvals.propose_edit(tx, approval_id, plan_hash=row.plan_hash,
                                                       proposer=identity, arguments=approved,
                                                       comment=answer.comment)
                return self._result(row, "proposed", decision)
        try:
            with self._store.decision_tx(row.decision_id, fence=None, actor=identity,
                                         durable=True) as tx:
                if policy.four_eyes and isinstance(answer, Approve):
                    # Under four-eyes an approve approves the standing proposal, read with
                    # the request locked (a proposal cannot land or change until this
                    # commits), and judged here: its proposer may not approve it.
                    proposal = self._store.approvals.locked_proposal(tx, approval_id)
                    if proposal is not None and proposal["plan_hash"] != row.plan_hash:
                        proposal = None
                    if proposal is not None and \
                            same & self._as_policy(policy.approvers, {proposal["proposer"]}):
                        raise _Refusal("four_eyes", f"{function} requires four eyes: you "
                                       "proposed an edit to this request, so another "
                                       "approver must approve it")
                    self._check_proposal(row, proposal, proposal_hash)
                    if proposal is not None:
                        approved = self.check_edit(row, proposal["arguments"])
                        answer = Edit(arguments=proposal["arguments"], comment=(
                            answer.comment
                            or f"approved the edit proposed by {proposal['proposer']}"))
                status = _STATUS[answer.type]
                resolved = resolution(row.request, status, approver=identity,
                                      answer=answer.model_dump(mode="json"), edited=approved)
                if resolved.grants:
                    self._check_totals(row, resolved)
                before_answer(self._store, tx, row, resolved)
                self._store.approvals.answer(
                    tx, approval_id, plan_hash=row.plan_hash, status=status, approver=identity,
                    answer=answer.model_dump(mode="json"), approved_arguments=approved,
                    approved_hashes=grant_hashes(resolved),
                    body={"channel": by.channel, "user": by.name})
                self.autonomy.after_answer(tx, row.request, decision.playbook,
                                           step_statuses(row.request, status.value, approved),
                                           identity)
                end_version(self._store, tx, row, resolved)
        except _Refusal as refusal:
            refuse(refusal.code, refusal.message, conflict=refusal.conflict)
        except ConflictError as exc:
            now = self._store.approvals.get(approval_id)
            if now.status in _ANSWERED:  # another answer won the race: as if read before
                refuse("replay", _answered(now), conflict=True)
            if (why := now.withdrawn) is not None:  # another function's answer ended it
                refuse("withdrawn", _withdrawn(now, why), conflict=True)
            refuse("conflict", exc.message, conflict=True)
        if self._metrics is not None:
            waited = (utcnow() - row.requested_at).total_seconds()
            self._metrics.approval_latency.labels(function).observe(waited)
        result = self._result(row, status.value, decision)
        if self.on_answer is not None:
            # After the reply is ready: a worker woken in this process competes for the GIL.
            self.on_answer(row.decision_id)
        return result

    @staticmethod
    def _check_proposal(row: ApprovalRow, proposal: Mapping[str, Any] | None,
                        seen: str | None) -> None:
        """An approve under four-eyes approves the proposal its approver saw, or none."""
        if proposal is None:
            if seen is not None:
                raise _Refusal("stale_proposal", "proposal_hash: no edit proposal stands on "
                               "this request now (it was replaced by an answer or a new plan "
                               "version): reload the request", conflict=True)
            return
        current = hash_of_proposal(proposal)
        if seen == current:
            return
        changes = "; ".join(map(change_text, changes_of(row.request, proposal["arguments"]))
                            ) or "no argument changed"
        if seen is None:
            raise _Refusal("proposal_pending", f"proposal_hash: {proposal['proposer']} "
                           "proposed an edit to "
                           f"this request ({changes}); an approve approves that edit: name "
                           f"it with proposal_hash {current}, or reject it", conflict=True)
        raise _Refusal("stale_proposal", f"proposal_hash: the proposal you saw was replaced "
                       f"by {proposal['proposer']}'s ({changes}, proposal_hash {current}): "
                       "reload the request", conflict=True)

    def approve_many(self, items: Sequence[BulkItem], *, by: Approver, comment: str = ""
                     ) -> list[BulkOutcome]:
        """Bulk approve: each request through ``answer``, under its function's risk
        ceiling (``_bulk``)."""
        return approve_many(self, items, by=by, comment=comment)

    def check_bulk(self, approval_id: str, *, by: Approver) -> None:
        """Refuse (``not_for_bulk``, recorded) a request bulk approve may not take.
        Only for a pending request ``by`` may answer: any other is refused by ``answer``
        with its own reason, and its steps are not described to someone who may not
        answer it."""
        row = self._store.approvals.get(approval_id)
        if row.status is not ApprovalStatus.PENDING or not self.can_answer(by, row.function):
            return
        problem = not_for_bulk(row.request.steps, self.bulk_max_risk(row.function))
        if problem is not None:
            self._refuse(by, row, "not_for_bulk", problem, conflict=False)

    def decision_of(self, approval_id: str, by: Approver) -> str | None:
        """The decision of a request ``by`` may answer; None for one they may not (or
        none by that id): a refusal names no decision its caller may not see."""
        try:
            row = self._store.approvals.get(approval_id)
        except NotFoundError:
            return None
        return row.decision_id if self.can_answer(by, row.function) else None

    def bulk_max_risk(self, function: str) -> Risk | None:
        """The highest step risk ``function`` takes in bulk (its policy's ceiling)."""
        return self._policies.get(function).bulk_max_risk

    @staticmethod
    def _as_policy(approvers: Sequence[str], names: set[str]) -> set[str]:
        """``names`` with each one's policy identity added (who they are as an approver)."""
        # Every name a person could answer as counts as them: four-eyes errs towards
        # "the same person", so no registered user keeps a short name from counting.
        return names | {identity for name in names
                        if (identity := policy_identity(approvers, name,
                                                        registered=_nobody)) is not None}

    def check_edit(self, row: ApprovalRow, changes: Mapping[str, Mapping[str, Any]]
                   ) -> dict[str, dict[str, Any]]:
        """The argument sets an edit of ``row`` would approve, checked against the edit
        rules, the tool schemas, the function's limits and its totals."""
        approved = check_edit(row.request, changes, self._tools, self._policies)
        edited = [s.model_copy(update={"arguments": approved[s.id]}) for s in row.request.steps]
        problems = self.total_problems(row.function, edited, row.decision_id)
        if problems:
            where, _, message = problems[0].partition(": ")
            raise ToolArgumentsError(message, field=where.replace("steps.", "arguments.", 1)
                                     .replace(".arguments.", ".", 1))
        return approved

    def preview_edit(self, approval_id: str, changes: Mapping[str, Mapping[str, Any]], *,
                     by: Approver) -> EditPreview:
        """What an edit would approve, without recording anything."""
        row = self._store.approvals.get(approval_id)
        if not self.can_answer(by, row.function):
            raise PermissionDenied(f"{by.name} does not approve {row.function}",
                                   reason="wrong_function")
        approved = self.check_edit(row, changes)
        return EditPreview(approved, changes_of(row.request, approved),
                           locked_arguments(row.request, self._tools))

    def locked(self, request: ApprovalRequest) -> dict[str, list[str]]:
        """Step id → arguments an edit may not change (the steps' targets)."""
        return locked_arguments(request, self._tools)

    def _check_totals(self, row: ApprovalRow, resolved: Resolution) -> None:
        steps = [s.model_copy(update={"arguments": resolved.approved[s.id]})
                 for s in row.request.steps if resolved.approved and s.id in resolved.approved]
        problems = self.total_problems(row.function, steps, row.decision_id)
        if problems:
            where, _, message = problems[0].partition(": ")
            raise ToolArgumentsError(f"cannot approve: {message}; edit the amounts down or "
                                     "reject", field=where.replace("steps.", "arguments.", 1)
                                     .replace(".arguments.", ".", 1))

    def _refuse(self, by: Approver, row: ApprovalRow, code: str, message: str, *,
                conflict: bool) -> NoReturn:
        self._store.ledger.append([Event(
            actor=by.name, event="approval.refused", decision_id=row.decision_id,
            plan_hash=row.plan_hash,
            body={"approval_id": row.id, "function": row.function, "reason": code,
                  "message": message, "role": by.role, "channel": by.channel})])
        field = _FIELDS.get(code, "approval_id")
        if conflict:
            raise ConflictError(message, reason=code, field=field)
        raise PermissionDenied(message, reason=code, field=field)

    def _result(self, row: ApprovalRow, status: str, before: DecisionRow) -> AnswerResult:
        pending = self._store.approvals.pending_ids(row.decision_id)
        held = self.held(before, [row.function])
        return AnswerResult(row.id, status, row.decision_id, before.status.value, pending, held)

    # ------------------------------------------------------------------ routing

    def route(self, plan: Plan, *, stored: bool = True,
              related: Sequence[RelatedDecision] = (), dry: bool = False,
              entity: Subject | None = None) -> Routing:
        """Per function of the plan, whether policy approves its part (within its
        auto-approve risk, limits and totals, counting what other work used already) or
        its approvers must answer, by the deadline of its SLA. A plan version routed
        before (``stored``: look; a replay after a crash) keeps the routing it stored,
        whatever policy or usage say now. Each request lists ``related``: the other
        open decisions on the plan's entity, and what each step would change (its
        preview, read now; ``agent.preview``). A part policy would send to people goes
        ahead when earned autonomy covers it (``_autonomy``). ``dry``: a what-if
        (``agent.scenario``): nothing is written, not even a demotion. ``entity``: what the
        prediction is about; a part with a step acting on anything else goes to its
        approvers whatever policy or earned autonomy say (``elsewhere``)."""
        auto, auto_requests, ask = [], [], []
        earned: dict[str, str] = {}
        now = utcnow()
        used = self.used(plan.decision_id)
        before = {r.function: r for r in self._store.approvals.list(
            decision_id=plan.decision_id, plan_version=plan.version)} if stored else {}
        for function in plan.functions():
            policy = self._policies.get(function)
            steps = plan.steps_of(function)
            row = before.get(function)
            away = self.elsewhere(steps, entity) if row is None else None
            reason = (away or policy.needs_human(steps, key_of=self.target_of, used=used)
                      if row is None
                      else None if row.status is ApprovalStatus.AUTO_APPROVED
                      else row.reason or "routed to its approvers")
            comment = "policy"
            if reason is not None and row is None and away is None:
                comment = self.autonomy.covers(policy, plan.playbook, steps,
                                               key_of=self.target_of, used=used,
                                               demote=not dry) or comment
                reason = None if comment != "policy" else reason
            elif row is not None and row.approver and row.approver.startswith("autonomy:"):
                comment = (row.answer or {}).get("comment", "earned autonomy")
            # What each step would change: read now, or as stored for a replay.
            previews = (preview_steps(self._tools, steps) if row is None
                        else row.request.previews)
            if reason is None:
                request = approval_request(
                    plan, function, "within auto-approve policy" if comment == "policy"
                    else comment, policy.approvers, related, previews)
                auto_requests.append(request)
                approver = f"policy:{function}"
                if comment != "policy":
                    approver = f"autonomy:{function}"
                    earned[request.approval_id] = comment
                auto.append(resolution(request, ApprovalStatus.AUTO_APPROVED, approver=approver,
                                       answer={"type": "approve", "comment": comment}))
            else:
                request = approval_request(plan, function, reason, policy.approvers, related,
                                           previews)
                ask.append((request, row.deadline if row is not None and row.deadline else
                            now + timedelta(hours=policy.sla_hours)))
        class_rows = [r for req in auto_requests if req.approval_id in earned
                      for r in self.autonomy.rows(req, plan.playbook,
                                                  {s.id: "autonomy" for s in req.steps},
                                                  f"autonomy:{req.function}", now)]
        return Routing(auto, auto_requests, ask, earned, class_rows)

    def elsewhere(self, steps: Sequence[Step], entity: Subject | None) -> str | None:
        """Why ``steps`` need their approvers whatever policy says: one acts on something
        other than the prediction's entity (``agent.targets.acts_elsewhere``: a credit to
        another account than the one at risk), which only a person may decide."""
        if entity is None:
            return None
        for step in steps:
            spec = self._tools.spec(step.tool)
            why = acts_elsewhere(step.id, step.arguments, spec.targets, entity,
                                 qualifiers=spec.qualifiers)
            if why is not None:
                return f"{why}: its approvers decide"
        return None

    def world_check(self, plan: Plan, functions: Sequence[str], *, fence: int | None,
                    actor: str, max_replans: int) -> WorldCheck | None:
        """Before the first step of ``plan`` runs: has the world changed for the approved
        parts of ``functions`` since they were routed (their steps' previews read again,
        ``_previews``)? None if not. Where it has, the plan goes back to be drafted and
        routed again (``again``), or past ``max_replans`` the changed parts are skipped;
        recorded once (``preview.changed``). Once recorded, that is the answer for this
        plan version, whatever the world does after: a leg cut off after recording it
        and run again does what the ledger says it did."""
        recorded = self._store.approvals.world_changed(plan.decision_id, plan.hash)
        if recorded is not None:
            return WorldCheck(recorded["changed"], again=recorded["then"] == "routed again")
        changed = changed_since_routed(self._store, self._tools, plan, functions)
        if not changed:
            return None
        check = WorldCheck(changed, again=plan.version <= max_replans)
        with self._store.decision_tx(plan.decision_id, fence=fence, actor=actor) as tx:
            self._store.approvals.record_world_changed(
                tx, plan_version=plan.version, plan_hash=plan.hash, changed=changed,
                then="routed again" if check.again else "skipped")
        return check

    # ------------------------------------------------------------------ totals

    def target_of(self, step: Step) -> str:
        return self._tools.spec(step.tool).target_of(step.arguments)

    def used(self, decision_id: str | None) -> UsedAmount:
        """What work other than ``decision_id`` used of a total, for a target."""
        now = utcnow()

        def used(total: Total, target: str) -> float:
            since = now - timedelta(days=total.within_days) if total.within_days else None
            return self._store.executions.used(
                tool=total.tool, measure=total.sum, target=None if total.per == "all" else target,
                since=since, exclude_decision=decision_id)
        return used

    def total_problems(self, function: str, steps: Sequence[Step], decision_id: str | None
                       ) -> list[str]:
        """The function's (hard) totals ``steps`` would exceed, with what other work used."""
        return total_problems(self._policies.get(function).totals, steps, key_of=self.target_of,
                              used=self.used(decision_id))

    # ------------------------------------------------------------------ holds

    def hold_target_type(self, target: str) -> str:
        if target in self._policies.functions:
            return "function"
        if target in self._playbooks:
            return "playbook"
        return "decision" if self._store.decisions.fence_of(target) is not None else "entity"

    def hold(self, target: str, *, until: datetime, reason: str, actor: str) -> HoldRow:
        """Pause acting on ``target`` until ``until`` or a release (recorded in the
        ledger). An entity or a playbook: triage drops its new predictions, workers apply
        no answer to its decisions and start none of their steps. A business function:
        none of its steps starts (the rest of a plan goes ahead; the decision waits,
        ``held``, before the function's steps). A decision (its id): workers leave it
        where it is."""
        target = target.strip()
        if not target:
            raise InvalidInputError("must name an entity, a playbook, a function or a decision",
                                    field="target")
        if until <= utcnow():
            raise InvalidInputError("must be in the future", field="until")
        target_type = self.hold_target_type(target)
        if target_type == "entity":
            self._not_a_typo(target)
        elif target_type == "decision":
            status = self._store.decisions.get(target).status
            if status.terminal:
                raise InvalidInputError(f"decision {target} is {status.value}: a hold on it "
                                        "would stop nothing", field="target")
        hold_id = self._store.holds.place(target_type=target_type,  # type: ignore[arg-type]
                                          target=target, until=until, reason=reason,
                                          actor=actor)
        return next(h for h in self._store.holds.list() if h.id == hold_id)

    def _not_a_typo(self, target: str) -> None:
        """Refuse an entity hold whose name is a function's or playbook's mistyped, or a
        decision's or approval request's id, when no prediction is about such an entity:
        it would hold nothing while its placer believes the function, playbook or
        decision held."""
        if _STORE_ID.fullmatch(target) and not self._store.predictions.entities_among([target]):
            # An id of ours, unknown (the decision's would be a decision hold): mistyped,
            # it would hold an entity nothing is about (trial 32).
            if target.startswith("apr_"):
                raise InvalidInputError(f"{target!r} names an approval request, not a "
                                        "decision: hold the decision it asks about "
                                        "(decisionops approvals show names it)", field="target")
            raise InvalidInputError(f"no decision {target!r}: check the id (decisionops "
                                    "decisions list)", field="target")
        names = sorted({*self._policies.functions, *self._playbooks})
        close = difflib.get_close_matches(target, names, n=1, cutoff=0.8)
        if close and not self._store.predictions.entities_among([target]):
            raise InvalidInputError(
                f"{target!r} is neither a function nor a playbook, and no prediction is "
                f"about an entity of that id: did you mean {close[0]!r}?", field="target")

    def release(self, target: str, *, actor: str) -> list[int]:
        """``release_holds``: the ids of the holds released."""
        return [h.id for h in self.release_holds(target, actor=actor)]

    def release_holds(self, target: str, *, actor: str) -> list[HoldRow]:
        """Release the active holds on ``target`` (or the hold numbered so, ``#7``, as
        placing it and ``holds list`` show it), returned with what each held; held work
        resumes. Recorded. ``NotFoundError`` when none is active on it (a mistyped target
        releases nothing, and must not look as if it did)."""
        released = self._store.holds.release(target=target.strip(), actor=actor)
        if not released:
            active = sorted({h.target for h in self._store.holds.list(active_only=True)})
            raise NotFoundError(f"no active hold on {target!r} (active: "
                                f"{', '.join(active) or 'none'})", field="target")
        if self.on_answer is not None:
            self.on_answer("")
        return released

    def held(self, decision: DecisionRow, functions: Sequence[str] = ()) -> str | None:
        """Why work on ``decision`` by ``functions`` is held, or None."""
        return self._store.holds.active().why(entity_id=decision.entity_id,
                                              playbook=decision.playbook, functions=functions,
                                              decision_id=decision.id)

    # ------------------------------------------------------------------ deadlines

    def sweep(self, now: datetime | None = None, *, settings: Any) -> dict[str, int]:
        """Remind, escalate and expire pending requests by their SLA (see ``_deadlines``)."""
        return sweep(self._store, self._tools, self._policies, settings=settings,
                     now=now or utcnow(), on_expire=self.on_answer, autonomy=self.autonomy,
                     only_a_person=self._only_a_person)

    def _only_a_person(self, row: ApprovalRow) -> str | None:
        """Why a request may not be approved by its SLA's expiry: a step acts on
        something its prediction is not about (``elsewhere``), which only a person
        decides."""
        decision = self._store.decisions.get(row.decision_id)
        prediction = self._store.predictions.get(decision.prediction_id)
        return self.elsewhere(row.request.steps, Subject.of(prediction))

