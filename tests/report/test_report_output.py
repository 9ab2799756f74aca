"""The report is one self-contained HTML file plus its charts as PNG files; values in it
are escaped; the simulator's outcomes are labelled as simulated."""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from decisionops.agent.report import build_report, parse_since, render_html, write_report
from decisionops.agent.report._charts import CHARTS
from decisionops.agent.report.simulate import SIMULATED_NOTE, simulate_and_record, simulate_outcomes
from decisionops.agent.store import _tables as t
from decisionops.agent.store._outcomes import OutcomeSubject

from .conftest import T0, World

PNG = b"\x89PNG\r\n\x1a\n"


def _populate(world: World) -> None:
    for i in range(12):
        world.predict("churn", f"A{i}", T0 + timedelta(hours=i), score=0.6)
    for i in range(6):
        world.predict("churn", f"C{i}", T0 + timedelta(hours=i), action="hold", score=0.6)
    with world.store.transaction() as conn:
        conn.execute(insert(t.llm_calls), [
            {"purpose": "plan", "model": "gpt-test", "tokens_in": 1000, "tokens_out": 200,
             "cost": 0.01, "outcome": "ok", "at": T0 + timedelta(days=d)} for d in (1, 1, 2)])
    simulate_and_record(world.store, actor="demo", seed=3, as_of=T0 + timedelta(days=30))


def test_report_html_is_self_contained_and_pngs_are_written(world: World,
                                                              tmp_path: Path) -> None:
    _populate(world)
    data = build_report(world.store, since=T0, until=T0 + timedelta(days=40))
    out = tmp_path / "report.html"

    files = write_report(data, out)

    html = out.read_text()
    assert files.html == out and set(files.charts) == set(CHARTS)
    for name, path in files.charts.items():
        assert path == tmp_path / f"report-{name}.png"
        png = path.read_bytes()
        assert png.startswith(PNG)
        assert base64.b64encode(png).decode() in html  # the same image, embedded
    # Nothing is fetched from elsewhere: no external src/href, stylesheet, script or font.
    assert not re.search(r"""(src|href)\s*=\s*["']?(?!data:)[a-z]+:""", html, re.I)
    assert not re.search(r"https?://", html)
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert html.count('src="data:image/png;base64,') == len(CHARTS)
    assert "Simulated data:" in html and "18 of the" in html
    assert data.llm.calls == 3 and [d.calls for d in data.llm.by_day] == [2, 1]


def test_values_from_the_store_are_escaped(world: World) -> None:
    _populate(world)
    data = build_report(world.store, since=T0, until=T0 + timedelta(days=40))
    hostile = data.model_copy(update={
        "success_labels": ['<img src=x onerror="alert(1)">'],
        "tools": [data.tools[0].model_copy(update={"tool": "<script>x()</script>"})]
        if data.tools else []})

    html = render_html(hostile, {name: PNG for name in CHARTS})

    assert "<img src=x" not in html and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    assert "<script>" not in html


def test_an_empty_period_still_renders_every_chart(world: World, tmp_path: Path) -> None:
    data = build_report(world.store, since=T0, until=T0 + timedelta(days=1))
    files = write_report(data, tmp_path / "empty.html")
    assert all(p.read_bytes().startswith(PNG) for p in files.charts.values())
    assert "No decisions or outcomes in this period." in files.html.read_text()


def test_simulator_is_deterministic_labelled_and_favours_treated(world: World) -> None:
    world.predict_many([("churn", f"{arm}{i}", T0, "act" if arm == "A" else "hold")
                        for i in range(150) for arm in "AC"], score=0.6)
    subjects = world.store.outcomes.unrecorded_subjects()
    as_of = T0 + timedelta(days=30)

    first = simulate_outcomes(subjects, as_of=as_of, seed=7)
    assert first == simulate_outcomes(subjects, as_of=as_of, seed=7)
    assert first != simulate_outcomes(subjects, as_of=as_of, seed=8)
    assert all(r["note"] == SIMULATED_NOTE for r in first)

    # Treated decisions here are not completed (no graph ran): no treatment effect.
    result = simulate_and_record(world.store, actor="demo", seed=7, as_of=as_of,
                                 treatment_effect=0.0)
    assert result.ok and result.treated == 150 and result.control == 150
    assert result.source == "simulated:seed-7"
    assert simulate_and_record(world.store, actor="demo", seed=7, as_of=as_of).recorded == []


def test_simulated_treatment_effect_shows_as_uplift(world: World) -> None:
    world.predict_many([("churn", f"{arm}{i}", T0, "act" if arm == "A" else "hold")
                        for i in range(200) for arm in "AC"], score=0.6)
    subjects = [s if s.arm == "control" else _completed(s)
                for s in world.store.outcomes.unrecorded_subjects()]
    rows = simulate_outcomes(subjects, as_of=T0 + timedelta(days=30), seed=1,
                             treatment_effect=0.5)
    retained = {"treated": 0, "control": 0}
    for s, r in zip(subjects, rows, strict=True):
        retained[s.arm] += r["label"] == "retained"  # type: ignore[index]
    # P(retained): treated 1 - .6 * .5 = .7, control .4
    assert retained["treated"] > retained["control"] + 30


def _completed(subject: OutcomeSubject) -> OutcomeSubject:
    return replace(subject, decision_status="completed")


def test_since_accepts_periods_and_iso_dates() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert parse_since("7d", now=now) == now - timedelta(days=7)
    assert parse_since("12h", now=now) == now - timedelta(hours=12)
    assert parse_since("2026-11-01", now=now) == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_since("2026-11-01T09:00:00+01:00", now=now) == datetime(2026, 11, 1, 8,
                                                                          tzinfo=UTC)
    for bad in ("30", "3x", "0d", "yesterday", "2027-01-01", ""):
        try:
            parse_since(bad, now=now)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")


def test_the_report_says_how_many_outcomes_it_counts(world: World) -> None:
    """(trial 13: the header said 191 outcomes observed while the tables counted far
    fewer, a prediction's latest, without a word)"""
    from decisionops.agent.models import decision_id_for
    from decisionops.agent.report import record_outcomes, render_text

    p = world.predict("churn", "A1", T0)
    rows = [{"decision_id": decision_id_for(p.id), "label": label, "value_realized": value,
             "observed_at": (T0 + timedelta(days=day)).isoformat()}
            for label, value, day in (("churned", 0, 3), ("retained", 900, 9))]
    assert len(record_outcomes(world.store, rows, source="t", actor="t").recorded) == 2
    data = build_report(world.store, since=T0, until=T0 + timedelta(days=40))
    assert (data.outcomes, data.counted_outcomes) == (2, 1)
    assert "2 outcome(s) observed in the period; 1 counted (a prediction's latest: 1 " \
        "earlier one(s) it superseded)" in render_text(data)
    assert "1 counted" in render_html(data, {name: PNG for name in CHARTS})


def test_latencies_under_ten_seconds_keep_a_decimal() -> None:
    """(trial 13: p50 0.578 s and p95 0.88 s both printed as 1)"""
    from decisionops.agent.report._render import duration

    assert [duration(s) for s in (0.578, 0.88, 9.94, 42, 600, 7200, 200_000, None)] == [
        "0.6 s", "0.9 s", "9.9 s", "42 s", "10 min", "2.0 h", "2.3 d", "-"]
