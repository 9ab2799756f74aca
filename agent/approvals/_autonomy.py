"""Earned autonomy, applied: the approval service's part of ``agent.autonomy``.

- Every answer (and expiry) records its steps' classes in the answer's own transaction,
  for every function, opted in or not (so ``policy autonomy --dry-run`` can say what a
  function would gain). For a function with ``autonomy:`` in its policy, the same
  transaction demotes a promoted class at a rejection, a revise or an edit of one of its
  steps, and promotes a class whose record now earns it.
- Routing: a function's part needs no person when every step is either within its
  static ``auto_approve`` policy or of a promoted class (still eligible, outcomes still
  not worse: a class whose outcomes turned worse is demoted there and then), within the
  function's hard limits and totals. The approver is ``autonomy:<function>``; the
  classes and their evidence are in the answer's comment and the ledger.
- People: ``revoke`` a promotion, ``reinstate`` a class (approvers of its function or an
  admin), each a ledger entry with the evidence at that moment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from decisionops.agent.approvals._identity import Approver, policy_identity, visible_functions
from decisionops.agent.autonomy import (
    ClassEvidence,
    class_key,
    not_eligible,
    outcomes_worse,
    run_of_approvals,
    verdict,
)
from decisionops.agent.errors import InvalidInputError, NotFoundError, PermissionDenied
from decisionops.agent.models import SUCCESS_LABELS, ApprovalRequest, Step
from decisionops.agent.policy import FunctionPolicy, Policies, UsedAmount, total_problems
from decisionops.agent.ports import ToolPort
from decisionops.agent.store import ClassState, DecisionTx, Store

__all__ = ["EarnedAutonomy", "step_statuses"]

_HISTORY = 10_000


class EarnedAutonomy:
    def __init__(self, store: Store, tools: ToolPort, policies: Policies, *,
                 playbook_steps: Mapping[str, Mapping[str, tuple[str, str]]],
                 playbook_kinds: Mapping[str, str]) -> None:
        self._store = store
        self._tools = tools
        self._policies = policies
        self._steps = playbook_steps
        """playbook → step id → (function, tool): what each playbook proposes."""
        self._kinds = playbook_kinds

    # ------------------------------------------------------------------ the record

    def rows(self, request: ApprovalRequest, playbook: str | None, statuses: Mapping[str, str],
             approver: str, at: datetime) -> list[dict[str, Any]]:
        """The class rows of an answered request: ``statuses`` step id → status."""
        out = []
        for step in request.steps:
            key = self.key(request.function, playbook, step)
            if key is not None and step.id in statuses:
                out.append({"class_key": key, "function": request.function,
                            "approval_id": request.approval_id,
                            "decision_id": request.decision_id, "status": statuses[step.id],
                            "approver": approver, "at": at})
        return out

    def key(self, function: str, playbook: str | None, step: Step) -> str | None:
        """The step's class: its bands are the arguments the function's policy bounds."""
        policy = self._policies.functions.get(function)
        banded: set[str] = set()
        if policy is not None:
            banded |= set(policy.limits.get(step.tool, {}))
            banded |= set(policy.auto_approve.limits.get(step.tool, {}))
            banded |= {total.sum for total in policy.all_totals() if total.tool == step.tool}
        return class_key(function, playbook, step, banded)

    def evidence(self, conn: Connection, key: str, function: str,
                 since: datetime | None) -> ClassEvidence:
        policy = self._policies.functions.get(function)
        rule = policy.autonomy if policy is not None else None
        confidence = rule.confidence if rule is not None else 0.9
        run, people, broken = run_of_approvals(
            self._store.autonomy.answers(conn, key, since=since, limit=_HISTORY))
        playbook = key.split("/")[1]
        treated, control = self._store.autonomy.outcomes(
            conn, key, kind=self._kinds.get(playbook, ""), success=SUCCESS_LABELS)
        worse, text = outcomes_worse(treated, control, confidence)
        return ClassEvidence(key=key, function=function, run=run, approvers=people,
                             broken_by=broken, counts=self._store.autonomy.counts(conn, key),
                             treated=treated, control=control, outcomes_text=text, worse=worse)

    def after_answer(self, tx: DecisionTx, request: ApprovalRequest, playbook: str | None,
                     statuses: Mapping[str, str], approver: str) -> None:
        """In the answer's transaction: record it; demote or promote (opted-in functions)."""
        rows = self.rows(request, playbook, statuses, approver, tx.now)
        self._store.autonomy.record_answers(tx.conn, rows)
        policy = self._policies.functions.get(request.function)
        if policy is None or policy.autonomy is None:
            return
        steps = {s.id: s for s in request.steps}
        for row in rows:
            key, status = row["class_key"], row["status"]
            state = self._store.autonomy.state(tx.conn, key)
            if status in ("rejected", "revise", "edited", "expired"):
                if state is not None and state.state == "promoted" and status != "expired":
                    evidence = self.evidence(tx.conn, key, request.function, None).to_dict()
                    tx.events.append(self._store.autonomy.change(
                        tx.conn, key, function=request.function, state="demoted", by=approver,
                        reason=f"{status} by {approver} ({request.approval_id})",
                        evidence=evidence, now=tx.now))
                continue
            if status != "approved" or (state is not None and state.state == "promoted"):
                continue
            if state is not None and state.state == "revoked":
                continue  # a person withdrew it: only a person gives it back
            if self._ineligible(policy, steps[_step_id(key)], playbook) is not None:
                continue
            evidence = self.evidence(tx.conn, key, request.function,
                                     state.changed_at if state is not None else None)
            if verdict(evidence, after=policy.autonomy.after,
                       approvers=policy.autonomy.approvers) is None:
                tx.events.append(self._store.autonomy.change(
                    tx.conn, key, function=request.function, state="promoted",
                    by=f"autonomy:{request.function}",
                    reason=(f"{evidence.run} approvals in a row without an edit by "
                            f"{', '.join(evidence.approvers)}; {evidence.outcomes_text}"),
                    evidence=evidence.to_dict(), now=tx.now))

    # ------------------------------------------------------------------ routing

    def _ineligible(self, policy: FunctionPolicy, step: Step, playbook: str | None) -> str | None:
        assert policy.autonomy is not None
        if playbook is None or playbook not in self._steps:
            return "no playbook proposed it"
        return not_eligible(step, function=policy.name, playbook_steps=self._steps[playbook],
                            limit_problems=policy.limit_problems(step.tool, step.arguments),
                            max_risk_rank=policy.autonomy.max_risk.rank,
                            targets=self._tools.spec(step.tool).targets)

    def covers(self, policy: FunctionPolicy, playbook: str | None, steps: Sequence[Step], *,
               key_of: Any, used: UsedAmount, demote: bool = True) -> str | None:
        """The comment of an approval by earned autonomy of ``steps`` (one function's
        part), or None when a person must answer. ``demote``: record the demotion of a
        class whose outcomes turned worse (not in a what-if)."""
        if policy.autonomy is None:
            return None
        earned, rest = [], []
        for step in steps:
            key = self.key(policy.name, playbook, step)
            state = self._store.autonomy.get(key) if key is not None else None
            if state is None or state.state != "promoted":
                rest.append(step)
                continue
            if self._ineligible(policy, step, playbook) is not None:
                return None
            with self._store.reading() as conn:
                evidence = self.evidence(conn, key, policy.name, None)
            if evidence.worse and not demote:
                return None
            if evidence.worse:
                self._store.autonomy.change_now(
                    key, function=policy.name, state="demoted", by=f"autonomy:{policy.name}",
                    reason=f"outcome regression: {evidence.outcomes_text}",
                    evidence=evidence.to_dict())
                return None
            earned.append(f"{key} ({state.reason})")
        if not earned:
            return None
        if rest and policy.needs_human(rest, key_of=key_of, used=used) is not None:
            return None
        if total_problems(policy.totals, steps, key_of=key_of, used=used,
                          what="the function's total"):
            return None
        return "earned autonomy: " + "; ".join(earned)

    def for_request(self, request: ApprovalRequest, playbook: str | None) -> list[dict[str, Any]]:
        """Per step of a request: its class, state and run (what an approver sees)."""
        policy = self._policies.functions.get(request.function)
        rule = policy.autonomy if policy is not None else None
        out = []
        with self._store.reading() as conn:
            for step in request.steps:
                key = self.key(request.function, playbook, step)
                if key is None:  # every entry has the same fields, whatever its state
                    out.append({"step": step.id, "class": None, "state": "no playbook",
                                "opted_in": False, "run": 0, "after": None,
                                "approvers": [], "reason": "", "outcomes": ""})
                    continue
                state = self._store.autonomy.state(conn, key)
                since = state.changed_at if state and state.state != "promoted" else None
                evidence = self.evidence(conn, key, request.function, since)
                out.append({"step": step.id, "class": key,
                            "state": state.state if state else "learning",
                            "opted_in": rule is not None, "run": evidence.run,
                            "after": rule.after if rule else None,
                            "approvers": evidence.approvers,
                            "reason": state.reason if state else "",
                            "outcomes": evidence.outcomes_text})
        return out

    def rebuild(self) -> int:
        """Derive the class record again from every answered approval request, with
        today's policies (a policy whose limits changed bands its classes anew, and a
        store from before earned autonomy gets its history); the classes' states stay.
        How many class answers were recorded."""
        rows: list[dict[str, Any]] = []
        playbooks: dict[str, str | None] = {}
        for status in ("approved", "edited", "rejected", "revise", "expired", "auto_approved"):
            for row in self._store.approvals.list(status=status, limit=10_000_000):
                earned = (row.approver or "").startswith("autonomy:")
                if row.answered_at is None or (status == "auto_approved" and not earned):
                    continue
                if row.decision_id not in playbooks:
                    playbooks[row.decision_id] = self._store.decisions.get(
                        row.decision_id).playbook
                statuses = ({s.id: "autonomy" for s in row.request.steps} if earned
                            else step_statuses(row.request, status, row.approved_arguments))
                rows += self.rows(row.request, playbooks[row.decision_id], statuses,
                                  row.approver or "", row.answered_at)
        self._store.autonomy.replace_answers(rows)
        return len(rows)

    # ------------------------------------------------------------------ people

    def _authorize(self, key: str, by: Approver) -> ClassState:
        state = self._store.autonomy.get(key)
        if state is None:
            raise NotFoundError(f"no earned-autonomy class {key!r} has a state; "
                                "decisionops policy autonomy lists them", field="class")
        policy = self._policies.functions.get(state.function)
        if by.role == "admin":
            return state
        if (by.role != "approver" or state.function not in by.functions or policy is None
                or policy_identity(policy.approvers, by.name,
                                   registered=self._store.users.registered)
                is None):
            raise PermissionDenied(f"{by.name} may not change {state.function}'s autonomy: "
                                   f"approvers of {state.function} or an admin may")
        return state

    def revoke(self, key: str, *, by: Approver, reason: str) -> ClassState:
        state = self._authorize(key, by)
        if state.state != "promoted":
            raise InvalidInputError(f"{key} is {state.state}, not promoted", field="class")
        with self._store.reading() as conn:
            evidence = self.evidence(conn, key, state.function, None)
        return self._store.autonomy.change_now(
            key, function=state.function, state="revoked", by=by.name,
            reason=reason or f"revoked by {by.name}", evidence=evidence.to_dict())

    def reinstate(self, key: str, *, by: Approver, reason: str) -> ClassState:
        state = self._authorize(key, by)
        if state.state == "promoted":
            raise InvalidInputError(f"{key} is already promoted", field="class")
        with self._store.reading() as conn:
            evidence = self.evidence(conn, key, state.function, None)
        if evidence.worse:
            raise InvalidInputError(f"{key}: {evidence.outcomes_text}; not reinstated while "
                                    "its outcomes are worse than the control group's",
                                    field="class")
        return self._store.autonomy.change_now(
            key, function=state.function, state="promoted", by=by.name,
            reason=reason or f"reinstated by {by.name}", evidence=evidence.to_dict(),
            event="autonomy.reinstated")

    # ------------------------------------------------------------------ the report

    def _visible(self, function: str | None, viewer: Approver | None, *,
                 one: bool = False) -> tuple[str | None, tuple[str, ...] | None]:
        """The function asked for (``one``: named, or the viewer's only one) and the
        functions ``viewer`` may see (None: all); refuses another function's record."""
        visible = visible_functions(viewer)
        if visible is not None and viewer is not None:
            if function is None and one:
                if len(visible) != 1:
                    raise InvalidInputError("name one of your functions", field="function")
                function = visible[0]
            if function is not None and function not in visible:
                raise PermissionDenied(f"{viewer.name} does not approve for {function}")
        if function is not None:
            self._policies.get(function)
        return function, visible

    def report(self, function: str | None = None, *, after: int | None = None,
               approvers: int | None = None, viewer: Approver | None = None
               ) -> list[dict[str, Any]]:
        """Every class on record that ``viewer`` may see (an approver: their functions'):
        its state, counts, the run of approvals, outcomes, and what the record earns it
        today (``would``: promoted / why not), with the policy's thresholds or the ones
        given (a dry run for a function not opted in)."""
        function, visible = self._visible(function, viewer)
        states = {s.key: s for s in self._store.autonomy.states(function)}
        keys = [(key, fn) for key, fn in self._store.autonomy.keys(function)
                if visible is None or fn in visible]
        weekly = self._store.autonomy.requests_per_week([k for k, _ in keys])
        out = []
        with self._store.reading() as conn:
            for key, fn in keys:
                policy = self._policies.functions.get(fn)
                rule = policy.autonomy if policy is not None else None
                state = states.get(key)
                # A promoted class shows the run that earned it; a demoted or revoked
                # one the run since, toward promotion again.
                since = state.changed_at if state and state.state != "promoted" else None
                evidence = self.evidence(conn, key, fn, since)
                need = after or (rule.after if rule else 20)
                people = approvers or (rule.approvers if rule else 2)
                why = verdict(evidence, after=need, approvers=people)
                blocked = self._blocked(policy, key)
                out.append({
                    "class": key, "function": fn, "opted_in": rule is not None,
                    "state": state.state if state else "learning",
                    "changed_by": state.changed_by if state else None,
                    "changed_at": state.changed_at.isoformat() if state else None,
                    "reason": state.reason if state else None,
                    "run": evidence.run, "approvers": evidence.approvers,
                    "broken_by": evidence.broken_by, "counts": evidence.counts,
                    "outcomes": evidence.outcomes_text, "worse": evidence.worse,
                    "would": "promote" if why is None and blocked is None else (blocked or why),
                    "requests_per_week": round(weekly.get(key, 0.0), 2),
                    "thresholds": {"after": need, "approvers": people}})
        return out

    def dry_run(self, function: str | None = None, *, after: int | None = None,
                approvers: int | None = None, viewer: Approver | None = None
                ) -> dict[str, Any]:
        """What opting in (or these thresholds) would give today: the classes the record
        would promote now, the requests a week they would take off people (the last four
        weeks' pace: a request counts once, when every class of its steps would then be
        promoted), and the record replayed under the rule (``replay``). An approver
        (``viewer``) dry-runs one of their functions: the one named, or their only one."""
        function, _ = self._visible(function, viewer, one=True)
        report = self.report(function, after=after, approvers=approvers)
        rows = [r for r in report if r["state"] != "promoted" and r["would"] == "promote"]
        saved = self._store.autonomy.requests_per_week_taken(
            [r["class"] for r in report if r["state"] == "promoted"],
            [r["class"] for r in rows])
        return {"would_promote": rows, "requests_per_week_saved": round(saved, 2),
                "replay": self.replay(function, after=after, approvers=approvers)}

    def replay(self, function: str | None = None, *, after: int | None = None,
               approvers: int | None = None) -> dict[str, Any]:
        """The record replayed in order under the rule (the policy's thresholds or the
        ones given): the requests people answered that earned autonomy would have taken
        (every step of the request in a class promoted by then), how many of those the
        person in fact rejected, revised or edited, and how many ended with a recorded
        outcome that is not a success. Outcome regressions are not replayed (the
        outcomes' arrival times are not part of the record)."""
        by_request: dict[str, list[Any]] = {}
        for row in self._store.autonomy.in_order(function):
            if row.status != "autonomy":
                by_request.setdefault(row.approval_id, []).append(row)
        state: dict[str, tuple[int, set[str], bool]] = {}  # key → run, people, promoted
        taken: list[tuple[str, str, bool]] = []  # approval, decision, a person objected
        for rows in by_request.values():
            fn = rows[0].function
            policy = self._policies.functions.get(fn)
            rule = policy.autonomy if policy is not None else None
            need = after or (rule.after if rule else 20)
            people = approvers or (rule.approvers if rule else 2)
            if all(state.get(r.class_key, (0, set(), False))[2]
                   and self._blocked(policy, r.class_key) is None for r in rows):
                objected = any(r.status in ("rejected", "revise", "edited") for r in rows)
                taken.append((rows[0].approval_id, rows[0].decision_id, objected))
            for r in rows:
                run, who, promoted = state.get(r.class_key, (0, set(), False))
                if r.status == "approved":
                    run, who = run + 1, who | {r.approver}
                    promoted = promoted or (run >= need and len(who) >= people)
                elif r.status == "expired":
                    run, who = 0, set()
                else:
                    run, who, promoted = 0, set(), False
                state[r.class_key] = (run, who, promoted)
        decisions = {rows[0].decision_id for rows in by_request.values()}
        labels = self._store.autonomy.outcome_labels(sorted(decisions))

        def bad(decision_id: str) -> bool:
            return any(label not in SUCCESS_LABELS for label in labels.get(decision_id, []))

        failed = [a for a, d, _ in taken if bad(d)]
        known = [d for d in decisions if labels.get(d)]
        return {"requests_answered": len(by_request), "would_have_taken": len(taken),
                "of_which_people_objected": sum(1 for *_, o in taken if o),
                "with_an_outcome": sum(1 for _, d, _ in taken if labels.get(d)),
                "with_a_bad_outcome": len(failed), "bad_outcome_requests": failed[:20],
                "bad_outcome_share_all_decisions": (
                    round(sum(1 for d in known if bad(d)) / len(known), 3) if known else None)}

    def _blocked(self, policy: FunctionPolicy | None, key: str) -> str | None:
        """What keeps a class from promotion whatever its record (from its key alone)."""
        if policy is None:
            return "its function is not in the policies"
        _function, playbook, step_id, tool = key.split("[")[0].split("/")
        if self._steps.get(playbook, {}).get(step_id) != (policy.name, tool):
            return "not a step the playbook proposes"
        try:
            targets = self._tools.spec(tool).targets
        except (KeyError, NotFoundError):
            return f"{tool} is no longer a tool"
        return None if targets else f"{tool} binds no target"


def _step_id(key: str) -> str:
    return key.split("[")[0].split("/")[2]


def step_statuses(request: ApprovalRequest, status: str,
                  approved: Mapping[str, Any] | None) -> dict[str, str]:
    """Each step's part in an answer, as earned autonomy counts it: an edit edits the
    steps whose arguments it changed and approves the others as they are."""
    if status == "edited":
        changed = {k for k, v in (approved or {}).items()
                   if v != next((s.arguments for s in request.steps if s.id == k), None)}
        return {s.id: "edited" if s.id in changed else "approved" for s in request.steps}
    return {s.id: status for s in request.steps}
