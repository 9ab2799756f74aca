"""The LLM planners wired into the runtime and the decision graph, through the CLI:
``run --planner``, ``plan explain``, a revise whose feedback reaches the model, and
configuration errors that name the field."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from decisionops.agent.cli import main
from decisionops.agent.errors import ConfigError
from decisionops.agent.models import Approve, Revise
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from tests.fakes.openai_server import ScriptedServer, call, completion
from tests.llm.conftest import churn, plan_args
from tests.support import answer

PREDICTION = churn("churn-rt-1", account="ACC-10001", score=0.9, value=40_000)


def _steps(rt: Runtime, feedback_version: bool = False) -> list[dict]:
    plan = rt.playbooks.for_prediction(PREDICTION).draft(PREDICTION, decision_id="x")
    steps = [{"id": s.id, "function": s.function, "tool": s.tool, "arguments": dict(s.arguments),
              "depends_on": list(s.depends_on), "rationale": "r", "expected_cost": 0.0,
              "expected_value": 0.0} for s in plan.steps]
    if feedback_version:
        steps = [s for s in steps if s["id"] != "goodwill_credit"]
    return steps


@pytest.fixture
def env(home: Path, openai_server: ScriptedServer,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    values = {"DECISIONOPS_LLM_BASE_URL": openai_server.url, "DECISIONOPS_LLM_MODEL": "gpt-test",
              "DECISIONOPS_LLM_API_KEY": "sk-runtime-canary", "DECISIONOPS_LLM_MODE": "tools",
              "DECISIONOPS_PLAN_CACHE_TTL_HOURS": "0", "DECISIONOPS_LLM_BACKOFF_SECONDS": "0"}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    yield values
    monkeypatch.delenv("DECISIONOPS_PLANNER", raising=False)


def _cli(*args: str) -> tuple[int, str]:
    """Run ``decisionops`` in this process (so the test's environment applies) as
    ``main`` does: errors become exit codes; output is stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            pytest.raises(SystemExit) as info:
        main(list(args))
    return int(info.value.code or 0), out.getvalue() + err.getvalue()


def test_run_with_the_llm_planner_then_explain_and_revise(
        env: dict[str, str], openai_server: ScriptedServer) -> None:
    with Runtime(Settings()) as rt:
        rt.ingest([PREDICTION], source="test")
        steps = _steps(rt)
    bad = json.loads(json.dumps(steps))
    bad[0]["arguments"]["discount_pct"] = 45
    openai_server.play(completion(tool_calls=[call("submit_plan", plan_args(bad))]),
                       completion(tool_calls=[call("submit_plan", plan_args(steps))]))
    code, out = _cli("run", "--once", "--planner", "llm", "--json")
    assert code == 0, out
    (started,) = json.loads(out)["started"]
    decision = started["decision_id"]
    assert started["status"] == "awaiting_approval"

    code, out = _cli("plan", "explain", decision, "--json")
    assert code == 0, out
    explained = json.loads(out)
    (version,) = explained["versions"]
    assert version["planner"] == "llm" and version["verdict"] == "accepted"
    record = version["record"]
    assert record["prompt_version"].startswith("malformed@1+plan_system@1")
    assert record["llm_calls"] == 2 and record["tokens_in"] > 0 and record["cost"] > 0
    assert record["guard_verdicts"] == [
        ["steps.retention_offer.arguments.discount_pct: 45 is over the limit of 30"]]
    assert len(record["raw_outputs"]) == 2
    assert [c["purpose"] for c in explained["llm_calls"]] == ["plan", "repair"]
    code, text = _cli("plan", "explain", decision)
    text = " ".join(text.split())
    assert code == 0 and "prompt malformed@1" in text and "guard refused draft 1" in text
    assert "cache miss" in text and "reply 2:" in text
    assert "sk-runtime-canary" not in out + text

    # An approver asks for a revision; the feedback and the previous plan reach the model.
    openai_server.play(completion(tool_calls=[call("submit_plan",
                                                   plan_args(_steps(rt, True)))]))
    with Runtime(Settings(planner="llm")) as rt:
        pending = {a.function: a.to_dict() for a in rt.store.approvals.list(decision_id=decision,
                                                                 status="pending")}
        assert set(pending) == {"sales", "finance"}
        answer(rt, pending["finance"]["id"], Approve(), approver_name="dana@finance")
        result = answer(rt, pending["sales"]["id"],
                           Revise(feedback="No credit for this account, please."),
                           approver_name="raj@sales")
        assert result.status == "awaiting_approval"
        assert rt.store.plans.get(decision).version == 2
        assert "goodwill_credit" not in {s.id for s in rt.store.plans.get(decision).steps}
    user = openai_server.requests[-1]["body"]["messages"][1]["content"]
    assert "No credit for this account, please." in user
    assert 'source="previous_plan"' in user and "goodwill_credit" in user


def test_configuration_errors_name_the_field(env: dict[str, str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = _cli("run", "--once", "--planner", "oracle")
    assert code == 2 and "--planner: 'oracle' is not one of playbook, llm, hybrid" in out
    monkeypatch.delenv("DECISIONOPS_LLM_BASE_URL")
    code, out = _cli("run", "--once", "--planner", "hybrid")
    assert code == 2 and "llm_base_url: the hybrid planner needs" in out
    monkeypatch.setenv("DECISIONOPS_LLM_BASE_URL", "https://llm.example.com/v1")
    with Runtime(Settings(planner="llm")) as rt, pytest.raises(
            ConfigError, match=r"llm_base_url: llm\.example\.com is not a loopback"):
        rt.planner  # noqa: B018  (built when first needed)
    monkeypatch.setenv("DECISIONOPS_PLANNER", "llm")
    code, out = _cli("run", "--once")
    assert code == 2 and "llm_base_url: llm.example.com is not a loopback" in out
    # What does not plan still works while the endpoint's settings are wrong (trial 16:
    # an operator could not verify the ledger, list decisions or add a user then).
    for command in (("decisions", "list", "--json"), ("ledger", "verify"),
                    ("users", "add", "ops1", "--role", "operator")):
        code, out = _cli(*command)
        assert code == 0, (command, out)
    monkeypatch.delenv("DECISIONOPS_LLM_BASE_URL")
    code, out = _cli("run", "--once")
    assert code == 2 and "llm_base_url: the llm planner needs" in out
    # serve's worker plans: said before the server starts (it was a start-up traceback)
    code, out = _cli("serve", "--port", "8799")
    assert code == 2 and "llm_base_url: the llm planner needs" in out
    assert "Traceback" not in out
    # An answer the CLI would apply is refused before it is recorded, naming the field;
    # with --no-apply it is recorded (nothing plans).
    monkeypatch.delenv("DECISIONOPS_PLANNER")
    sample = Path(__file__).resolve().parents[2] / "agent" / "data" / "samples" / "churn.csv"
    assert _cli("ingest", str(sample))[0] == 0 and _cli("run", "--once")[0] == 0
    assert _cli("users", "add", "raj@sales", "--role", "approver", "--function", "sales")[0] == 0
    code, out = _cli("approvals", "list", "--json")
    request = next(r for r in json.loads(out) if r["function"] == "sales")
    monkeypatch.setenv("DECISIONOPS_PLANNER", "llm")
    code, out = _cli("approvals", "approve", request["id"], "--as", "raj@sales")
    assert code == 2 and "llm_base_url" in out, out
    with Runtime(Settings()) as rt:
        assert rt.store.approvals.get(request["id"]).status == "pending"
    code, out = _cli("approvals", "approve", request["id"], "--as", "raj@sales", "--no-apply")
    assert code == 0, out
    monkeypatch.delenv("DECISIONOPS_PLANNER")
    code, out = _cli("plan", "explain", "dec_nope")
    assert code == 2 and "no decision 'dec_nope'" in out


def test_explain_shows_the_model_s_drafts_of_a_decision_left_without_a_plan(
        env: dict[str, str], openai_server: ScriptedServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The guard refused every draft and the fallback is a person: no plan is stored, and
    # that is when an operator most needs to see what the model proposed and why it was
    # refused.
    monkeypatch.setenv("DECISIONOPS_LLM_FALLBACK", "human")
    monkeypatch.setenv("DECISIONOPS_LLM_MAX_REPAIRS", "1")
    with Runtime(Settings(planner="llm")) as rt:
        bad = [{**s, "arguments": {**s["arguments"], "amount": 100_000}}
               if s["tool"] == "finance.issue_credit" else s for s in _steps(rt)]
        openai_server.play(*[completion(tool_calls=[call("submit_plan", plan_args(bad))])] * 2)
        rt.ingest([PREDICTION], source="test")
        rt.run_once()
        (decision,) = rt.store.decisions.list()
        assert decision.status.value == "needs_human"
    code, out = _cli("plan", "explain", decision.id, "--json")
    assert code == 0, out
    explained = json.loads(out)
    assert explained["versions"] == [] and len(explained["llm_calls"]) >= 2
    code, text = _cli("plan", "explain", decision.id)
    assert code == 0 and "no plan was stored" in text and "100000" in text.replace(",", ""), text


def test_run_once_says_when_plans_came_from_the_fallback(
        env: dict[str, str], openai_server: ScriptedServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The endpoint answers 500 to every attempt: the pass plans with the playbook, and
    # says so, with the reason, instead of looking like the model planned.
    from tests.fakes.openai_server import error

    monkeypatch.setenv("DECISIONOPS_LLM_MAX_RETRIES", "0")
    with Runtime(Settings()) as rt:
        rt.ingest([PREDICTION], source="test")
    openai_server.play(error(500, "upstream down"))
    code, out = _cli("run", "--once", "--planner", "llm")
    assert code == 0, out
    text = " ".join(out.split())
    assert "1 plan(s) drafted by the fallback, not the model" in text, text
    assert "server error 500" in text and "decisionops plan explain" in text
    openai_server.play(error(500, "upstream down"))
    with Runtime(Settings()) as rt:
        rt.ingest([churn("churn-rt-2", account="ACC-10002")], source="test")
    code, out = _cli("run", "--once", "--planner", "llm", "--json")
    assert code == 0, out
    (fallback,) = json.loads(out)["fallbacks"]
    assert fallback["to"] == "playbook" and fallback["cause"] == "llm_unavailable", fallback
    assert fallback["decision_id"] and "server error 500" in fallback["reason"]
    # With the fallback a person, no plan was drafted: the pass says where it went
    # (found in a trial: "1 plan(s) drafted by the fallback … then human").
    monkeypatch.setenv("DECISIONOPS_LLM_FALLBACK", "human")
    openai_server.play(error(500, "upstream down"))
    with Runtime(Settings()) as rt:
        rt.ingest([churn("churn-rt-3", account="ACC-10003")], source="test")
    code, out = _cli("run", "--once", "--planner", "llm")
    text = " ".join(out.split())
    assert "1 prediction(s) sent to a person, the model unavailable" in text, text
    assert "drafted by the fallback" not in text
