"""What the data and the user say is shown as said: a reject reason, a hand-plan
argument or an id typed on the command line that looks like Rich markup (``[/]``,
``[bold red]x[/]``, ``[white on white]hidden[/]``) is printed with its brackets, never
styled, hidden or refused with a markup error; the CLI's own styling still applies."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.cli.test_governance_findings import _users, waiting
from tests.cli.test_hand_plans import _plan_file
from tests.cli.test_predictions import loaded  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow

MARKUP = "closing [/] tag, [bold red]x[/] and [white on white]hidden[/]"
PIECES = ("[/]", "[bold red]x[/]", "[white on white]hidden[/]")


def _literal(text: str) -> None:
    flat = " ".join(text.split())  # a table may fold a long cell onto more lines
    for piece in PIECES:
        assert piece in flat, f"{piece!r} not shown literally in:\n{text}"
    assert "MarkupError" not in text


def test_a_reject_reason_that_looks_like_markup_is_shown_as_written(
        cli: Cli, write: Callable[[str, str], Path]) -> None:
    pending = waiting(cli, write, "dana@finance", "raj@sales")
    sales = pending["sales"]["id"]
    answered = cli("approvals", "reject", sales, "--as", "raj@sales", "--reason", MARKUP)
    assert "MarkupError" not in answered.stdout + answered.stderr
    assert cli.json("approvals", "show", sales)["approval"]["answer"]["reason"] == MARKUP
    decision = pending["sales"]["decision_id"]
    _literal(cli("decisions", "show", decision).stdout)
    _literal(cli("approvals", "show", sales).stdout)
    # the lists do not show the reason; they still print (exit 0)
    assert sales in cli("approvals", "list", "--status", "all").stdout
    assert "approval.rejected" in cli("ledger", "list", "--decision", decision).stdout
    # the CLI's own markup is still markup, not printed as text
    shown = cli("approvals", "show", sales).stdout
    for tag in ("[bold]", "[cyan]", "[yellow]", "[dim]"):
        assert tag not in shown, shown


@pytest.mark.parametrize("command", [
    ("approvals", "approve", "apr_[b]x", "--as", "dana@finance"),
    ("approvals", "reject", "apr_[b]x", "--as", "dana@finance", "--reason", "no"),
    ("approvals", "show", "apr_[b]x[/]"),
    ("decisions", "show", "dec_[white on white]hidden[/]"),
    ("policy", "autonomy", "revoke", "finance/churn-retention/goodwill_credit/"
     "finance.issue_credit[amount≤256]", "--as", "dana@finance"),
])
def test_an_id_refused_is_quoted_as_typed(cli: Cli, command: tuple[str, ...]) -> None:
    _users(cli, "dana@finance")
    typed = next(a for a in command[2:] if "[" in a)
    refused = cli(*command, code=None)
    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr and "MarkupError" not in refused.stderr
    assert refused.stderr.startswith("error: ")
    assert typed in " ".join(refused.stderr.split()), refused.stderr


def test_a_hand_plan_argument_that_looks_like_markup_is_shown_to_its_approver(
        loaded: Cli) -> None:  # noqa: F811
    loaded.approvers("raj@sales", "dana@finance")
    hidden = "goodwill[white on white] -- and wire 480 to IBAN XX -- [/]"
    plan = f"""
- id: credit
  function: finance
  tool: finance.issue_credit
  arguments: {{account_id: ACC-10003, amount: 150, currency: EUR,
              reason: "{hidden} {MARKUP}"}}
"""
    loaded("predictions", "plan", "p-fraud", "--steps", _plan_file(loaded, plan),
           "--as", "olga")
    decision = next(d["id"] for d in loaded.json("decisions", "list")
                    if d["prediction_id"] == "p-fraud")
    (approval,) = [a for a in loaded.json("approvals", "list") if a["decision_id"] == decision]
    shown = loaded("approvals", "show", approval["id"]).stdout
    assert hidden in shown
    _literal(shown)
    _literal(loaded("decisions", "show", decision).stdout)


def test_a_row_refused_at_ingest_is_quoted_as_it_came(cli: Cli) -> None:
    path = cli.cwd / "p.jsonl"
    path.write_text(json.dumps({"id": "p-[/]", "model": "m", "kind": "churn",
                                "entity_type": "account", "entity_id": "ACC-1", "score": 0.9,
                                "observed_at": "2026-11-01T09:00:00Z"}) + "\n")
    refused = cli("ingest", str(path), code=1)
    assert "'p-[/]'" in refused.stderr and "\\[" not in refused.stderr, refused.stderr
    for tag in ("[red]", "[green]", "[dim]"):
        assert tag not in refused.stdout + refused.stderr
