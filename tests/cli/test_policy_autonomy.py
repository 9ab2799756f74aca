"""``decisionops policy autonomy`` as a new user meets it: finance opts in (3 approvals in
a row by 2 approvers), its approvers answer at the command line, the class is promoted,
the next decision's credit needs nobody, a person revokes it; bad input names the field
and changes nothing; ``--dry-run`` says what opting in would give a function that did not."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml

from tests.cli.conftest import Cli
from tests.cli.test_cross_process import HEADER, ROW

pytestmark = pytest.mark.slow

CREDIT = "finance/churn-retention/goodwill_credit/finance.issue_credit[amount≤256]"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    data = yaml.safe_load((resources.files("decisionops.agent") / "data" / "functions.yaml")
                          .read_text("utf-8"))
    data["functions"]["finance"]["autonomy"] = {"after": 3, "approvers": 2}
    (tmp_path / "functions.yaml").write_text(yaml.safe_dump(data))
    cli = Cli(tmp_path)
    cli.env.update({"DECISIONOPS_FUNCTIONS_FILE": str(tmp_path / "functions.yaml"),
                    "DECISIONOPS_HOLDOUT_SHARE": "0"})
    cli.approvers("dana@finance", "omar@finance", "raj@sales")
    return cli


def _ingest(cli: Cli, first: int, n: int) -> None:
    path = cli.cwd / f"p{first}.csv"
    path.write_text(HEADER + "".join(ROW.format(id=f"p-{i}", account=f"ACC-{10001 + i}",
                                                value=40000) for i in range(first, first + n)))
    cli("ingest", str(path))
    cli("run", "--once")


def _finance_requests(cli: Cli) -> list[str]:
    return [r["id"] for r in cli.json("approvals", "list", "--function", "finance")]


def test_promote_use_and_revoke_from_the_command_line(cli: Cli) -> None:
    _ingest(cli, 0, 3)
    requests = _finance_requests(cli)
    assert len(requests) == 3
    for request, person in zip(requests, ["dana@finance", "omar@finance", "dana@finance"],
                               strict=True):
        cli("approvals", "approve", request, "--as", person)
    (row,) = [r for r in cli.json("policy", "autonomy") if r["class"] == CREDIT]
    assert row["state"] == "promoted" and row["changed_by"] == "autonomy:finance"
    assert row["run"] == 3 and sorted(row["approvers"]) == ["dana@finance", "omar@finance"]
    text = cli("policy", "autonomy", "--function", "finance").stdout
    assert CREDIT in text and "promoted" in text

    _ingest(cli, 3, 1)
    assert _finance_requests(cli) == []  # the new credit needed nobody
    (decision,) = [d for d in cli.json("decisions", "list") if d["entity_id"] == "ACC-10004"]
    shown = cli.json("decisions", "show", decision["id"])
    (finance,) = [a for a in shown["approvals"] if a["function"] == "finance"]
    assert finance["approver"] == "autonomy:finance"
    assert "earned autonomy" in cli("decisions", "show", decision["id"]).stdout

    # Bad input: named, nothing changed.
    assert "--as" in cli("policy", "autonomy", "revoke", CREDIT, "--as", "nobody",
                         code=2).stderr
    refused = cli("policy", "autonomy", "revoke", CREDIT, "--as", "raj@sales", code=2).stderr
    assert "approvers of finance or an admin" in refused
    assert "class" in cli("policy", "autonomy", "revoke", "finance/nope", "--as",
                          "dana@finance", code=2).stderr
    assert "--after" in cli("policy", "autonomy", "--after", "3", code=2).stderr
    assert "--function" in cli("policy", "autonomy", "--function", "legal", code=2).stderr
    assert [r["state"] for r in cli.json("policy", "autonomy") if r["class"] == CREDIT] == [
        "promoted"]

    revoked = cli.json("policy", "autonomy", "revoke", CREDIT, "--as", "omar@finance",
                       "--reason", "quarter close")
    assert revoked["state"] == "revoked" and revoked["reason"] == "quarter close"
    _ingest(cli, 4, 1)
    assert len(_finance_requests(cli)) == 1  # people again
    events = [e["event"] for e in cli.json("ledger", "list", "--limit", "100000")
              if e["event"].startswith("autonomy.")]
    assert events == ["autonomy.promoted", "autonomy.revoked"]


def test_dry_run_says_what_opting_in_would_give(cli: Cli) -> None:
    _ingest(cli, 0, 3)
    for request in [r["id"] for r in cli.json("approvals", "list", "--function", "sales")]:
        cli("approvals", "approve", request, "--as", "raj@sales")
    dry = cli.json("policy", "autonomy", "--dry-run", "--after", "3")
    assert dry["would_promote"] == []  # sales: one person approved them all
    assert dry["replay"]["requests_answered"] == 3
    cli.approvers("mia@sales")
    _ingest(cli, 3, 1)
    (request,) = [r["id"] for r in cli.json("approvals", "list", "--function", "sales")]
    cli("approvals", "approve", request, "--as", "mia@sales")
    dry = cli.json("policy", "autonomy", "--dry-run", "--after", "3", "--function", "sales")
    promoted = {r["class"].split("[")[0] for r in dry["would_promote"]}
    assert "sales/churn-retention/retention_offer/crm.create_retention_offer" in promoted
    assert all(not r["opted_in"] for r in dry["would_promote"])
    # Four sales requests in the last four weeks; each had two steps, both classes would
    # be promoted: one request a week, counted once.
    assert len(promoted) == 2
    assert dry["requests_per_week_saved"] == 1.0
    text = cli("policy", "autonomy", "--dry-run", "--after", "3").stdout
    assert "would be promoted today" in text and "the record replayed" in text


def test_rebuild_derives_the_record_again(cli: Cli) -> None:
    _ingest(cli, 0, 2)
    for request, person in zip(_finance_requests(cli), ["dana@finance", "omar@finance"],
                               strict=True):
        cli("approvals", "approve", request, "--as", person)
    before = cli.json("policy", "autonomy")
    rebuilt = cli.json("policy", "autonomy", "rebuild")
    assert rebuilt["classes"] == len(before) and rebuilt["class_answers"] >= 2
    assert cli.json("policy", "autonomy") == before
    assert "rebuilt:" in cli("policy", "autonomy", "rebuild").stdout
