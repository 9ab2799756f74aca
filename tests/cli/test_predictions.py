"""``decisionops predictions``: every prediction with its outcome and reason, the
needs-a-human queue answered as a registered user, kind aliases at intake, and the
holdout warning; bad input names the option and changes nothing."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.cli.conftest import Cli

ROWS = [
    {"id": "p-act", "kind": "churn", "entity_id": "ACC-10001", "score": 0.91, "value_at_stake": 40000},
    {"id": "p-novalue", "kind": "churn", "entity_id": "ACC-10002", "score": 0.88},
    {"id": "p-fraud", "kind": "fraud", "entity_id": "ACC-10003", "score": 0.96,
     "value_at_stake": 9000},
    {"id": "p-alias", "kind": "customer_attrition", "entity_id": "ACC-10005", "score": 0.9,
     "value_at_stake": 30000},
    {"id": "p-low", "kind": "churn", "entity_id": "ACC-10004", "score": 0.2, "value_at_stake": 1,
     "features": {"tenure": 14, "arr": 52000.5, "segment": "smb"},
     "explanation": {"tenure": -0.4}},
]
ALIASES = {"DECISIONOPS_KIND_ALIASES": json.dumps({"customer_attrition": "churn"})}


@pytest.fixture
def loaded(cli: Cli) -> Cli:
    path = cli.cwd / "p.jsonl"
    path.write_text("".join(json.dumps({"model": "m", "entity_type": "account",
                                        "observed_at": "2026-11-01T09:00:00Z", **r}) + "\n"
                            for r in ROWS))
    cli.env.update(ALIASES)
    cli("ingest", str(path))
    assert "needs a human 2" in cli("run", "--once").stdout
    cli("users", "add", "olga", "--role", "operator")
    return cli


def _snapshot(cli: Cli) -> tuple:
    with sqlite3.connect(cli.cwd / "home" / "decisionops.sqlite") as conn:
        return (conn.execute("select count(*) from ledger").fetchone(),
                conn.execute("select id, triage_action, triage_reason, value_at_stake_supplied "
                             "from predictions order by id").fetchall(),
                conn.execute("select id, status from decisions order by id").fetchall())


def test_list_shows_each_outcome_and_reason(loaded: Cli) -> None:
    rows = {r["id"]: r for r in loaded.json("predictions", "list")}
    assert {i: (r["outcome"], r["reason"]) for i, r in rows.items()} == {
        "p-act": ("act", "act"), "p-novalue": ("needs_human", "missing_value"),
        "p-fraud": ("needs_human", "no_playbook"), "p-alias": ("act", "act"),
        "p-low": ("drop", "below_threshold")}
    assert (rows["p-alias"]["kind"], rows["p-alias"]["kind_as_received"]) == (
        "churn", "customer_attrition")
    assert rows["p-act"]["decision_id"].startswith("dec_")
    assert rows["p-act"]["decision_status"] == "awaiting_approval"
    assert "'fraud'" in rows["p-fraud"]["detail"]
    assert sorted(r["id"] for r in loaded.json("predictions", "list", "--outcome",
                                                "needs_human")) == ["p-fraud", "p-novalue"]
    assert [r["id"] for r in loaded.json("predictions", "list", "--entity", "ACC-10004")] \
        == ["p-low"]
    shown = loaded.json("predictions", "show", "p-novalue")
    assert (shown["outcome"], shown["reason"]) == ("needs_human", "missing_value")
    assert "kind as received: customer_attrition" in loaded("predictions", "show", "p-alias").stdout


def test_show_gives_what_the_model_was_given_and_its_explanation(loaded: Cli) -> None:
    """(trial: stored, but neither show nor --json said what the model was given)"""
    shown = loaded.json("predictions", "show", "p-low")
    assert shown["features"] == {"tenure": 14, "arr": 52000.5, "segment": "smb"}
    assert shown["explanation"] == {"tenure": -0.4}
    text = loaded("predictions", "show", "p-low").stdout
    assert "features: tenure=14, arr=52000.5, segment=smb" in text
    assert "explanation: tenure=-0.4" in text
    assert loaded.json("predictions", "show", "p-act")["features"] is None


def test_tables_fit_100_columns_with_ids_whole(loaded: Cli) -> None:
    for args in (("predictions", "list"), ("predictions", "queue")):
        out = loaded(*args, env={"COLUMNS": "100"}).stdout
        assert max(len(line) for line in out.splitlines()) <= 100
        decisions = [r["decision_id"] for r in loaded.json("predictions", "list")
                     if r["decision_id"]]
        for pid in ("p-fraud", "p-novalue") + (tuple(decisions) if args[1] == "list" else ()):
            assert pid in out


def test_the_queue_is_answered_as_a_registered_user(loaded: Cli) -> None:
    assert [r["id"] for r in loaded.json("predictions", "queue")] == ["p-fraud", "p-novalue"]
    out = loaded("predictions", "pick", "p-fraud", "--playbook", "churn-retention",
                 "--as", "olga").stdout
    assert "decision dec_" in out
    fraud = loaded.json("predictions", "show", "p-fraud")
    assert (fraud["outcome"], fraud["reason"], fraud["decision_status"]) == (
        "act", "picked", "awaiting_approval")
    loaded("predictions", "supply-value", "p-novalue", "--value-at-stake", "20000", "--as", "olga")
    novalue = loaded.json("predictions", "show", "p-novalue")
    assert (novalue["outcome"], novalue["expected_value"], novalue["value_at_stake"]) == (
        "act", 17600, 20000)
    assert loaded.json("predictions", "queue") == []
    entries = [e for e in loaded.json("ledger", "list") if e["event"].startswith("prediction.")]
    assert {(e["event"], e["actor"]) for e in entries} >= {("prediction.picked", "olga"),
                                                           ("prediction.value_supplied", "olga")}


def test_answers_to_the_queue_print_json_for_a_script(loaded: Cli) -> None:
    """(trial 17 F9: pick, plan, supply-value and dismiss took no --json)"""
    picked = loaded.json("predictions", "pick", "p-fraud", "--playbook", "churn-retention",
                         "--as", "olga")
    assert (picked["id"], picked["outcome"], picked["reason"]) == ("p-fraud", "act", "picked")
    assert picked["decision_id"].startswith("dec_") and picked["starts"] is None
    assert picked["decision_status"] == "awaiting_approval"
    supplied = loaded.json("predictions", "supply-value", "p-novalue", "--value-at-stake",
                           "20000", "--as", "olga")
    assert (supplied["outcome"], supplied["value_at_stake"]) == ("act", 20000)
    assert loaded.json("predictions", "show", "p-novalue") == supplied


def test_dismiss_records_who_and_why(loaded: Cli) -> None:
    said = loaded.json("predictions", "dismiss", "p-fraud", "--reason", "test account",
                       "--as", "olga")
    fraud = loaded.json("predictions", "show", "p-fraud")
    assert said == fraud
    assert (fraud["outcome"], fraud["detail"]) == ("drop", "dismissed by olga: test account")


@pytest.mark.parametrize(("args", "says"), [
    (("predictions", "list", "--outcome", "maybe"), "--outcome"),
    (("predictions", "show", "nope"), "prediction_id"),
    (("predictions", "pick", "p-fraud", "--playbook", "nope", "--as", "olga"), "playbook"),
    (("predictions", "pick", "p-fraud", "--playbook", "churn-retention", "--as", "ghost"),
     "--as"),
    (("predictions", "pick", "p-act", "--playbook", "churn-retention", "--as", "olga"),
     "does not need a human"),
    (("predictions", "supply-value", "p-fraud", "--value-at-stake", "5", "--as", "olga"),
     "--value-at-stake: prediction p-fraud does not wait for a value"),
    (("predictions", "supply-value", "p-novalue", "--value-at-stake", "-5", "--as", "olga"),
     "--value-at-stake"),
    (("predictions", "dismiss", "p-fraud", "--reason", " ", "--as", "olga"), "reason"),
])
def test_bad_input_names_the_field_and_changes_nothing(loaded: Cli, args, says) -> None:
    before = _snapshot(loaded)
    proc = loaded(*args, code=2)
    assert says in proc.stderr
    assert _snapshot(loaded) == before


def test_every_command_has_help_with_an_example(cli: Cli) -> None:
    for verb in ("list", "show", "queue", "pick", "supply-value", "dismiss"):
        assert "Example: decisionops predictions" in cli("predictions", verb, "--help").stdout
    # no placeholder the help's markup eats (trial 25: "dismissed by : ")
    assert "dismissed by YOU: REASON" in " ".join(cli("predictions", "dismiss",
                                                      "--help").stdout.split())


def test_a_bad_alias_table_is_a_settings_error_naming_the_field(cli: Cli) -> None:
    proc = cli("predictions", "list", code=2,
               env={"DECISIONOPS_KIND_ALIASES": '{"a": "b", "b": "c"}'})
    assert "kind_aliases" in proc.stderr
    proc = cli("predictions", "list", code=2, env={"DECISIONOPS_KIND_ALIASES": "{not json"})
    assert "kind_aliases" in proc.stderr


def test_holdout_defaults_on_and_zero_warns_that_uplift_cannot_be_measured(cli: Cli) -> None:
    del cli.env["DECISIONOPS_HOLDOUT_SHARE"]
    from decisionops.agent.settings import Settings

    assert Settings.model_fields["holdout_share"].default == 0.05
    assert "uplift" not in cli("run", "--once").stderr
    for args in (("run", "--once"), ("report", "--out", "r.html")):
        proc = cli(*args, env={"DECISIONOPS_HOLDOUT_SHARE": "0"})
        assert "uplift cannot be measured" in proc.stderr
    assert "uplift cannot be measured" in (cli.cwd / "r.html").read_text()
    ran = json.loads(cli("run", "--once", "--json", env={"DECISIONOPS_HOLDOUT_SHARE": "0"}).stdout)
    assert any("uplift cannot be measured" in w for w in ran["warnings"])
    data = json.loads(cli("report", "--json", env={"DECISIONOPS_HOLDOUT_SHARE": "0"}).stdout)
    assert any("uplift cannot be measured" in w for w in data["warnings"])


def test_pick_beside_a_running_loop_leaves_the_start_to_that_loop(loaded: Cli) -> None:
    """One loop per SQLite folder: pick starts the decision itself only when no ``run``
    or ``serve`` loop holds the folder; otherwise it records the answer and that loop
    starts it."""
    from types import SimpleNamespace

    from decisionops.agent.looplock import LoopLock

    conf = SimpleNamespace(home=loaded.cwd / "home", resolved_database_url="sqlite:///x")
    with LoopLock(conf, "serve"):
        out = loaded("predictions", "pick", "p-fraud", "--playbook", "churn-retention",
                     "--as", "olga").stdout
        fraud = loaded.json("predictions", "show", "p-fraud")
        assert (fraud["outcome"], fraud["reason"], fraud["decision_id"]) == (
            "act", "picked", None)
        assert "loop" in out


def test_on_an_80_column_screen_ids_kinds_and_entities_stay_whole(loaded: Cli) -> None:
    # Seen trying it as a new user: at 80 columns the entity was cropped to "ACC-100…"
    # and the kind column vanished from predictions list, and decisions list folded
    # each decision id over three lines.
    views = loaded.json("predictions", "list")
    out = loaded("predictions", "list", env={"COLUMNS": "80"}).stdout
    assert max(len(line) for line in out.splitlines()) <= 80
    for view in views:
        assert view["id"] in out and view["entity_id"] in out and view["kind"] in out
    decisions = loaded.json("decisions", "list")
    assert decisions
    out = loaded("decisions", "list", env={"COLUMNS": "80"}).stdout
    assert max(len(line) for line in out.splitlines()) <= 80
    for d in decisions:
        line = next(line for line in out.splitlines() if d["id"] in line)
        assert d["entity_id"] in line and d["kind"] in line and d["status"] in line
    wide = loaded("decisions", "list", env={"COLUMNS": "140"}).stdout
    assert "updated (UTC)" in wide and "exp. value" in wide
    approvals = loaded.json("approvals", "list")
    assert approvals
    out = loaded("approvals", "list", env={"COLUMNS": "80"}).stdout
    assert max(len(line) for line in out.splitlines()) <= 80
    for a in approvals:
        line = next(line for line in out.splitlines() if a["id"] in line)
        assert a["function"] in line and a["entity_id"] in line
