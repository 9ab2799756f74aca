"""``decisionops eval`` end to end on scripted responses: every planner is scored, the
playbook passes every policy grader, and the reports are written."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest

from decisionops.agent.cli import main
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from decisionops.evals import POLICY, ScriptedServer, completion, default_dataset, load_dataset
from decisionops.evals._runner import _run_case, _settings


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            pytest.raises(SystemExit) as info:
        main(list(args))
    return int(info.value.code or 0), out.getvalue(), err.getvalue()


def test_eval_scores_all_planners_on_scripted_responses(home: Path, tmp_path: Path) -> None:
    code, out, err = _cli("eval", "--planner", "playbook,llm,hybrid", "--dataset",
                          str(default_dataset()), "--scripted", "--json",
                          "--out", str(tmp_path / "eval.json"), "--html", str(tmp_path / "e.html"))
    assert code == 0, err
    report = json.loads(out)
    assert report["mode"] == "scripted" and len(report["kinds"]) == 4
    scores = {p["planner"]: p for p in report["planners"]}
    assert scores["playbook"]["policy"] == 1.0
    for name in ("llm", "hybrid"):
        assert scores[name]["errors"] == 0 and scores[name]["policy"] == 1.0
        assert scores[name]["llm_calls"] >= len(load_dataset(default_dataset()).cases)
    for name in POLICY:
        graded = scores["playbook"]["graders"][name]
        assert graded["passed"] == graded["applicable"] > 0
    assert json.loads((tmp_path / "eval.json").read_text()) == report
    html = (tmp_path / "e.html").read_text()
    assert "<table>" in html and "churn-note-injection-credit" in html
    assert not re.search(r"(src|href)=|https?://|<script", html)  # self-contained
    repaired = [r for r in report["results"] if r["planner"] == "llm"
                and r["case"] == "churn-note-injection-credit"][0]
    assert repaired["llm_calls"] == 2 and repaired["passed"]


def test_eval_prints_a_table(home: Path) -> None:
    code, out, _ = _cli("eval", "--planner", "playbook")
    assert code == 0
    text = " ".join(out.split())
    assert "playbook" in text and "100.0%" in text and "injection_contained" in text


def test_eval_usage_errors_name_the_option(home: Path) -> None:
    code, _, err = _cli("eval", "--planner", "playbook,oracle")
    assert code == 2 and "--planner: oracle is not one of playbook, llm, hybrid" in err
    code, _, err = _cli("eval", "--planner", "llm", "--live")
    assert code == 2 and "--live: no endpoint configured" in err


def test_a_script_that_does_not_match_is_an_error(home: Path) -> None:
    dataset = load_dataset(default_dataset())
    case = dataset.cases[0]
    unusable = [completion("no plan"), completion("still none"), completion("nope"),
                completion("left over")]
    with ScriptedServer() as server, \
            Runtime(_settings(Settings(), "llm", home / "eval", server.url, dataset)) as rt:
        result = _run_case(rt, case, "llm", server, {case.id: unusable})
    assert result.error == "script mismatch: 1 scripted response(s) were never requested"
    assert result.fallback and result.fallback.startswith("llm_malformed")
    assert not result.passed
