"""Benchmark: N decisions through the full DecisionOps loop vs a hand-written LangGraph app
doing the same job, and vs a minimal LangGraph graph.

The hand-written app (``../shared/notes/langgraph_app_baseline.py``, run as it is, in its
own subprocess; see its docstring): per decision it stores the prediction, plans four
steps, interrupts for two functions (sales, finance) and is resumed once per answer,
auto-approves support, executes four idempotent tool inserts and writes a hash-chained
audit row per transition, on SqliteSaver, one request at a time with a commit per step.

The full loop doing that job (``people``): the bundled churn playbook and function
policies (four steps; sales and finance need a person, support is auto-approved), on
predictions without the other runs' 1.5 KB of extra features (the app's carry four
fields), each about another account (the 234 seeded accounts, then copies of them added
to the reference CRM: two open decisions about one account would make the loop re-ask
the second one's approvers once the first changed the account, and a second action on
an account within the churn cooldown is dropped, work the app never does), are ingested
and the worker's ticks start them (each waits on sales and finance); then the sales
approver answers every sales request, one answer per ``ApprovalService.answer`` call
as the CLI records it (``approvals approve … --as raj@sales --no-apply``: the
registered user looked up, then the service's checks and its durable
compare-and-set), and the worker ticks (it finds nothing to apply: a
decision's answers go to its graph once every function it asked has answered); then the
same for finance, whose answers complete each decision's set: one resume leg per
decision feeds both answers, executes the four steps against the reference enterprise
and records the terminal state.
Timed from the ingest to the last decision completed; checked after: every decision
completed, four effects each, the ledger verifies. ``ratio_vs_app`` = its decisions/s
÷ the app's, from interleaved runs (medians).

Full loop (embedded defaults, SQLite everywhere, reference enterprise, a policy that
auto-approves every function): ingest the N predictions (one per account, as above),
then the worker loop's ticks
exactly as ``decisionops run`` makes them (``Worker.tick``: answers, recovery, triage,
one claim batch of new decisions, housekeeping) until every decision has started; for
each one plan, guard, route, approvals recorded, execute every step against the
reference enterprise (idempotency keys, execution ledger before and after each call),
record; every transition in the hash-chained ledger. The per-decision latency is one
decision's run (``DecisionEngine.start``), from its claim to its terminal state.

Minimal graph (the baseline of ../shared/notes/langgraph-crib.md): ingest → plan →
approval (interrupt) → execute on a SqliteSaver file with LangGraph's default
durability; per item one invoke to the interrupt and one resume.

Each configuration runs in its own fresh subprocess (so peak RSS is its own); repetitions
are interleaved. Prints decisions/s, p50/p95 latency per decision, peak RSS and storage
per decision for both, and ends with ``ratio_vs_app: <people rate / app rate>`` and
``ratio: <full-loop rate / minimal-graph rate>``. Without the app's file the bench says so
and prints the minimal-graph ratio alone.

    python bench/decision_loop.py --n 300 --reps 3
"""

from __future__ import annotations

import argparse
import itertools
import json
import operator
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypedDict

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
APP = REPO.parent / "shared" / "notes" / "langgraph_app_baseline.py"
"""The hand-written LangGraph app (not part of this repository; run, never copied)."""
PEOPLE = (("raj@sales", "sales"), ("dana@finance", "finance"))
"""Who answers in the ``people`` run, in this order: the functions the bundled policy
sends to a person for a churn plan (support's part is auto-approved)."""

AUTO_POLICY = """
functions:
{functions}
"""


def _accounts(n: int) -> list[tuple[str, str]]:
    """The account of each of N predictions, with the seeded account it is a copy of:
    the seeded (non-adversarial) accounts first, then copies of them under new ids, so
    no two predictions are about one account (two open decisions on one account, or a
    second action on it within the churn cooldown, is not the app's job)."""
    from decisionops.tools.enterprise import reference_world

    seeded = [a.account_id for a in reference_world().accounts if not a.adversarial]
    return [(seeded[i] if i < len(seeded) else f"ACC-8{i:06d}", seeded[i % len(seeded)])
            for i in range(n)]


def _add_accounts(rt: Any, n: int) -> None:
    """The accounts beyond the seeded ones, added to the reference CRM (copies of a
    seeded account) as another system would add them."""
    rows = {a["account_id"]: a for a in rt.enterprise.rows("accounts")}
    new = [{**rows[template], "account_id": account, "name": f"Bench account {account}"}
           for account, template in _accounts(n) if account not in rows]
    if not new:
        return
    columns = list(new[0])
    with sqlite3.connect(rt.enterprise.url.removeprefix("sqlite:///"), timeout=30) as conn:
        conn.executemany(f"insert into accounts ({', '.join(columns)}) values "
                         f"({', '.join('?' for _ in columns)})",
                         [[row[c] for c in columns] for row in new])


def _predictions(n: int, seed: int = 7, *, payload: bool = True) -> list[dict[str, Any]]:
    """N actionable churn predictions, one per account (``_accounts``); ``payload=False``:
    without the 1.5 KB of extra features (the app's predictions carry id, entity, score
    and value only)."""
    from decisionops.tools.enterprise import reference_world

    rng = random.Random(seed)
    seeded = {a.account_id: a for a in reference_world().accounts}
    observed = datetime(2026, 11, 1, tzinfo=UTC)
    out = []
    for i, (account_id, template) in enumerate(_accounts(n)):
        account = seeded[template]
        out.append({
            "id": f"bench-{i:06d}", "model": "churn-gbm", "model_version": "bench",
            "kind": "churn", "entity_type": "account", "entity_id": account_id,
            "score": round(rng.uniform(0.7, 0.99), 3), "value_at_stake": 30_000 + i,
            "explanation": {"seat_utilization": 0.8, "support_tickets_90d": 0.5,
                            "price_increase_pct": 0.3},
            "features": {"segment": account.segment, "region": account.region,
                         "plan": account.plan, **({"payload": "x" * 1500} if payload else {})},
            "observed_at": observed.isoformat(),
        })
    return out


def _auto_policy_file(folder: Path) -> Path:
    from decisionops.agent.policy import load_policies

    lines = []
    for name, policy in load_policies().functions.items():
        lines.append(f"  {name}:")
        lines.append(f"    approvers: {json.dumps(list(policy.approvers))}")
        lines.append(f"    tools: {json.dumps(list(policy.tools))}")
        lines.append("    auto_approve: {max_risk: high}")
    path = folder / "functions.yaml"
    path.write_text(AUTO_POLICY.format(functions="\n".join(lines)))
    return path


def _dir_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _timed(work: Any, items: list[Any], warmup: int) -> dict[str, Any]:
    """Run ``work`` on the first ``warmup`` items untimed, then on the rest one by one:
    the wall time and each call's latency."""
    for item in items[:warmup]:
        work(item)
    latencies = []
    t0 = time.perf_counter()
    for item in items[warmup:]:
        s = time.perf_counter()
        work(item)
        latencies.append(time.perf_counter() - s)
    return {"wall": time.perf_counter() - t0, "latencies": latencies}


def run_full(n: int, warmup: int, workdir: Path) -> dict[str, Any]:
    from decisionops.agent.housekeeping import default_housekeeping
    from decisionops.agent.models import Prediction
    from decisionops.agent.runtime import Runtime
    from decisionops.agent.settings import Settings
    from decisionops.agent.worker import Worker

    settings = Settings(holdout_share=0, home=workdir / "home", functions_file=_auto_policy_file(workdir))
    items = [Prediction.model_validate(p) for p in _predictions(n + warmup)]
    with Runtime(settings, actor="bench") as rt:
        _add_accounts(rt, n + warmup)
        # The worker exactly as `decisionops run` builds it (rt.run_once builds the same).
        worker = Worker(rt, housekeeping=default_housekeeping(settings))
        rt.ingest(items[:warmup], source="bench-warmup")
        _tick_until(worker, "started", warmup)
        latencies: list[float] = []
        statuses: dict[str, int] = {}
        start = rt.engine.start

        def timed(claim: Any) -> Any:
            s = time.perf_counter()
            result = start(claim)
            latencies.append(time.perf_counter() - s)
            statuses[result.status] = statuses.get(result.status, 0) + 1
            return result

        rt.engine.start = timed  # type: ignore[method-assign]
        t0 = time.perf_counter()
        ticks = 0
        # The loop's ticks as `decisionops run` makes them: each applies answers, carries
        # on stalled decisions, triages, claims and starts one batch, runs housekeeping.
        rt.ingest(items[warmup:], source="bench")
        ticks += _tick_until(worker, "started", n)
        wall = time.perf_counter() - t0
        assert len(latencies) == n, (len(latencies), n)
        effects = len(rt.enterprise.effects())
    storage = _dir_bytes(workdir / "home")
    return {"wall": wall, "latencies": latencies, "statuses": statuses, "ticks": ticks,
            "overhead_seconds": wall - sum(latencies),
            "effects": effects, "storage_bytes": storage, "items": n + warmup,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_people(n: int, warmup: int, workdir: Path) -> dict[str, Any]:
    """The hand-written app's job through the full loop (see the module docstring)."""
    from decisionops.agent.approvals import Approver
    from decisionops.agent.housekeeping import default_housekeeping
    from decisionops.agent.models import Approve, Prediction
    from decisionops.agent.runtime import Runtime
    from decisionops.agent.settings import Settings
    from decisionops.agent.store import ledger
    from decisionops.agent.worker import Worker

    # The bundled playbooks and function policies, as `decisionops run` uses them; the
    # predictions as small as the app's (no extra payload: the same input, not more).
    settings = Settings(holdout_share=0, home=workdir / "home")
    items = [Prediction.model_validate(p) for p in _predictions(n + warmup, payload=False)]
    with Runtime(settings, actor="bench") as rt:
        _add_accounts(rt, n + warmup)
        for name, function in PEOPLE:
            rt.store.users.create(name, role="approver", functions=[function], actor="bench")
        worker = Worker(rt, housekeeping=default_housekeeping(settings))
        counts = {"ticks": 0, "answers": 0}

        def approver(name: str) -> Approver:
            # As the CLI resolves `--as NAME` on every answer: the registered user.
            user = rt.store.users.get(name)
            assert user is not None
            return Approver(name=user["name"], role=user["role"],
                            functions=tuple(user["functions"]), channel="cli")

        def run(batch: list[Any], source: str) -> None:
            rt.ingest(batch, source=source)
            counts["ticks"] += _tick_until(worker, "started", len(batch))
            for i, (name, function) in enumerate(PEOPLE):
                # The person's inbox, then one answer at a time.
                pending = rt.store.approvals.list(function=function, status="pending",
                                                  limit=len(batch) + 1)
                assert len(pending) == len(batch), (function, len(pending), len(batch))
                for row in pending:
                    rt.approvals.answer(row.id, Approve(), by=approver(name))
                    counts["answers"] += 1
                # The worker's ticks: a decision's answers are applied once every function
                # it asked has answered (one resume leg per decision, after the last
                # person); before that a tick finds nothing to apply.
                last = i == len(PEOPLE) - 1
                counts["ticks"] += _tick_until(worker, "resumed", len(batch) if last else 0)

        run(items[:warmup], "bench-warmup")
        t0, cpu0 = time.perf_counter(), time.process_time()
        run(items[warmup:], "bench")
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        statuses = rt.store.decisions.counts()
        effects = len(rt.enterprise.effects())
        assert statuses == {"completed": n + warmup}, statuses
        assert effects == 4 * (n + warmup), effects
        verified = ledger.verify(rt.store.engine)
        assert verified.ok, verified.problem
    return {"wall": wall, "cpu": cpu, "latencies": [], "statuses": statuses, "effects": effects,
            "ledger_entries": verified.entries, "storage_bytes": _dir_bytes(workdir / "home"),
            "items": n + warmup, **counts,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _tick_until(worker: Any, counter: str, n: int) -> int:
    """Tick until ``n`` decisions were ``counter`` (started; or resumed: their answers
    applied, counted as ``resumed`` for the batch a tick looks for first and as
    ``recovered`` for the decisions with every answer in that the same tick finds
    next); the ticks it took. Any error in a tick fails the run."""
    done = ticks = 0
    if n == 0:  # one tick, which must find nothing of this kind to do
        report = worker.tick()
        assert not report.errors and not report.resumed + report.recovered, report.summary()
        return 1
    while done < n:
        report = worker.tick()
        ticks += 1
        assert not report.errors, report.summary()
        if not report.did_work:
            raise AssertionError(f"the loop went idle after {done} of {n} {counter}: "
                                 f"{report.summary()}")
        done += report.started if counter == "started" else report.resumed + report.recovered
    assert done == n, (counter, done, n)
    return ticks


def run_app(n: int, workdir: Path) -> dict[str, Any] | None:
    """The hand-written app, run as it is (its own timing: the N decisions, no warm-up);
    None when its file is not there."""
    if not APP.is_file():
        return None
    proc = subprocess.run([sys.executable, str(APP), "--n", str(n), "--dir", str(workdir)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"the app run failed:\n{proc.stderr[-4000:]}")
    out = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    return {"wall": float(out["seconds"]), "latencies": [], "items": int(out["decisions"]),
            "storage_bytes": (float(out["checkpoint_bytes_per_decision"])
                              + float(out["app_bytes_per_decision"])) * int(out["decisions"]),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def run_minimal(n: int, warmup: int, workdir: Path) -> dict[str, Any]:
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Command, interrupt

    class State(TypedDict, total=False):
        prediction: dict
        plan: list
        approved: bool
        results: Annotated[list, operator.add]

    def ingest(state: State) -> dict:
        return {"prediction": state["prediction"]}

    def plan(state: State) -> dict:
        return {"plan": [{"step": "offer", "entity": state["prediction"]["entity_id"]}]}

    def approval(state: State) -> dict:
        return {"approved": bool(interrupt({"plan": state["plan"]}))}

    def execute(state: State) -> dict:
        return {"results": [{"done": s["step"]} for s in state["plan"]]}

    builder = StateGraph(State)
    for name, fn in (("ingest", ingest), ("plan", plan), ("approval", approval),
                     ("execute", execute)):
        builder.add_node(name, fn)
    builder.add_edge(START, "ingest")
    builder.add_edge("ingest", "plan")
    builder.add_edge("plan", "approval")
    builder.add_edge("approval", "execute")
    builder.add_edge("execute", END)
    items = _predictions(n + warmup)
    path = workdir / "checkpoints.sqlite"
    with SqliteSaver.from_conn_string(str(path)) as saver:
        graph = builder.compile(checkpointer=saver)

        def one(item: dict) -> None:
            cfg = {"configurable": {"thread_id": item["id"]}}
            out = graph.invoke({"prediction": item}, cfg)
            graph.invoke(Command(resume={out["__interrupt__"][0].id: True}), cfg)

        timed = _timed(one, items, warmup)
    return {**timed, "storage_bytes": _dir_bytes(workdir), "items": n + warmup,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_shape(n: int, warmup: int, workdir: Path) -> dict[str, Any]:
    """Floor, part 1: LangGraph alone on the full loop's path (plan → guard → route →
    execute → record) with its state schema and state of its size, nodes that do nothing,
    ``durability="exit"`` on a SqliteSaver file: what the graph costs before any work."""
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph

    from decisionops.agent.models import SCHEMA_VERSION
    from decisionops.graphs.state import DecisionState

    plan = {"decision_id": "d", "version": 1, "steps": [
        {"id": f"s{i}", "function": "sales", "tool": "crm.create_task", "risk": "low",
         "arguments": {"account_id": "ACC-1", "subject": "x" * 60}, "depends_on": []}
        for i in range(4)]}
    builder = StateGraph(DecisionState)
    path = ["plan", "guard", "route", "execute", "record"]
    # route's answer is a Resolution (agent.approvals), with the argument sets it approves.
    resolution = {"function": "sales", "status": "auto_approved", "approver": "policy",
                  "approved": {s["id"]: s["arguments"] for s in plan["steps"]}}
    updates = {"plan": {"plan": plan}, "route": {"answers": {"sales": resolution}},
               "record": {"outcome": "completed"}}
    for name in path:
        builder.add_node(name, lambda state, u=updates.get(name, {}): u)
    builder.add_edge(START, path[0])
    for a, b in itertools.pairwise(path):
        builder.add_edge(a, b)
    builder.add_edge(path[-1], END)
    items = _predictions(n + warmup)
    with SqliteSaver.from_conn_string(str(workdir / "checkpoints.sqlite")) as saver:
        graph = builder.compile(checkpointer=saver)

        def one(item: dict) -> None:
            # The first leg's input as DecisionEngine.start builds it.
            graph.invoke({"schema_version": SCHEMA_VERSION, "decision_id": item["id"],
                          "prediction": item, "playbook": "churn", "plan": None,
                          "feedback": [], "answers": {}, "outcome": None, "error": None},
                         {"configurable": {"thread_id": item["id"]}}, durability="exit")

        return _timed(one, items, warmup)


def run_tools(n: int, warmup: int, workdir: Path) -> dict[str, Any]:
    """Floor, part 2: the same decisions' tool calls alone — the guarded playbook plan's
    steps called directly on the reference enterprise with their idempotency keys; no
    store, no ledger, no graph."""
    from decisionops.agent.guard import check_plan
    from decisionops.agent.models import Prediction, decision_id_for
    from decisionops.agent.planner import PlanRequest
    from decisionops.agent.runtime import Runtime
    from decisionops.agent.settings import Settings

    settings = Settings(holdout_share=0, home=workdir / "home", functions_file=_auto_policy_file(workdir))
    with Runtime(settings, actor="bench") as rt:
        _add_accounts(rt, n + warmup)
        predictions = [Prediction.model_validate(p) for p in _predictions(n + warmup)]
        rt.ingest(predictions, source="bench")
        playbooks = {v.prediction_id: v.playbook for v in rt.triage_pending().verdicts}
        plans = []
        for prediction in predictions:
            request = PlanRequest(decision_id=decision_id_for(prediction.id),
                                  prediction=prediction, playbook=playbooks[prediction.id])
            draft = rt.planner.draft(request).plan
            assert draft is not None
            plans.append(check_plan(draft, rt.tools, rt.policies))

        def one(plan: Any) -> None:
            for step in plan.steps:
                rt.tools.call(step.tool, step.arguments,
                              idempotency_key=f"{plan.decision_id}:{step.id}")

        return _timed(one, plans, warmup)


KINDS = ("minimal", "full", "app", "people", "shape", "tools")


def _child(kind: str, n: int, warmup: int) -> dict[str, Any] | None:
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as tmp:
        if kind == "app":
            return run_app(n, Path(tmp))
        fn = {"full": run_full, "minimal": run_minimal, "people": run_people,
              "shape": run_shape, "tools": run_tools}[kind]
        return fn(n, warmup, Path(tmp))


def _spawn(kind: str, n: int, warmup: int) -> dict[str, Any] | None:
    proc = subprocess.run([sys.executable, __file__, "--child", kind, "--n", str(n),
                           "--warmup", str(warmup)], capture_output=True, text=True,
                          cwd=REPO, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="example: python bench/decision_loop.py --n 300 --reps 3")
    parser.add_argument("--n", type=int, default=300, help="decisions per run (default 300)")
    parser.add_argument("--warmup", type=int, default=20,
                        help="decisions run before the timed ones, not timed (default 20)")
    parser.add_argument("--reps", type=int, default=3, help="runs per configuration")
    parser.add_argument("--no-floor", action="store_true",
                        help="skip the two floor measurements (graph shape, tool calls alone)")
    parser.add_argument("--only", default=None,
                        help="comma-separated configurations to run (of "
                             f"{', '.join(KINDS)}); e.g. app,people for ratio_vs_app alone")
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.n < 10 or args.reps < 1 or args.warmup < 0:
        parser.error("--n must be at least 10, --reps at least 1 and --warmup at least 0")
    if args.child:
        print(json.dumps(_child(args.child, args.n, args.warmup)))
        return
    kinds = ["minimal", "full", "app", "people"] + ([] if args.no_floor else ["shape", "tools"])
    if args.only:
        wanted = [k.strip() for k in args.only.split(",") if k.strip()]
        unknown = sorted(set(wanted) - set(KINDS))
        if unknown:
            parser.error(f"--only: unknown configuration(s) {', '.join(unknown)}")
        kinds = [k for k in KINDS if k in wanted]
    if "app" in kinds and not APP.is_file():
        print(f"the hand-written LangGraph app is not at {APP}: no ratio_vs_app in this run",
              file=sys.stderr)
        kinds.remove("app")
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for rep in range(args.reps):
        for kind in kinds:
            print(f"rep {rep + 1}/{args.reps}: {kind} …", file=sys.stderr, flush=True)
            result = _spawn(kind, args.n, args.warmup)
            assert result is not None, kind
            runs[kind].append(result)
    rates = {}
    print(f"\nN = {args.n} decisions per run (+{args.warmup} warm-up; the app: none), "
          f"{args.reps} runs each, interleaved, medians; python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f} at the end\n")
    header = f"{'config':<10}{'dec/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'RSS MB':>9}{'KB/dec':>9}"
    print(header)
    print("-" * len(header))
    for kind in (k for k in ("minimal", "full", "app", "people") if k in kinds):
        rs = runs[kind]
        rate = statistics.median(args.n / r["wall"] for r in rs)
        rates[kind] = rate
        if rs[0]["latencies"]:
            p50 = f"{statistics.median(_pct(r['latencies'], 0.5) for r in rs) * 1000:>9.2f}"
            p95 = f"{statistics.median(_pct(r['latencies'], 0.95) for r in rs) * 1000:>9.2f}"
        else:
            p50 = p95 = f"{'-':>9}"  # one decision has no single latency: it waits on people
        rss = statistics.median(r["peak_rss_mb"] for r in rs)
        kb = statistics.median(r["storage_bytes"] / r["items"] for r in rs) / 1024
        print(f"{kind:<10}{rate:>9.1f}{p50}{p95}{rss:>9.1f}{kb:>9.1f}")
    if "full" in kinds:
        full = runs["full"][-1]
        print(f"\nfull loop per run: {full['effects']} tool effects, decisions "
              f"{full['statuses']}; ingest, triage, claims and housekeeping "
              f"({full['ticks']} ticks) {full['overhead_seconds'] * 1000:.0f} ms (in the rate, "
              "not in the per-decision latencies)")
    if "people" in kinds:
        people = runs["people"][-1]
        print(f"people (the app's job through the loop) per run: {people['answers']} answers "
              f"recorded one at a time, {people['ticks']} ticks, {people['effects']} tool "
              f"effects, decisions {people['statuses']}, ledger verified "
              f"({people['ledger_entries']} entries)")
    if "app" in kinds:
        print(f"app: {APP} (its own figures: decisions/s over its N decisions, no warm-up)")
    if {"shape", "tools", "minimal", "full"} <= set(kinds):
        # Mean milliseconds per decision of each part, and of the minimal graph.
        ms = {kind: statistics.median(r["wall"] / args.n for r in runs[kind]) * 1000
              for kind in kinds}
        floor = ms["shape"] + ms["tools"]
        full = runs["full"][-1]
        print(f"\nfloor per decision: graph shape {ms['shape']:.2f} ms (no-op nodes) + the "
              f"{full['effects'] // (args.n + args.warmup)} tool calls alone {ms['tools']:.2f} ms "
              f"= {floor:.2f} ms, before any store write, ledger entry, plan or check; "
              f"the minimal graph's whole decision: {ms['minimal']:.2f} ms; "
              f"the full loop's: {ms['full']:.2f} ms")
        print(f"floor ratio: {ms['minimal'] / floor:.2f} (what the ratio would be if a decision "
              "did nothing but run the graph and call its tools)")
    print()
    if {"app", "people"} <= set(kinds):
        print(f"ratio_vs_app: {rates['people'] / rates['app']:.2f}")
    if {"minimal", "full"} <= set(kinds):
        print(f"ratio: {rates['full'] / rates['minimal']:.2f}")


if __name__ == "__main__":
    main()
