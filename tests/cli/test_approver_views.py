"""What an approver reads at the command line: the approvals table fits 100 columns with
entity, amount, expected value and age, ids whole; ``decisions show`` puts the proposed,
approved (edited) and executed arguments of each step side by side."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Cli
from tests.cli.test_cross_process import HEADER, ROW

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    cli = Cli(tmp_path_factory.mktemp("approver-views"))
    path = cli.cwd / "p.csv"
    path.write_text(HEADER + ROW.format(id="p-1", account="ACC-10004", value=40000)
                    + ROW.format(id="p-2", account="ACC-10001", value=25000))
    cli.approvers("dana@finance", "raj@sales")
    cli("ingest", str(path))
    cli("run", "--once")
    return cli


def test_approvals_table_fits_100_columns_with_whole_ids(shared: Cli) -> None:
    rows = shared.json("approvals", "list")
    assert len(rows) == 4
    out = shared("approvals", "list", env={"COLUMNS": "100"}).stdout
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100, out
    header = next(line for line in lines if "id" in line.split())
    for column in ("entity", "amount", "exp. value", "age", "why asked"):
        assert column in header, header
    for row in rows:
        line = next((line for line in lines if row["id"] in line), None)
        assert line is not None, f"{row['id']} not whole in:\n{out}"
        assert row["entity_id"] in line
    finance = next(line for line in lines if rows[[r["function"] for r in rows].index(
        "finance")]["id"] in line)
    assert "200 EUR" in finance and "36,400" in finance  # the credit; 0.91 x 40,000
    assert "…" in out  # the free text is cut, not wrapped
    every = shared("approvals", "list", "--status", "all", env={"COLUMNS": "100"}).stdout
    assert max(len(line) for line in every.splitlines()) <= 100, every
    assert "status: why asked" in every and "auto_approved: " in every
    assert all(row["id"] in every for row in shared.json("approvals", "list", "--status", "all"))


def test_approvals_json_keeps_its_fields_and_adds_the_table_columns(shared: Cli) -> None:
    rows = shared.json("approvals", "list", "--function", "finance")
    finance = next(r for r in rows if r["entity_id"] == "ACC-10004")
    for key in ("id", "decision_id", "function", "status", "reason", "request", "deadline",
                "requested_at", "plan_hash", "plan_version"):
        assert key in finance
    assert finance["amount"] == 200 and finance["currency"] == "EUR"
    assert finance["expected_value"] == pytest.approx(36_400)
    assert finance["age_seconds"] >= 0


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, str]:
    """A decision whose finance credit was edited from 200 down to 150, then executed."""
    cli = Cli(tmp_path_factory.mktemp("side-by-side"))
    path = cli.cwd / "p.csv"
    path.write_text(HEADER + ROW.format(id="p-1", account="ACC-10004", value=40000))
    cli.approvers("dana@finance", "raj@sales")
    cli("ingest", str(path))
    cli("run", "--once")
    pending = {a["function"]: a for a in cli.json("approvals", "list")}
    cli("approvals", "edit", pending["finance"]["id"], "--as", "dana@finance", "--set",
        "step.goodwill_credit.amount=150")
    cli("approvals", "approve", pending["sales"]["id"], "--as", "raj@sales")
    return cli, pending["finance"]["decision_id"]


def test_decisions_show_puts_proposed_approved_and_executed_side_by_side(
        executed: tuple[Cli, str]) -> None:
    cli, decision_id = executed
    shown = cli.json("decisions", "show", decision_id)
    assert shown["decision"]["status"] == "completed"
    steps = {s["step_id"]: s for s in shown["arguments"]}
    credit = steps["goodwill_credit"]
    assert (credit["proposed"]["amount"], credit["approved"]["amount"],
            credit["executed"]["amount"]) == (200, 150, 150)
    assert credit["approval"] == "edited" and credit["execution"] == "succeeded"
    assert credit["edited"] == ["amount"]
    offer = steps["retention_offer"]
    assert offer["proposed"] == offer["approved"] == offer["executed"]
    assert offer["approval"] == "approved" and offer["edited"] == []
    assert steps["proactive_case"]["approval"] == "auto_approved"
    for key in ("plan", "steps", "approvals", "executions", "ledger"):  # as before
        assert key in shown

    text = cli("decisions", "show", decision_id, env={"COLUMNS": "120"}).stdout
    row = next(line for line in text.splitlines()
               if "amount" in line and "200" in line and "150" in line)
    assert row.index("200") < row.index("150")  # proposed, then approved and executed
    assert row.count("150") == 2 and "edited" in row
    # the approvals list says the amount approved, not the one proposed
    (edited,) = cli.json("approvals", "list", "--status", "edited")
    assert (edited["amount"], edited["currency"]) == (150, "EUR")
