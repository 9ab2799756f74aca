"""Benchmark: LLM calls and tokens per 1,000 actionable predictions, with and without
the plan cache, at equal eval scores.

The bundled sample predictions (agent/data/samples) are ingested and triaged by the
playbook rules; the actionable ones are replayed, in order and with fresh ids, until
``--predictions`` plans have been drafted (as successive days would bring the same
kinds of entities again). Each configuration drafts every plan with the LLM planner
against the scripted OpenAI-compatible server, whose responder answers like a careful
model: it submits the playbook plan found in the prompt. Usage is the server's
estimate (prompt characters / 4). Every plan is graded with the eval graders (policy
and quality), so the two runs can be compared at equal scores.

Prints the configurations side by side (without the cache; with it; with it on a
signature that also splits on the top explanation feature, ``--top-features 1``; and
with it for an *outspoken* model, whose rationale names each prediction's largest
driver, so the cache's driver check turns some matches into misses) and
ends with ``ratio: <calls per 1,000 with cache / calls per 1,000 without>`` (the first
two).

    python bench/planner.py --predictions 1000 --planner llm --top-features 0
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from itertools import cycle, islice
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from decisionops.agent.llm._cache import DRIVER_DEPTH  # noqa: E402
from decisionops.agent.models import Prediction, TriageAction  # noqa: E402
from decisionops.agent.planner import PlanRequest  # noqa: E402
from decisionops.agent.runtime import Runtime  # noqa: E402
from decisionops.agent.settings import Settings  # noqa: E402
from decisionops.agent.sources import FieldMapping, read_file  # noqa: E402
from decisionops.evals import POLICY, Case, ScriptedServer, careful_model, grade  # noqa: E402

SAMPLES = REPO / "agent" / "data" / "samples"


def outspoken_model(body: dict[str, Any]) -> dict[str, Any]:
    return careful_model(body, outspoken=True)


def actionable(home: Path) -> list[Prediction]:
    with Runtime(Settings(holdout_share=0, home=home, database_url=None, checkpoint_url=None,
                          enterprise_url=None, planner="playbook")) as rt:
        for name in ("churn.csv", "failure.jsonl", "stockout.csv"):
            batch = read_file(SAMPLES / name, "auto", FieldMapping())
            rt.ingest(batch.predictions, source=f"bench:{name}")
        summary = rt.triage_pending()
        return [rt.store.predictions.get(v.prediction_id) for v in summary.verdicts
                if v.action == TriageAction.ACT]


def stream(predictions: list[Prediction], count: int) -> list[Prediction]:
    out = []
    for index, p in enumerate(islice(cycle(predictions), count)):
        day = index // len(predictions)
        out.append(p.model_copy(update={"id": f"{p.id}~{day}",
                                        "observed_at": p.observed_at + timedelta(days=day)}))
    return out


def run(label: str, predictions: list[Prediction], home: Path, url: str, *, planner: str,
        cache_hours: float, top_features: int) -> dict[str, Any]:
    """Draft a plan for each prediction with the model behind ``url``; totals and scores."""
    settings = Settings(holdout_share=0, home=home, database_url=None, checkpoint_url=None,
                        enterprise_url=None,
                        planner=planner, llm_base_url=url, llm_model="bench-model",
                        llm_api_key=None, llm_mode="tools", llm_backoff_seconds=0.0,
                        llm_daily_spend_cap=None, plan_cache_ttl_hours=cache_hours,
                        plan_cache_top_features=top_features)
    totals = {"label": label, "plans": 0, "calls": 0, "tokens": 0, "cost": 0.0, "hits": 0,
              "fallbacks": 0, "policy": [0, 0], "quality": [0, 0]}
    started = time.monotonic()
    with Runtime(settings, actor="bench") as rt:
        for index, prediction in enumerate(predictions):
            request = PlanRequest(decision_id=f"bench-{index}", prediction=prediction,
                                  playbook=None)
            draft = rt.planner.draft(request)
            record = draft.record
            totals["plans"] += 1
            totals["calls"] += record.llm_calls
            totals["tokens"] += record.tokens_in + record.tokens_out
            totals["cost"] += record.cost
            totals["hits"] += record.cache_hit
            totals["fallbacks"] += record.fallback is not None
            baseline = rt.playbooks.for_prediction(prediction).draft(
                prediction, decision_id=request.decision_id)
            case = Case(id=f"b{index}", prediction=prediction,
                        expect={"functions": baseline.functions(),
                                "tools": sorted({s.tool for s in baseline.steps})})
            for g in grade(case, draft.plan, tools=rt.tools, policies=rt.policies,
                           baseline=baseline):
                if g.passed is not None:
                    family = totals["policy" if g.grader in POLICY else "quality"]
                    family[0] += bool(g.passed)
                    family[1] += 1
    totals["seconds"] = round(time.monotonic() - started, 1)
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--predictions", type=int, default=1000)
    parser.add_argument("--planner", choices=["llm", "hybrid"], default="llm")
    parser.add_argument("--top-features", type=int, default=0,
                        help="explanation features in the cache signature (default 0, as the "
                             "product's default)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="do-bench-") as tmp, \
            ScriptedServer(responder=careful_model) as server, \
            ScriptedServer(responder=outspoken_model) as outspoken:
        base = actionable(Path(tmp) / "triage")
        plans = stream(base, args.predictions)
        configs = [("no cache", server, 0.0, args.top_features),
                   ("plan cache", server, 24.0 * 30, args.top_features)]
        if not args.top_features:
            configs.append(("top driver", server, 24.0 * 30, 1))
        configs.append(("outspoken", outspoken, 24.0 * 30, args.top_features))
        runs = [run(label, plans, Path(tmp) / label.replace(" ", "-"), model.url,
                    planner=args.planner, cache_hours=hours, top_features=top)
                for label, model, hours, top in configs]
    print(f"{len(base)} actionable sample predictions, replayed to {len(plans)}; planner "
          f"{args.planner}; cache signature with {args.top_features} top feature(s)")
    rows = [
        ("plans drafted", lambda r: f"{r['plans']}"),
        ("LLM calls", lambda r: f"{r['calls']}"),
        ("LLM calls per 1,000", lambda r: f"{1000 * r['calls'] / r['plans']:.1f}"),
        ("tokens per 1,000", lambda r: f"{1000 * r['tokens'] / r['plans']:,.0f}"),
        ("cost per 1,000", lambda r: f"{1000 * r['cost'] / r['plans']:.4f}"),
        ("cache hits", lambda r: f"{r['hits']}"),
        ("fallbacks", lambda r: f"{r['fallbacks']}"),
        ("policy score", lambda r: f"{100 * r['policy'][0] / max(1, r['policy'][1]):.1f}%"),
        ("quality score", lambda r: f"{100 * r['quality'][0] / max(1, r['quality'][1]):.1f}%"),
        ("seconds", lambda r: f"{r['seconds']}"),
    ]
    print(f"{'':24}" + "".join(f"{r['label']:>14}" for r in runs))
    for name, value in rows:
        print(f"{name:24}" + "".join(f"{value(r):>14}" for r in runs))
    if not args.top_features:
        print("(top driver: the plan cache with a signature that also splits on the largest "
              "explanation feature, --top-features 1)")
    print("(outspoken: the plan cache, for a model whose rationale names the largest driver; "
          "an entry is reused only where that driver is among the new prediction's top "
          f"{DRIVER_DEPTH})")
    without, with_cache = (1000 * r["calls"] / r["plans"] for r in runs[:2])
    print(f"ratio: {with_cache / without if without else 0.0:.4f}")


if __name__ == "__main__":
    main()
