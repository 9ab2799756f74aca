"""The ``decisionops`` command (its real entry point, in this process; one test in a
subprocess): outcomes import/add/list, report and export; bad input exits 2, names the
option and changes nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from decisionops.agent.models import decision_id_for

from .conftest import T0, Cli, InProcessCli, World


@pytest.fixture
def populated(home_world: World) -> World:
    world = home_world
    for i in range(4):
        world.predict("churn", f"A{i}", T0)
        world.predict("churn", f"C{i}", T0, action="hold")
    return world


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.is_file()}


def test_outcomes_import_reports_unmatched_rows_and_is_idempotent(
        cli: InProcessCli, populated: World, tmp_path: Path) -> None:
    (tmp_path / "outcomes.csv").write_text(
        "kind,entity_id,label,value,observed_at\n"
        "churn,A0,retained,1200,2026-06-20T00:00:00Z\n"
        "churn,NOBODY,retained,5,2026-06-20T00:00:00Z\n"
        "churn,C0,churned,0,2026-06-21T00:00:00Z\n")

    first = json.loads(cli("outcomes", "import", "outcomes.csv", "--json", code=1).stdout)
    again = json.loads(cli("outcomes", "import", "outcomes.csv", "--json", code=1).stdout)

    assert (first["treated"], first["control"]) == (1, 1)
    assert [(u["row"], u["line"], u["field"]) for u in first["unmatched"]] == [
        (2, 3, "entity_id")]
    assert again["recorded"] == [] and sorted(again["duplicates"]) == sorted(first["recorded"])
    text = cli("outcomes", "import", "outcomes.csv", code=1).stdout
    assert "0 recorded" in text and "no churn prediction for entity NOBODY" in text
    listed = json.loads(cli("outcomes", "list", "--arm", "control", "--json").stdout)
    assert [(o["entity_id"], o["decision_id"]) for o in listed] == [("C0", None)]


def test_outcomes_add_and_bad_input(cli: InProcessCli, populated: World) -> None:
    decision = decision_id_for(f"churn-A1-{T0:%Y%m%dT%H%M}")
    before = populated.counts()
    for args, option in [
            (("--decision", decision, "--label", "retained", "--value", "abc"), "--value"),
            (("--decision", decision, "--label", "not a label!"), "--label"),
            (("--decision", "dec_missing", "--label", "retained"), "--decision"),
            (("--decision", decision, "--label", "retained", "--at", "tomorrow"), "--at"),
            (("--label", "retained"), "--decision")]:
        proc = cli("outcomes", "add", *args, code=2)
        assert option in proc.stderr, proc.stderr
    assert populated.counts() == before

    out = json.loads(cli("outcomes", "add", "--decision", decision, "--label", "retained",
                         "--value", "1200", "--at", "2026-06-09T10:00:00Z", "--json").stdout)
    assert out["treated"] == 1 and len(out["recorded"]) == 1
    assert "already recorded" in cli("outcomes", "add", "--decision", decision, "--label",
                                     "retained", "--value", "1200", "--at",
                                     "2026-06-09T10:00:00Z").stdout


def test_report_writes_html_and_pngs_and_json(cli: InProcessCli, populated: World,
                                              tmp_path: Path) -> None:
    from decisionops.agent.report.simulate import simulate_and_record

    simulate_and_record(populated.store, actor="demo", as_of=T0 + timedelta(days=20))

    proc = cli("report", "--since", "2026-01-01", "--out", "value.html")

    assert "simulated" in proc.stdout
    html = (tmp_path / "value.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "data:image/png;base64," in html
    pngs = sorted(p.name for p in tmp_path.glob("value-*.png"))
    assert pngs == sorted(f"value-{c}.png" for c in ("value", "uplift", "approval_latency",
                                                     "tool_success", "llm_cost"))
    files = _files(tmp_path)
    data = json.loads(cli("report", "--since", "400d", "--json").stdout)
    assert _files(tmp_path) == files  # --json alone writes nothing
    assert {u["kind"] for u in data["uplift"]} == {"churn"}
    assert data["outcomes"] == data["simulated_outcomes"] == 8


@pytest.mark.parametrize(("args", "option"), [
    (("--since", "30x"), "--since"),
    (("--since", "2999-01-01"), "--since"),
    (("--out", "no/such/folder/r.html"), "--out"),
    (("--success", "ok!"), "--success"),  # "Not OK" is not_ok, as outcomes spell it
])
def test_report_bad_input_exits_2_names_the_option_and_writes_nothing(
        cli: InProcessCli, populated: World, tmp_path: Path, args: tuple[str, ...], option: str) -> None:
    files, before = _files(tmp_path), populated.counts()
    proc = cli("report", *args, code=2)
    assert f"{option}:" in proc.stderr
    assert _files(tmp_path) == files and populated.counts() == before


def test_export_cli(cli: InProcessCli, populated: World, tmp_path: Path) -> None:
    proc = cli("export", "outcomes", "--format", "xlsx", "--out", "o.xlsx", code=2)
    assert "--format" in proc.stderr and not (tmp_path / "o.xlsx").exists()
    assert "--out" in cli("export", "outcomes", "--out", "o.txt", code=2).stderr

    result = json.loads(cli("export", "outcomes", "--out", "o.csv", "--json").stdout)

    assert result == {"out": "o.csv", "format": "csv", "rows": 8}
    assert (tmp_path / "o.csv").read_text().count("\n") == 9


def test_help_has_examples(cli: InProcessCli) -> None:
    for command in (("outcomes", "import"), ("outcomes", "add"), ("report",),
                    ("export", "outcomes")):
        assert "Example" in cli(*command, "--help").stdout


@pytest.mark.slow
def test_installed_command_exit_codes_in_a_subprocess(cli_process: Cli, populated: World,
                                                      tmp_path: Path) -> None:
    files, before = _files(tmp_path), populated.counts()
    proc = cli_process("report", "--since", "3x", "--out", "r.html", code=2)
    assert "--since:" in proc.stderr
    (tmp_path / "bad.csv").write_text("who,what\nA0,retained\n")
    assert "header" in cli_process("outcomes", "import", "bad.csv", code=2).stderr
    assert _files(tmp_path) == files | {"bad.csv"} and populated.counts() == before


def test_outcomes_as_must_name_a_registered_user_who_records_outcomes(
        cli: InProcessCli, populated: World) -> None:
    """(trial 13: `--as omar@finance` and `--as nobody-registered-xyz` were written to the
    ledger as who recorded the value, where an approval's --as must be a registered user)"""
    cli("users", "add", "olga", "--role", "operator")
    cli("users", "add", "dana@finance", "--role", "approver", "--function", "finance")
    cli("users", "add", "gone", "--role", "ingest")
    cli("users", "revoke", "gone")
    decision = decision_id_for(f"churn-A1-{T0:%Y%m%dT%H%M}")
    add = ("outcomes", "add", "--decision", decision, "--label", "retained", "--value", "5",
           "--at", "2026-06-09T10:00:00Z")
    before = populated.counts()
    for name, why in (("nobody-registered-xyz", "is not a registered user"),
                      ("dana", "dana@finance is an approver; outcomes are recorded by "
                               "operator, ingest, admin users"),
                      ("gone", "is disabled")):
        proc = cli(*add, "--as", name, code=2)
        assert "--as: " in proc.stderr and why in proc.stderr, proc.stderr
    assert populated.counts() == before
    cli(*add, "--as", "olga")
    entry = [e for e in populated.store.ledger.entries() if e.event == "outcome.recorded"][-1]
    assert entry.actor == "olga"
