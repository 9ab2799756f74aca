"""The composition root: builds the store, tools, planner, approval service, graph and
engine from ``Settings`` and hands them to the CLI, the API and the workers.

This is the one place in ``agent`` that imports ``graphs`` and ``tools``. It wires; it
owns no rule. Answers go through ``approvals`` (``agent.approvals``), decisions move
through a ``Worker`` (``agent.worker``), which is the only thing that runs the graph.
"""

from __future__ import annotations

import difflib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from decisionops.agent.approvals import ApprovalService
from decisionops.agent.errors import ConfigError, DecisionOpsError
from decisionops.agent.executor import ExecutionPolicy, Executor
from decisionops.agent.guard import check_plan
from decisionops.agent.hand_plans import HandPlanner
from decisionops.agent.llm import ToolLookup, build_planner
from decisionops.agent.models import (
    Prediction,
    TriageAction,
    TriagedRow,
    TriageVerdict,
    decision_id_for,
    utcnow,
)
from decisionops.agent.notifications import Composer, Deliverer, SenderThread
from decisionops.agent.planner import Planner, PlaybookPlanner
from decisionops.agent.playbooks import PlaybookBook, load_playbooks
from decisionops.agent.policy import Policies, load_policies
from decisionops.agent.prediction_queue import PredictionQueue
from decisionops.agent.settings import Settings
from decisionops.agent.sources import PredictionRow, prepare
from decisionops.agent.store import IngestResult, Store
from decisionops.agent.telemetry import Metrics, configure_tracing
from decisionops.agent.triage import Acted, bulk_drops, gaps, triage
from decisionops.tools.enterprise import Enterprise
from decisionops.tools.registry import ToolRegistry
from decisionops.tools.sources import build_tool_registry

IN_FORCE_FILE = "functions.in-force.yaml"
"""The data folder's copy of the functions file last taken up (see ``_keep_in_force``)."""
POLICY_SETTLE_NS = 2_000_000_000
"""How long an edited functions file must stand unchanged before a running process
takes it up (``Runtime.refresh_policies``)."""
_log = logging.getLogger("decisionops.policies")

__all__ = ["Runtime", "TriageSummary", "check_start"]

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

    from decisionops.agent.checkpoints import FencedCheckpointer
    from decisionops.agent.ports import ToolSpec
    from decisionops.agent.worker import TickReport
    from decisionops.graphs import DecisionContext, DecisionEngine


@dataclass
class TriageSummary:
    verdicts: list[TriageVerdict | TriagedRow] = field(default_factory=list)
    """Every verdict of the pass: those reached row by row, and (as ``TriagedRow``, the
    same fields) those a rule reached for a whole kind in SQL."""

    def count(self, action: TriageAction) -> int:
        return sum(1 for v in self.verdicts if v.action == action)


def _worker_id() -> str:
    # Unique per process and per runtime: two runtimes never share a lease owner.
    return f"worker:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def check_start(policies: Policies, playbooks: PlaybookBook, specs: Sequence[ToolSpec], *,
                functions_file: Any = None, settings: Settings | None = None) -> None:
    """What `run` refuses to start with (``ConfigError``, naming the file and the field):
    every tool a policy names is registered, every argument its limits and totals bound
    is one the tool takes (a misspelt argument would bound nothing), and the playbooks'
    steps are ones their functions may take. The runtime checks it at its start;
    ``playbooks list`` and ``tools list`` with the registry they build."""
    specs_by_name = {spec.name: spec for spec in specs}
    if settings is not None:
        _check_owners(settings, policies, functions_file or "the bundled functions.yaml")
    try:
        _check_policies(policies, specs_by_name)
    except ConfigError as exc:
        where = functions_file or "the bundled functions.yaml"
        raise ConfigError(f"{where}: {exc.message}", **exc.details) from None
    problems = playbooks.problems(
        functions={n: p.tools for n, p in policies.functions.items()},
        parameters={name: spec.parameters for name, spec in specs_by_name.items()})
    if problems:
        raise ConfigError("; ".join(problems), field="playbooks_dir")  # each names its file


def _check_owners(settings: Settings, policies: Policies, functions_file: Any) -> None:
    """Every configured tool source is owned by a function of the policies: a misspelt
    one (``fraud_opz``) would give its tools an owner no policy speaks for (trial 18)."""
    known = sorted(policies.functions)
    for kind, configs in (("tool_servers", settings.tool_servers),
                          ("openapi_tools", settings.openapi_tools)):
        for index, config in enumerate(configs):
            if config.function in policies.functions:
                continue
            close = difflib.get_close_matches(config.function, known, n=1)
            raise ConfigError(
                f"{kind}[{index}] ({config.name}): function: {config.function!r} is not a "
                f"function of {functions_file} ({', '.join(known)})"
                + (f"; did you mean {close[0]!r}?" if close else ""),
                field=f"{kind}.{index}.function")


def _check_policies(policies: Policies, specs_by_name: dict[str, ToolSpec]) -> None:
    for name, policy in policies.functions.items():
        missing = sorted(set(policy.tools) - set(specs_by_name))
        if missing:
            raise ConfigError(f"functions.{name}.tools: unknown tool(s) {', '.join(missing)}",
                              field=f"functions.{name}.tools")
        bounded = [(f"functions.{name}.{where}limits.{tool}.{argument}", tool, argument)
                   for where, limits in (("", policy.limits),
                                         ("auto_approve.", policy.auto_approve.limits))
                   for tool, arguments in limits.items() for argument in arguments]
        bounded += [(f"functions.{name}.{where}totals[{i}].sum", total.tool, total.sum)
                    for where, totals in (("", policy.totals),
                                          ("auto_approve.", policy.auto_approve.totals))
                    for i, total in enumerate(totals)]
        for where, tool, argument in bounded:
            if tool not in specs_by_name:
                raise ConfigError(f"{where}: unknown tool {tool!r}", field=where)
            properties = specs_by_name[tool].parameters.get("properties") or {}
            takes = sorted(properties)
            if argument not in takes:
                raise ConfigError(f"{where}: {tool} takes no argument {argument!r} (it "
                                  f"takes {', '.join(takes)})", field=where)
            kind = properties[argument].get("type")
            if where.endswith(".sum") and kind not in ("number", "integer", None):
                raise ConfigError(f"{where}: {tool}'s {argument} is {kind}, not a number: "
                                  "a total sums numbers", field=where)
        # A hard limit that leaves nothing refuses every plan, at runtime; an auto-approve
        # one that does (``quantity: {max: 0}``) is how a policy says "never by itself".
        for tool, arguments in policy.limits.items():
            properties = specs_by_name[tool].parameters.get("properties") or {}
            for argument, limit in arguments.items():
                empty = _leaves_nothing(tool, argument, properties[argument], limit)
                if empty:
                    field = f"functions.{name}.limits.{tool}.{argument}"
                    raise ConfigError(f"{field}: {empty}", field=field)


def _leaves_nothing(tool: str, argument: str, schema: dict[str, Any], limit: Any
                    ) -> str | None:
    """Why a policy's limit leaves no value the tool's schema takes (every call would be
    refused, at runtime, one plan at a time), or None."""
    def num(value: float) -> str:
        return f"{value:g}"

    def bound(key: str, exclusive_key: str) -> tuple[float | None, float | None]:
        """(inclusive, exclusive): OpenAPI 3.0 and JSON Schema draft 4 say exclusive with
        a boolean beside ``minimum``/``maximum``; later drafts with a number."""
        value, exclusive = schema.get(key), schema.get(exclusive_key)
        if isinstance(exclusive, bool):
            return (None, value) if exclusive else (value, None)
        return value, exclusive

    low, above = bound("minimum", "exclusiveMinimum")
    high, below = bound("maximum", "exclusiveMaximum")
    if limit.max is not None and ((low is not None and limit.max < low)
                                  or (above is not None and limit.max <= above)):
        floor = f"at least {num(low)}" if low is not None else f"more than {num(above)}"
        return (f"max {num(limit.max)} leaves no value the tool takes ({tool}'s {argument} is "
                f"{floor})")
    if limit.min is not None and ((high is not None and limit.min > high)
                                  or (below is not None and limit.min >= below)):
        ceiling = f"at most {num(high)}" if high is not None else f"less than {num(below)}"
        return (f"min {num(limit.min)} leaves no value the tool takes ({tool}'s {argument} is "
                f"{ceiling})")
    return None


class Runtime:
    """Everything wired; use as a context manager (closes connections)."""

    def __init__(self, settings: Settings | None = None, *, actor: str | None = None,
                 in_force: bool = False) -> None:
        """``in_force``: when the functions file does not load (or fails the start
        checks), use the policies last in force in this data folder (``IN_FORCE_FILE``),
        as a running server keeps them, and say so; for commands that do not start the
        loop or the server (those refuse to start on a broken file)."""
        self.settings = settings or Settings()
        self.actor = actor or _worker_id()
        self._in_force = in_force
        self._stack = ExitStack()
        try:
            self._build()
        except BaseException:
            self._stack.close()
            raise

    def _build(self) -> None:
        s = self.settings
        s.home.mkdir(parents=True, exist_ok=True)
        configure_tracing(s.otel_exporter, endpoint=s.otel_endpoint)
        self.metrics = Metrics()
        self._policy_lock = threading.Lock()
        self._policy_stamp = _stamp(s.functions_file)
        functions_file = s.functions_file
        try:
            self.policies: Policies = load_policies(functions_file)
        except ConfigError as exc:
            functions_file = self._kept_policies(exc)
            self.policies = load_policies(functions_file)
        self.playbooks: PlaybookBook = load_playbooks(s.playbooks_dir).fitting(
            {name: policy.tools for name, policy in self.policies.functions.items()})
        self.store = Store.open(s.resolved_database_url)
        self._stack.callback(self.store.close)
        self.enterprise = Enterprise(s.resolved_enterprise_url)
        self.enterprise.create()
        if self.enterprise.counts().get("accounts", 0) == 0:
            # The embedded reference enterprise comes seeded: nothing to set up.
            self.enterprise.seed()
        self._stack.callback(self.enterprise.close)
        sources = build_tool_registry(s, self.enterprise)
        self._stack.callback(sources.close)
        self.tools: ToolRegistry = sources.registry
        try:
            check_start(self.policies, self.playbooks, self.tools.specs(),
                        functions_file=functions_file, settings=s)
        except ConfigError as exc:
            if functions_file != s.functions_file:
                raise  # the policies in force no longer start either
            functions_file = self._kept_policies(exc)
            self.policies = load_policies(functions_file)
            self.playbooks = load_playbooks(s.playbooks_dir).fitting(
                {name: policy.tools for name, policy in self.policies.functions.items()})
            check_start(self.policies, self.playbooks, self.tools.specs(),
                        functions_file=functions_file, settings=s)
        if functions_file == s.functions_file:
            _keep_in_force(s)
        self._planner: Planner | None = None
        self._planner_lock = threading.Lock()
        self.executor = Executor(self.store, self.tools, self.policies, ExecutionPolicy(
            attempts=s.tool_attempts, backoff_seconds=s.tool_backoff_seconds,
            threads=s.executor_threads), actor=self.actor, metrics=self.metrics)
        self._stack.callback(self.executor.close)
        self.approvals = ApprovalService(self.store, self.tools, self.policies,
                                         playbooks=sorted(self.playbooks.playbooks),
                                         playbook_steps={
                                             p.name: {s.id: (s.function, s.tool) for s in p.steps}
                                             for p in self.playbooks.playbooks.values()},
                                         playbook_kinds={p.name: p.kind for p in
                                                         self.playbooks.playbooks.values()},
                                         cli_answers=s.resolved_cli_answers,
                                         refresh=self.refresh_policies,
                                         metrics=self.metrics, max_replans=s.max_replans,
                                         # A revise the playbook planner would draft
                                         # unchanged is refused; a model reads any text.
                                         revisions=PlaybookPlanner(self.playbooks)
                                         if s.planner == "playbook" else None)
        self.queue = PredictionQueue(self.store, self.playbooks, self.verdicts,
                                     partial(check_plan, tools=self.tools,
                                             policies=self.policies),
                                     cli_answers=s.resolved_cli_answers)
        self._graph_lock = threading.Lock()
        self._decisions: tuple[FencedCheckpointer, CompiledStateGraph, DecisionEngine] | None = None
        self.metrics.watch_store(self.gauges)
        self._wire_notifications()

    def _kept_policies(self, problem: ConfigError) -> Any:
        """The policies last in force in this data folder, for a functions file that
        does not start (``problem``); re-raised when this runtime may not use them, or
        there are none."""
        kept = self.settings.home / IN_FORCE_FILE
        if not self._in_force or not kept.is_file():
            raise problem
        _log.warning("%s does not load (%s): the function policies last in force in this "
                     "data folder apply, as in a running serve or run (%s); fix the file",
                     self.settings.functions_file, problem.message, kept)
        return kept

    def refresh_policies(self) -> bool:
        """Take up a functions file edited while this process runs (``serve``, ``run``),
        as a command started now would read it: the approval service asks before it
        checks an answer, so who may answer is the file as it is now on every channel.
        The file is validated as at start; one that does not load, or that changes which
        playbooks fit their functions' tools (a restart's work), is not taken up, and
        the policies in force stay, logged as an error. Every part of this process
        shares the one ``Policies``, whose functions are replaced in place, one by one
        (a reader sees a function's old or new policy, never none). A file is taken up
        once it has not changed for ``POLICY_SETTLE_NS``: one rewritten in place could
        be read half-written, and a prefix that drops ``four_eyes`` or a limit still
        loads (trial 28); replacing it (``mv``) is atomic. True when taken up."""
        path = self.settings.functions_file
        stamp = _stamp(path)
        if path is None or stamp == self._policy_stamp:
            return False
        if stamp is not None and time.time_ns() - stamp[0] < POLICY_SETTLE_NS:
            return False  # being written, maybe: a half-written file could load (trial 28)
        with self._policy_lock:
            if stamp == self._policy_stamp:
                return False
            self._policy_stamp = stamp
            try:
                new = load_policies(path)
                fitting = load_playbooks(self.settings.playbooks_dir).fitting(
                    {name: policy.tools for name, policy in new.functions.items()})
                check_start(new, fitting, self.tools.specs(), functions_file=path,
                            settings=self.settings)
            except DecisionOpsError as exc:
                _log.error("%s changed but was not taken up (%s); the function policies "
                           "read before stay in force", path, exc)
                return False
            if set(fitting.playbooks) != set(self.playbooks.playbooks):
                _log.error("%s changed which playbooks fit their functions' tools: restart "
                           "to take it up; the function policies read before stay in force",
                           path)
                return False
            current = self.policies.functions
            current.update(new.functions)
            for gone in set(current) - set(new.functions):
                del current[gone]
            _keep_in_force(self.settings)
            _log.warning("%s changed: its function policies are in force from now", path)
            return True

    @property
    def planner(self) -> Planner:
        """The planner ``planner`` names, built on first use (under a lock: a worker's
        threads may ask at once): a command that does not plan (``decisions list``,
        ``ledger verify``, ``users token``) runs even while the model endpoint's settings
        are wrong; one that plans (``run``, ``serve``, ``demo``) is refused at its start
        with the field named (``ConfigError``)."""
        built = self._planner
        if built is not None:
            return built
        with self._planner_lock:
            if self._planner is None:
                planner = HandPlanner(self.store.hand_plans.get, build_planner(
                    self.settings, playbooks=self.playbooks, tools=self.tools,
                    policies=self.policies, store=self.store.llm,
                    lookup=ToolLookup(self.tools), actor=self.actor, metrics=self.metrics))
                self._stack.callback(getattr(planner, "close", lambda: None))
                self._planner = planner
            return self._planner

    # The decision graph, its checkpointer and the engine that runs it are built on first
    # use: a command that only reads or answers (``users list``, ``approvals approve
    # --no-apply``) does not import LangGraph or open the checkpoints (about a second of
    # every such command). Built once, under a lock (``serve``'s worker and its request
    # threads may ask at once); closed with the runtime, before everything it uses.

    @property
    def checkpointer(self) -> FencedCheckpointer:
        return self._decision_graph()[0]

    @property
    def graph(self) -> CompiledStateGraph:
        return self._decision_graph()[1]

    @property
    def engine(self) -> DecisionEngine:
        return self._decision_graph()[2]

    def _decision_graph(self) -> tuple[FencedCheckpointer, CompiledStateGraph, DecisionEngine]:
        built = self._decisions
        if built is not None:
            return built
        with self._graph_lock:
            if self._decisions is None:
                from decisionops.agent.checkpoints import FencedCheckpointer, open_checkpointer
                from decisionops.graphs import DecisionEngine, build_decision_graph

                s = self.settings
                checkpointer = FencedCheckpointer(
                    open_checkpointer(s.resolved_checkpoint_url, self._stack),
                    self.store.decisions.fence_of)
                graph = build_decision_graph(checkpointer)
                # Workers run decisions under this runtime's own lease owner (self.actor).
                engine = DecisionEngine(graph, store=self.store, approvals=self.approvals,
                                        context=self._context, owner=self.actor,
                                        lease_seconds=s.lease_seconds, durability=s.durability,
                                        fencing=checkpointer, metrics=self.metrics,
                                        max_leg_failures=s.max_leg_failures)
                self._stack.callback(engine.close)
                self._decisions = (checkpointer, graph, engine)
            return self._decisions

    def _wire_notifications(self) -> None:
        """Approver notifications: outbox rows written with each approval event (the
        store's event hook), delivered by a sender thread the loop kicks."""
        composer = Composer(self.settings, self.policies)
        self.notifications = Deliverer(self.store.notifications, self.settings, self.metrics)
        self._stack.callback(self.notifications.close)
        self.notification_sender = SenderThread(self.notifications)
        self._stack.callback(self.notification_sender.close)
        if composer.enabled:
            self.store.db.event_hooks.append(composer)

    @property
    def planning_slots(self) -> int:
        """Decisions a worker of this runtime plans at once (see ``planner_concurrency``)."""
        return 1 if self.planner.deterministic else self.settings.planner_concurrency

    def gauges(self) -> dict[str, dict[str, float]]:
        """Read on every metrics scrape: queue depth, decisions by state, pending
        approvals per function."""
        return {"queue_depth": {"": float(self.store.predictions.queue_depth())},
                "decisions:status": {k: float(v) for k, v in
                                     self.store.decisions.counts().items()},
                "approvals_pending:function": {k: float(v) for k, v in
                                               self.store.approvals.pending_count().items()}}

    def _context(self, fence: int) -> DecisionContext:
        from decisionops.graphs import DecisionContext

        return DecisionContext(store=self.store, tools=self.tools, policies=self.policies,
                               planner=self.planner, executor=self.executor,
                               approvals=self.approvals, playbooks=self.playbooks,
                               actor=self.actor, fence=fence,
                               max_replans=self.settings.max_replans)

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ operations

    def ingest(self, predictions: Sequence[Prediction | PredictionRow], *, source: str,
               actor: str | None = None, durable: bool = True) -> IngestResult:
        """Accept predictions (new ids only), or rows ``agent.sources.prepare`` made of
        them (a bulk read prepares them in its worker processes); ``actor`` is who
        submitted them (four-eyes counts them as the requester of the first plan).
        ``durable=False``: the caller stores a durable batch after this one (whose sync
        covers it) before it reports. Every path in goes through here, so
        ``kind_aliases`` apply to all of them."""
        predictions = prepare(predictions, self.settings.kind_aliases)
        unknown = sorted({p.kind for p in predictions} - self.playbooks.kinds())
        result = self.store.predictions.ingest(predictions, source=source,
                                               actor=actor or self.actor, durable=durable)
        if result.new:
            self.metrics.predictions.labels(source.split(":", 1)[0]).inc(len(result.new))
        result.unknown_kinds = unknown
        result.needs = gaps(predictions, self.playbooks, self.settings.value_at_stake_defaults)
        return result

    def triage_pending(self, limit: int = 10_000) -> TriageSummary:
        """Triage up to ``limit`` predictions not triaged yet (twice that when both steps
        run). First the drops that hold for a whole kind, in SQL (``bulk_drops``), over
        the next ``limit`` stored; then, once the backlog is screened, the rest row by
        row, oldest observed first (cooldowns depend on that order; bulk drops do not)."""
        predictions = self.store.predictions
        window = predictions.screening_window(limit)
        summary = TriageSummary()
        drops = bulk_drops(self.playbooks, predictions.untriaged_kinds(window))
        if drops:
            summary.verdicts += predictions.drop_in_bulk(drops, window=window,
                                                         actor=self.actor)
        if window is not None and 2 * len(summary.verdicts) >= limit:
            return summary  # more to screen: rows that survive it wait (the order holds)
        rowwise = self.verdicts(predictions.untriaged(limit))
        self.store.predictions.record_triage(rowwise, actor=self.actor)
        summary.verdicts += rowwise
        return summary

    def verdicts(self, pending: Sequence[Prediction], *, what_if: bool = False
                 ) -> list[TriageVerdict]:
        """Triage ``pending`` row by row, in order (not recorded): the pure rules of
        ``agent.triage`` with what they need looked up (the last action on each entity,
        the kind's default value at stake, the holdout share) and operator holds
        applied to what would act. ``what_if`` (a preview of a stored prediction): its
        own earlier action is not a cooldown on itself, and none is held out."""
        by_kind: dict[str, list[Prediction]] = {}
        for p in pending:
            by_kind.setdefault(p.kind, []).append(p)
        now = utcnow()
        holds = self.store.holds.active(now)
        defaults = self.settings.value_at_stake_defaults
        rowwise: list[TriageVerdict] = []
        for kind, items in by_kind.items():
            # A what-if of a stored prediction: its own action is no cooldown on itself.
            last = self.store.predictions.last_acted(
                kind, (p.entity_id for p in items),
                besides=[p.id for p in items] if what_if else ())
            newest = self.store.predictions.newest_observed(kind, (p.entity_id for p in items))
            for p in items:
                playbook = self.playbooks.for_prediction(p)
                verdict = triage(p, playbook, last_acted=last.get(p.entity_id), now=now,
                                 holdout_share=0.0 if what_if else self.settings.holdout_share,
                                 value_default=defaults.get(kind),
                                 newest_observed_at=newest.get(p.entity_id))
                held = (holds.why(entity_id=p.entity_id, playbook=verdict.playbook)
                        if verdict.action == TriageAction.ACT else None)
                if held:  # an operator hold; DROP, not HOLD: no holdout control arm
                    verdict = verdict.model_copy(update={"action": TriageAction.DROP,
                                                         "reason": "hold", "detail": held})
                if verdict.action in (TriageAction.ACT, TriageAction.HOLD):
                    # decided now: an action's cooldown runs from here; either way this
                    # reading is decided
                    last[p.entity_id] = _decided(last.get(p.entity_id), verdict.action,
                                                 now, p.observed_at)
                rowwise.append(verdict)
        return rowwise

    def run_once(self) -> TickReport:
        """One pass of the loop, exactly as a worker runs it: apply answers, carry on
        stalled decisions, triage, start decisions, housekeeping (SLA, retention,
        sources)."""
        from decisionops.agent.housekeeping import default_housekeeping
        from decisionops.agent.worker import Worker

        with Worker(self, housekeeping=default_housekeeping(self.settings)) as worker:
            return worker.tick()

    def decision_ids(self, prediction_ids: Sequence[str]) -> list[str]:
        return [decision_id_for(p) for p in prediction_ids]

    def describe(self) -> dict[str, Any]:
        return {"database": self.settings.resolved_database_url,
                "checkpoints": self.settings.resolved_checkpoint_url,
                "enterprise": self.settings.resolved_enterprise_url,
                "planner": self.settings.planner, "durability": self.settings.durability}


def _decided(before: Acted | None, action: TriageAction, now: datetime,
             observed: datetime) -> Acted:
    """``before`` with one more reading decided (acted on now, or held out)."""
    before = before or Acted(None, None, None)

    def newest(at: datetime | None) -> datetime:
        return observed if at is None else max(at, observed)

    if action == TriageAction.ACT:
        return Acted(now, newest(before.observed), before.held)
    return Acted(before.at, before.observed, newest(before.held))


def _keep_in_force(settings: Settings) -> None:
    """Keep a copy of the functions file a process has just taken up (it loaded and
    passed the start checks) in the data folder: the policies commands fall back to
    while the file does not load (``Runtime(in_force=True)``). Replaced atomically;
    unchanged when it says the same; nothing for the bundled file (it always loads)."""
    path = settings.functions_file
    if path is None:
        return
    kept = settings.home / IN_FORCE_FILE
    try:
        text = Path(path).read_bytes()
        if kept.is_file() and kept.read_bytes() == text:
            return
        tmp = kept.with_name(f".{os.getpid()}.{IN_FORCE_FILE}")
        tmp.write_bytes(text)
        try:  # the file read now may be a newer one than the one taken up: it must load
            load_policies(tmp)
        except ConfigError:
            tmp.unlink()
            return
        os.replace(tmp, kept)
    except OSError as exc:  # a read-only folder: the fallback is not kept, nothing else
        _log.debug("the policies in force were not kept in %s: %s", kept, exc)


def _stamp(path: Any) -> tuple[int, int, int] | None:
    """What changes when a file is edited or replaced (None: no file, or unreadable)."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino
