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


def test_approvals_json_keeps_its_fields_and_adds_the_table_columns(shared: Cli) -> None:
    rows = shared.json("approvals", "list", "--function", "finance")
    finance = next(r for r in rows if r["entity_id"] == "ACC-10004")
    for key in ("id", "decision_id", "function", "status", "reason", "request", "deadline",
                "requested_at", "plan_hash", "plan_version"):
        assert key in finance
    assert finance["amount"] == 200 and finance["currency"] == "EUR"
    assert finance["expected_value"] == pytest.approx(36_400)
    assert finance["age_seconds"] >= 0
