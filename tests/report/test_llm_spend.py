"""The report shows LLM spend: tokens and cost per model for the period, and the daily
spend cap setting beside today's use of it (counted as the planners' meter counts it),
in the text, HTML and JSON forms."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from decisionops.agent.llm import spend_today
from decisionops.agent.models import utcnow
from decisionops.agent.report import build_report

from .conftest import InProcessCli, World


def _calls(world: World) -> datetime:
    """Calls by two models: two today, one five days ago, one before the period."""
    now = utcnow()
    today = datetime.combine(now.date(), datetime.min.time(), tzinfo=UTC)
    rows = [("gpt-large", 1000, 200, 0.012, today + timedelta(seconds=1)),
            ("gpt-large", 500, 100, 0.006, today - timedelta(days=5)),
            ("local-llama", 3000, 900, 0.0, today + timedelta(seconds=2)),
            ("gpt-large", 9999, 9999, 9.0, today - timedelta(days=60))]
    for m, i, o, c, at in rows:
        world.store.llm.record_llm_call(decision_id=None, plan_version=None, purpose="plan",
                                        model=m, prompt_version=None, tokens_in=i,
                                        tokens_out=o, cost=c, latency_ms=None, outcome="ok",
                                        at=at)
    return now


def test_json_has_tokens_and_cost_per_model_and_the_cap(cli: InProcessCli, home_world: World,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _calls(home_world)
    monkeypatch.setenv("DECISIONOPS_LLM_DAILY_SPEND_CAP", "0.05")
    llm = json.loads(cli("report", "--since", "30d", "--json").stdout)["llm"]
    models = {m["model"]: m for m in llm["by_model"]}
    assert set(models) == {"gpt-large", "local-llama"}  # the 60-day-old call is outside
    assert (models["gpt-large"]["tokens_in"], models["gpt-large"]["tokens_out"]) == (1500, 300)
    assert models["gpt-large"]["cost"] == pytest.approx(0.018)
    assert models["local-llama"]["calls"] == 1
    assert llm["daily_spend_cap"] == 0.05
    assert llm["spent_today"] == pytest.approx(0.012)
    assert llm["spent_today"] == pytest.approx(spend_today(home_world.store.llm, utcnow()))
    assert llm["cap_used"] == pytest.approx(0.24)


def test_text_and_html_show_spend_and_cap(cli: InProcessCli, home_world: World,
                                          monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    _calls(home_world)
    monkeypatch.setenv("DECISIONOPS_LLM_DAILY_SPEND_CAP", "0.05")
    text = cli("report", "--since", "30d", "--text").stdout
    assert not list(tmp_path.glob("*.html"))  # --text alone writes nothing
    large = next(line for line in text.splitlines() if line.startswith("gpt-large"))
    assert large.split() == ["gpt-large", "2", "1500", "300", "0.0180"]
    assert "LLM spend: 3 call(s), 5700 tokens, cost 0.0180" in text
    assert "0.0120 spent today" in text and "daily spend cap of 0.05" in text
    assert "24.0% used" in text

    proc = cli("report", "--since", "30d", "--out", "r.html")
    assert "daily spend cap of 0.05" in proc.stdout
    html = (tmp_path / "r.html").read_text()
    assert "local-llama" in html and "daily spend cap of 0.05 (llm_daily_spend_cap)" in html


def test_a_reached_cap_and_no_cap_are_said(world: World) -> None:
    _calls(world)
    reached = build_report(world.store, since=utcnow() - timedelta(days=1),
                           daily_spend_cap=0.01).llm
    assert reached.cap_used == pytest.approx(1.2)
    assert "reached: LLM planners fall back" in reached.cap_summary()
    none = build_report(world.store, since=utcnow() - timedelta(days=1)).llm
    assert none.cap_used is None and "no daily spend cap" in none.cap_summary()


def test_text_and_json_together_are_refused(cli: InProcessCli, home_world: World) -> None:
    proc = cli("report", "--text", "--json", code=2)
    # asked for --json: the refusal is JSON on stdout, naming the option
    assert json.loads(proc.stdout)["error"]["field"] == "--text"
