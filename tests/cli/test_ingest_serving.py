"""``decisionops ingest`` of what serving stacks really return: a response of scores,
joined by row order to the scored input (a table or the request), counts in rows, what
triage lacks said before anything is dropped, flag errors said once, exit codes."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest

from tests.cli.conftest import Cli

N = 200
DEFAULTS = ("--kind", "churn", "--model", "churn-sk", "--entity-type", "account")


def _stored(cli: Cli) -> int:
    db = cli.cwd / "home" / "decisionops.sqlite"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute("select count(*) from predictions").fetchone()[0]


@pytest.fixture
def files(cli: Cli) -> dict[str, Path]:
    """A 200-row scoring as a user has it: customers.csv, the MLflow request built from
    it (features only), its response with [n, 2] probabilities, and a KServe V2 one."""
    cwd = cli.cwd
    rows = [{"customer_id": f"ACC-{i:04d}", "tenure": i % 40, "arr": 1000 + 50 * i}
            for i in range(N)]
    with open(cwd / "customers.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    proba = [[round(1 - (i % 10) / 10, 2), round((i % 10) / 10, 2)] for i in range(N)]
    out = {
        "customers": cwd / "customers.csv",
        "request": cwd / "request.json",
        "mlflow": cwd / "mlflow-response.json",
        "v2": cwd / "v2-response.json",
        "v2_request": cwd / "v2-request.json",
        "v1_request": cwd / "v1-request.json",
    }
    out["request"].write_text(json.dumps({"dataframe_split": {
        "columns": ["tenure", "arr"], "data": [[r["tenure"], r["arr"]] for r in rows]}}))
    out["mlflow"].write_text(json.dumps({"predictions": proba}))
    out["v1_request"].write_text(json.dumps({"instances": [[r["tenure"], r["arr"]]
                                                           for r in rows]}))
    out["v2_request"].write_text(json.dumps({"inputs": [
        {"name": "input-0", "shape": [N, 2], "datatype": "FP64",
         "data": [x for r in rows for x in (r["tenure"], r["arr"])]}]}))
    out["v2"].write_text(json.dumps({"model_name": "churn-sk", "id": "infer-1", "outputs": [
        {"name": "predict", "shape": [N], "datatype": "INT64", "data": [i % 2 for i in range(N)]},
        {"name": "predict_proba", "shape": [N, 2], "datatype": "FP64",
         "data": [x for p in proba for x in p]}]}, indent=2))
    return out


@pytest.mark.parametrize("response", ["mlflow", "v2", "bare"])
def test_a_response_joins_the_scored_table_with_auto_detection(cli: Cli, files, response):
    files["bare"] = cli.cwd / "bare.json"  # what older MLflow servers answer
    files["bare"].write_text(json.dumps(json.loads(files["mlflow"].read_text())["predictions"]))
    report = cli.json("ingest", str(files[response]), "--inputs", str(files["customers"]),
                      "--entity-column", "customer_id", "--value-column", "arr", *DEFAULTS)
    assert (report["rows_read"], report["ingested"], report["rejected"]) == (N, N, 0)
    assert report["needs"] == {"unknown_kind": 0, "no_value_at_stake": 0, "no_entity": 0}
    with sqlite3.connect(cli.cwd / "home" / "decisionops.sqlite") as conn:
        payload = json.loads(conn.execute(
            "select payload from predictions where entity_id = 'ACC-0003'").fetchone()[0])
    assert payload["score"] == 0.3 and payload["value_at_stake"] == 1150
    assert payload["features"] == {"tenure": 3, "arr": 1150}


@pytest.mark.parametrize("request_file", ["request", "v1_request", "v2_request"])
def test_the_request_itself_as_inputs_with_index_entities(cli: Cli, files, request_file):
    report = cli.json("ingest", str(files["mlflow"]), "--inputs", str(files[request_file]),
                      "--entity-column", "@index", "--positive-class", "1", *DEFAULTS)
    assert report["ingested"] == N
    assert report["needs"]["no_value_at_stake"] == N  # said, before triage drops anything
    with sqlite3.connect(cli.cwd / "home" / "decisionops.sqlite") as conn:
        ids = {r[0] for r in conn.execute("select entity_id from predictions")}
    assert ids == {str(i) for i in range(N)}


def test_what_triage_lacks_is_said_in_the_text_summary(cli: Cli, files):
    out = cli("ingest", str(files["mlflow"]), "--inputs", str(files["customers"]),
              "--entity-column", "customer_id", "--kind", "fraud", "--model", "m",
              "--entity-type", "account")
    text = " ".join(out.stderr.split())
    assert ("200 rows of a kind no playbook answers, which triage sends to a person "
            "(decisionops playbooks list; or map it: kind_aliases): fraud") in text
    assert "200 ingested" in " ".join(out.stdout.split())


@pytest.mark.parametrize(("args", "message"), [
    (["--inputs", "{customers}"], "--entity-column: no column 'entity_id' in customers.csv"),
    (["--inputs", "{short}", "--entity-column", "customer_id"],
     "--inputs: short.csv has 3 rows but the response has 200 scores"),
    (["--inputs", "{customers}", "--entity-column", "customer_id", "--positive-class", "7"],
     "--positive-class: every row's score failed"),
    (["--inputs", "{customers}", "--entity-column", "customer_id", "--value-column", "acv"],
     "--value-column: no column 'acv' in the inputs"),
    ([], "--inputs: the response carries scores only"),
    (["--inputs", "{customers}", "--entity-column", "customer_id", "--max-rows", "150",
      "--batch-rows", "50"], "200 rows, more than 150"),
])
def test_whole_input_problems_are_said_once_and_store_nothing(cli: Cli, files, args, message):
    short = cli.cwd / "short.csv"
    short.write_text("customer_id,arr\nA,1\nB,2\nC,3\n")
    concrete = [a.format(customers=files["customers"], short=short) for a in args]
    out = cli("ingest", str(files["mlflow"]), *concrete, *DEFAULTS, code=2)
    text = " ".join(out.stderr.split())
    assert text.count(message) == 1, out.stderr
    assert _stored(cli) == 0


def test_a_missing_flag_is_said_once_not_per_row(cli: Cli, files):
    out = cli("ingest", str(files["mlflow"]), "--inputs", str(files["customers"]),
              "--entity-column", "customer_id", "--model", "m", "--entity-type", "account",
              code=2)
    assert " ".join(out.stderr.split()).count("--kind") == 2  # the option, and the advice
    assert out.stderr.count("error:") == 1


def test_a_request_given_as_the_response_is_named(cli: Cli, files):
    out = cli("ingest", str(files["request"]), *DEFAULTS, code=2)
    assert "is a model-server request" in " ".join(out.stderr.split())


def test_rejected_rows_exit_1_counted_in_rows_unless_allowed(cli: Cli, files):
    ids = cli.cwd / "ids.csv"
    ids.write_text("customer_id\n" + "".join(f"ACC-{i}\n" if i % 4 else "\n"
                                             for i in range(N)))
    args = ("ingest", str(files["mlflow"]), "--inputs", str(ids), "--entity-column",
            "customer_id", *DEFAULTS)
    out = cli(*args, code=1)
    summary = " ".join(out.stdout.split())
    assert "200 rows, 150 ingested, 0 already stored, 50 rejected" in summary
    shown = " ".join(out.stderr.split())
    assert "50 rows without an entity id" in shown
    assert shown.count("missing: no entity id") == 1  # 50 rows, one problem: said once
    assert "50 rows (row 1, row 5, row 9, …)" in shown
    report = cli.json(*args, "--allow-rejects")
    assert (report["rows_read"], report["already_stored"], report["rejected"]) == (N, 150, 50)
    assert report["needs"]["no_entity"] == 50


def test_help_documents_inputs_index_and_exit_codes(cli: Cli):
    text = " ".join(cli("ingest", "--help").stdout.split())
    for needle in ("--inputs", "@index", "--value-column", "--positive-class",
                   "--allow-rejects", "Example: decisionops ingest response.json --inputs",
                   "1 rows were rejected"):
        assert needle in text, needle


def test_playbooks_list_shows_kinds_triggers_and_functions(cli: Cli, tmp_path: Path):
    rows = cli.json("playbooks", "list")
    churn = next(r for r in rows if r["kind"] == "churn")
    assert churn["trigger"] == {"min_score": 0.65, "min_expected_value": 1500.0,
                                "cooldown_days": 30.0}
    assert churn["functions"] == ["finance", "sales", "support"]
    assert {r["kind"] for r in rows} >= {"churn", "failure", "late_payment", "stockout"}
    extra = tmp_path / "books"
    extra.mkdir()
    (extra / "fraud.yaml").write_text(
        "name: fraud-review\nkind: fraud\ntrigger: {min_score: 0.9, cooldown_days: 1}\n"
        "steps:\n  - id: review\n    function: support\n    tool: notify.send\n"
        "    arguments: {channel: slack, to: '#fraud', subject: review, body: 'look'}\n")
    env = {"DECISIONOPS_PLAYBOOKS_DIR": str(extra)}
    [fraud] = json.loads(cli("playbooks", "list", "--kind", "fraud", "--json", env=env).stdout)
    assert (fraud["name"], fraud["trigger"]["min_expected_value"], fraud["functions"]) == (
        "fraud-review", 0.0, ["support"])
    table = " ".join(cli("playbooks", "list", env=env).stdout.split())
    assert "fraud-review" in table and "0.90" in table
    out = cli("playbooks", "list", "--kind", "nope", code=2)
    assert "--kind: no playbook answers 'nope'" in " ".join(out.stderr.split())
    assert "Example: decisionops playbooks list" in cli("playbooks", "list", "--help").stdout
    assert all(r["off"] is None for r in rows)  # the bundled policy runs them all


def test_playbooks_list_says_which_bundled_playbooks_the_policy_leaves_off(
        cli: Cli, tmp_path: Path):
    """(trial 12: the bundled churn playbook kept answering churn under a policy with no
    sales or support function, every decision ending needs_human)"""
    functions = tmp_path / "functions.yaml"
    functions.write_text("functions:\n  finance:\n    approvers: [dana@finance]\n"
                         "    tools: [finance.issue_credit]\n")
    env = {"DECISIONOPS_FUNCTIONS_FILE": str(functions)}
    [churn] = json.loads(cli("playbooks", "list", "--kind", "churn", "--json", env=env).stdout)
    assert churn["off"] == "the function policies have no sales, support"
    table = " ".join(cli("playbooks", "list", env=env).stdout.split())
    assert "churn-retention (off)" in table
    assert ("churn-retention is off: the function policies have no sales, support; its "
            "churn predictions wait for a person") in table


def test_request_carrying_the_ids_still_works_with_either_format_name(cli: Cli, files):
    request = cli.cwd / "with-ids.json"
    request.write_text(json.dumps({"inputs": [
        {"name": "entity_id", "shape": [N], "datatype": "BYTES",
         "data": [f"ACC-{i}" for i in range(N)]},
        {"name": "arr", "shape": [N, 1], "datatype": "FP64", "data": [100.0] * N}]}))
    report = cli.json("ingest", str(files["v2"]), "--format", "kserve", "--request",
                      str(request), "--value-column", "arr", *DEFAULTS)
    assert (report["ingested"], report["needs"]["no_value_at_stake"]) == (N, 0)
    again = cli.json("ingest", str(files["v2"]), "--format", "mlflow", "--inputs", str(request),
                     *DEFAULTS)
    assert again["already_stored"] == N  # the same response and ids: the same predictions


def test_the_v2_output_is_named_as_over_http(cli: Cli, files):
    """HTTP's body field is ``output_name``; the CLI takes --output-name (and --output)."""
    base = ("ingest", str(files["v2"]), "--inputs", str(files["customers"]),
            "--entity-column", "customer_id", *DEFAULTS)
    report = cli.json(*base, "--output-name", "predict_proba")
    assert report["ingested"] == N
    assert cli.json(*base, "--output", "predict_proba")["already_stored"] == N
    out = cli(*base, "--output-name", "proba", code=2)
    assert "--output-name: no output named 'proba'" in " ".join(out.stderr.split())
    error = json.loads(cli(*base, "--output-name", "proba", "--json", code=2).stdout)["error"]
    assert error["field"] == "--output-name"
    assert "--output-name" in " ".join(cli("ingest", "--help").stdout.split())


def test_a_response_scored_again_says_how_to_store_the_correction(cli: Cli, files):
    """(trial 22: the ids of a response without ids derive from its body; ingested again
    with the other --positive-class its corrected scores were refused as "send a
    correction under a new id", which a response has no column for.)"""
    args = ["--inputs", str(files["customers"]), "--entity-column", "customer_id",
            "--value-column", "arr", *DEFAULTS]
    cli("ingest", str(files["mlflow"]), *args, "--positive-class", "0")
    again = cli("ingest", str(files["mlflow"]), *args, "--positive-class", "1")
    said = " ".join(again.stderr.split())
    assert "already stored with other content" in said
    assert "score the correction as another model_version" in said
    mapping = cli.cwd / "v2.json"
    mapping.write_text(json.dumps({"defaults": {"model_version": "2"}}))
    report = cli.json("ingest", str(files["mlflow"]), *args, "--positive-class", "1",
                      "--mapping", str(mapping))
    assert report["ingested"] == N


def test_an_empty_file_without_a_header_to_refuse_is_said(cli: Cli):
    """(trial 22: an empty JSON Lines file said "0 rows" as a success, where an empty
    CSV is refused: with no header, a run without predictions looks the same; say it.)"""
    empty = cli.cwd / "empty.jsonl"
    empty.write_text("")
    out = cli("ingest", str(empty))
    assert "empty.jsonl holds no prediction" in " ".join(out.stderr.split())
