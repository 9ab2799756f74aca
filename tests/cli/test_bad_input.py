"""Bad input at the command line: a clear message naming the field or option, exit
code 2, and nothing changed in the store."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.cli.conftest import Cli
from tests.cli.test_cross_process import HEADER, ROW

pytestmark = pytest.mark.slow


def _snapshot(cli: Cli) -> tuple:
    with sqlite3.connect(cli.cwd / "home" / "decisionops.sqlite") as conn:
        return (conn.execute("select count(*), max(seq) from ledger").fetchone(),
                conn.execute("select count(*) from predictions").fetchone(),
                conn.execute("select id, status from approvals order by id").fetchall(),
                conn.execute("select id, status from decisions order by id").fetchall())


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """One data folder for every case: each case must leave it exactly as it was."""
    return Cli(tmp_path_factory.mktemp("bad-input"))


@pytest.fixture(scope="module")
def waiting(shared: Cli) -> dict[str, dict]:
    """A decision waiting on sales and finance."""
    path = shared.cwd / "p.csv"
    path.write_text(HEADER + ROW.format(id="p-1", account="ACC-10004", value=40000))
    for name, function in (("dana@finance", "finance"), ("raj@sales", "sales")):
        shared("users", "add", name, "--role", "approver", "--function", function)
    shared("ingest", str(path))
    shared("run", "--once")
    return {a["function"]: a for a in shared.json("approvals", "list")}


@pytest.mark.parametrize(("args", "message"), [
    (["approvals", "approve", "apr_nope", "--as", "dana@finance"], "no approval 'apr_nope'"),
    (["approvals", "approve", "{finance}", "--as", "nobody"], "--as: 'nobody' is not a "
     "registered user"),
    (["approvals", "edit", "{finance}", "--as", "dana@finance", "--set",
      "step.goodwill_credit.amount=900"], "amount: 900 is over the limit of 500"),
    (["approvals", "edit", "{finance}", "--as", "dana@finance", "--set",
      "step.goodwill_credit.amount=lots"], "--set step.goodwill_credit.amount:"),
    (["approvals", "edit", "{finance}", "--as", "dana@finance", "--set",
      "step.goodwill_credit.account_id=ACC-10005"],
     "--set step.goodwill_credit.account_id: account_id is locked"),
    (["approvals", "edit", "{finance}", "--as", "dana@finance", "--set",
      "step.retention_offer.discount_pct=5"], "not part of this approval"),
    (["approvals", "edit", "{finance}", "--as", "dana@finance", "--set", "amount=5"],
     "--set: 'amount=5' must look like step.<step_id>.<argument>=<value>"),
    (["approvals", "reject", "{sales}", "--as", "raj@sales", "--reason", "  "],
     "--reason: must not be empty"),
    # as long as over the API (trial 23: 2001 characters were stored, 10001 a traceback)
    (["approvals", "approve", "{finance}", "--as", "dana@finance", "--comment", "c" * 2001],
     "--comment: String should have at most 2000 characters"),
    (["approvals", "edit", "{finance}", "--as", "dana@finance", "--set",
      "step.goodwill_credit.amount=150", "--comment", "c" * 10_001],
     "--comment: String should have at most 2000 characters"),
    (["approvals", "list", "--status", "maybe"], "--status: 'maybe' is not one of"),
    (["decisions", "show", "dec_nope"], "no decision 'dec_nope'"),
    (["decisions", "list", "--status", "lost"], "--status: 'lost' is not one of"),
    (["ingest", "{bad}"], "the header lacks"),
    (["ingest", "{good}", "--format", "xml"], "--format: 'xml' is not one of"),
    (["ingest", "{good}", "--format", "mlflow"], "response: not valid JSON"),
    (["ingest", "{good}", "--inputs", "{good}"], "--inputs: joins a model-server response"),
    # a CSV export that came out empty (its job failed) is not "no predictions today"
    (["ingest", "{empty}"], "empty.csv: header: the file is empty"),
    # one pass runs in this process (trial: --workers 2 was silently ignored)
    (["run", "--once", "--workers", "2"], "--workers: one pass (--once) runs in this process"),
    # an option where a value belongs is a typo, not the value (trial 19: the hold was
    # placed, its reason "--json")
    (["approvals", "reject", "{sales}", "--reason", "--as", "raj@sales"],
     "--reason needs a value: '--as' is an option of this command"),
    (["holds", "add", "ACC-10004", "--until", "--reason", "x"],
     "--until needs a value: '--reason' is an option"),
])
def test_bad_input_is_refused_naming_the_field_and_changes_nothing(
        shared: Cli, waiting: dict[str, dict], args: list[str], message: str) -> None:
    cli = shared
    (cli.cwd / "bad.csv").write_text("id,score\nx,0.5\n")
    (cli.cwd / "good.csv").write_text(HEADER + ROW.format(id="p-2", account="ACC-10005",
                                                          value=1))
    (cli.cwd / "empty.csv").write_text("\n \n")
    files = {"bad": str(cli.cwd / "bad.csv"), "good": str(cli.cwd / "good.csv"),
             "empty": str(cli.cwd / "empty.csv")}
    concrete = [a.format(finance=waiting["finance"]["id"], sales=waiting["sales"]["id"],
                         **files) for a in args]
    before = _snapshot(cli)
    out = cli(*concrete, code=2)
    assert message in " ".join(out.stderr.split()), out.stderr
    assert "Traceback" not in out.stderr
    assert _snapshot(cli) == before


def test_an_answer_from_someone_not_allowed_is_refused_recorded_and_changes_nothing_else(
        shared: Cli, waiting: dict[str, dict]) -> None:
    cli = shared
    before = _snapshot(cli)
    out = cli("approvals", "approve", waiting["finance"]["id"], "--as", "raj@sales", code=2)
    assert "raj@sales approves sales, not finance" in " ".join(out.stderr.split())
    after = _snapshot(cli)
    assert after[1:] == before[1:]  # predictions, approvals, decisions as they were
    refusal = cli.json("ledger", "list")[-1]
    assert (refusal["event"], refusal["actor"], refusal["body"]["reason"]) == (
        "approval.refused", "raj@sales", "wrong_function")


def test_bad_settings_name_the_setting(cli: Cli) -> None:
    out = cli("approvals", "list", code=2, env={"DECISIONOPS_MAX_REPLANS": "many"})
    assert "settings: max_replans" in out.stderr
    # the variable itself (trial 32 #10: "from DECISIONOPS_* or decisionops.toml")
    assert "DECISIONOPS_MAX_REPLANS, or max_replans in decisionops.toml" in " ".join(
        out.stderr.split())


@pytest.mark.parametrize(("args", "code", "field", "message"), [
    # refused by the command
    (["approvals", "list", "--status", "maybe"], "invalid_input", "--status",
     "'maybe' is not one of"),
    (["decisions", "show", "dec_nope"], "not_found", "decision_id", "no decision 'dec_nope'"),
    (["predictions", "show", "nope"], "not_found", "prediction_id", "no prediction 'nope'"),
    # as every unknown id (trial 25: invalid_input, no field)
    (["plan", "preview", "nope"], "not_found", "prediction_id", "no prediction 'nope'"),
    (["plan", "explain", "dec_nope"], "not_found", "decision_id", "no decision 'dec_nope'"),
    (["decisions", "list", "--status", "lost"], "invalid_input", "--status",
     "'lost' is not one of"),
    (["ingest", "{bad}"], "invalid_input", "header", "the header lacks"),
    (["ingest", "{good}", "--format", "xml"], "invalid_input", "--format", "'xml' is not one of"),
    (["ingest", "{empty}", "--format", "csv"], "invalid_input", "header", "the file is empty"),
    # a value the service refuses is named by the option it came in (trial 17 F8: "role")
    (["users", "add", "x1", "--role", "superuser"], "invalid_input", "--role",
     "--role: 'superuser' is not one of"),
    (["approvals", "list", "--function=finanse"], "not_found", "--function",
     "unknown function 'finanse'"),
    # refused by the parser, before the command runs
    (["approvals", "list", "--bogus"], "bad_request", "--bogus", "No such option: --bogus"),
    (["ingest", "{good}", "--max-rows", "many"], "bad_request", "--max-rows", "valid integer"),
    # a mapping file is input too: named as every refusal is (trial 22: bad_request and no
    # field for an unknown key, neither field nor location for a YAML error)
    (["ingest", "{good}", "--mapping", "{unknown_key}"], "invalid_input", "bogus_field",
     "bogus_field: Extra inputs are not permitted"),
    (["ingest", "{good}", "--mapping", "{not_yaml}"], "invalid_input", "--mapping",
     "not a valid yaml file"),
    (["ingest"], "bad_request", "PATH", "Missing argument 'path'"),
    (["decisions", "show", "a", "b"], "bad_request", None, "unexpected extra argument"),
    (["holds", "add", "ACC-10004", "--until", "+1d", "--reason"], "bad_request", "--reason",
     "--reason needs a value: '--json' is an option of this command"),
])
def test_with_json_every_refusal_is_a_json_error_on_stdout_and_changes_nothing(
        shared: Cli, waiting: dict[str, dict], args: list[str], code: str,
        field: str | None, message: str) -> None:
    # A script that asked for --json reads one JSON document from stdout, whether the
    # command line, the parser or the command refused it: code, message, the option.
    cli = shared
    (cli.cwd / "bad.csv").write_text("id,score\nx,0.5\n")
    (cli.cwd / "good.csv").write_text(HEADER + ROW.format(id="p-2", account="ACC-10005",
                                                          value=1))
    (cli.cwd / "empty.csv").write_bytes(b"")
    (cli.cwd / "unknown.json").write_text('{"entity_id": "customer_id", "bogus_field": "x"}')
    (cli.cwd / "broken.yaml").write_text("not: [valid\n")
    concrete = [a.format(bad=str(cli.cwd / "bad.csv"), good=str(cli.cwd / "good.csv"),
                         empty=str(cli.cwd / "empty.csv"),
                         unknown_key=str(cli.cwd / "unknown.json"),
                         not_yaml=str(cli.cwd / "broken.yaml")) for a in args]
    before = _snapshot(cli)
    out = cli(*concrete, "--json", code=2)
    error = json.loads(out.stdout)["error"]
    assert message in error["message"], error
    assert error["code"] == code, error
    assert error.get("field") == field, error
    assert out.stderr == ""
    assert _snapshot(cli) == before


@pytest.mark.parametrize(("args", "field", "message"), [
    (["holds", "add", "", "--until", "+1d"], "target", "must name an entity"),
    (["holds", "add", "  ", "--until", "+1d"], "target", "must name an entity"),
    # a function or playbook name mistyped would hold an entity nothing is about
    (["holds", "add", "finanse", "--until", "+1d"], "target", "did you mean 'finance'"),
    (["holds", "add", "churn-retentoin", "--until", "+1d"], "target",
     "did you mean 'churn-retention'"),
    # a decision or request id mistyped or unknown (trial 32 #3: a hold on nothing,
    # while its placer believed the decision held)
    (["holds", "add", "dec_7e616809034031c1a00X", "--until", "+1d"], "target",
     "no decision 'dec_7e616809034031c1a00X'"),
    (["holds", "add", "dec_00000000000000000000", "--until", "+1d"], "target",
     "no decision 'dec_00000000000000000000'"),
    (["holds", "add", "apr_0123456789abcdef0123", "--until", "+1d"], "target",
     "hold the decision it asks about"),
    (["holds", "add", "ACC-10004", "--until", "+100000d"], "--until", "at most +3650d"),
    (["holds", "add", "ACC-10004", "--until", "+0h"], "--until", "must be in the future"),
    (["holds", "release", "nothing"], "target", "no active hold on 'nothing'"),
])
def test_holds_refuse_what_would_hold_nothing(shared: Cli, waiting: dict[str, dict],
                                              args: list[str], field: str, message: str
                                              ) -> None:
    before = _snapshot(shared)
    error = json.loads(shared(*args, "--json", code=2).stdout)["error"]
    assert message in error["message"] and error.get("field") == field, error
    assert _snapshot(shared) == before
    assert shared.json("holds", "list") == []
