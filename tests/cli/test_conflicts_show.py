"""``decisions show`` lists the other open decisions on the decision's entity."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.cli.conftest import Cli

HEADER = "id,model,kind,entity_type,entity_id,score,value_at_stake,features,observed_at\n"
ROWS = ('c-1,churn-gbm,churn,account,ACC-10004,0.91,40000,'
        '"{""segment"": ""enterprise"", ""plan"": ""scale""}",2026-11-20T08:00:00Z\n'
        'l-1,pay-gbm,late_payment,account,ACC-10004,0.9,20000,'
        '"{""invoice_id"": ""INV-7""}",2026-11-20T08:00:01Z\n')


def test_decisions_show_lists_other_open_decisions_on_the_entity(
        cli: Cli, write: Callable[[str, str], Path]) -> None:
    cli("ingest", str(write("preds.csv", HEADER + ROWS)), "--format", "csv")
    run = cli.json("run", "--once")
    ids = {r["decision_id"] for r in run["started"]}
    assert len(ids) == 2
    shown = {d: cli.json("decisions", "show", d) for d in ids}
    late = next(d for d, s in shown.items() if s["decision"]["kind"] == "late_payment")
    churn = next(iter(ids - {late}))
    (related,) = shown[late]["related"]
    assert related["decision_id"] == churn and related["kind"] == "churn"
    assert "sales:retention_offer crm.create_retention_offer" in related["steps"]
    # The late payment's steps are all within auto-approve policy: it ran and finished,
    # so the churn decision (shown after) has no other open decision beside it.
    assert shown[late]["decision"]["status"] == "completed"
    assert shown[churn]["related"] == []
    text = cli("decisions", "show", late).stdout
    assert f"also open on ACC-10004: {churn} churn awaiting_approval" in text


def test_approvals_show_lists_the_open_decisions_beside_the_request(
        cli: Cli, write: Callable[[str, str], Path]) -> None:
    # An operator hold on sales keeps the late payment open while the churn is planned.
    cli("holds", "add", "sales", "--until", "2099-01-01T00:00:00Z", "--reason", "close")
    cli("ingest", str(write("preds.csv", HEADER + ROWS.splitlines(keepends=True)[1])),
        "--format", "csv")
    (late,) = [r["decision_id"] for r in cli.json("run", "--once")["started"]]
    cli("ingest", str(write("more.csv", HEADER + ROWS.splitlines(keepends=True)[0])),
        "--format", "csv")
    cli.json("run", "--once")
    (sales,) = cli.json("approvals", "list", "--function", "sales")
    shown = cli.json("approvals", "show", sales["id"])
    assert [r["decision_id"] for r in shown["approval"]["request"]["related"]] == [late]
    text = cli("approvals", "show", sales["id"]).stdout
    assert f"also open on ACC-10004: {late} late_payment held" in text


def test_an_operator_holds_one_decision_by_its_id_and_releases_it(
        cli: Cli, write: Callable[[str, str], Path]) -> None:
    cli("ingest", str(write("preds.csv", HEADER + ROWS)), "--format", "csv")
    cli("holds", "add", "sales", "--until", "+1d")  # both decisions stop before sales' steps
    run = cli.json("run", "--once")
    late = next(r["decision_id"] for r in run["started"]
                if cli.json("decisions", "show", r["decision_id"])["decision"]["kind"]
                == "late_payment")
    hold = cli.json("holds", "add", late, "--until", "+1d", "--reason", "checking the invoice")
    assert (hold["target_type"], hold["target"]) == ("decision", late)
    cli("holds", "release", "sales")
    cli("run", "--once")
    assert cli.json("decisions", "show", late)["decision"]["status"] != "completed"
    assert cli.json("holds", "release", late)["target"] == late
    cli("run", "--once")
    assert cli.json("decisions", "show", late)["decision"]["status"] == "completed"


def test_decisions_list_says_why_a_decision_needs_a_person(
        cli: Cli, write: Callable[[str, str], Path]) -> None:
    # Found in a black-box trial: the list said needs_human and not why, even 220 wide.
    rows = HEADER + ('s-1,demand,stockout,sku_site,SKU-11253@DC-MILAN,0.95,9000,'
                     '"{}",2026-11-20T08:00:00Z\n')
    cli("ingest", str(write("preds.csv", rows)), "--format", "csv")
    cli("run", "--once")
    (decision,) = cli.json("decisions", "list")
    assert decision["status"] == "needs_human" and "features.sku" in decision["error"]
    table = cli("decisions", "list", env={"COLUMNS": "160"}).stdout
    line = next(x for x in table.splitlines() if decision["id"] in x)
    assert "needs_human" in line and "no valid plan" in line
    narrow = cli("decisions", "list", env={"COLUMNS": "80"}).stdout
    assert decision["id"] in narrow  # the reason gives way first on a narrow terminal
