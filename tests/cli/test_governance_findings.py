"""Issue 11's findings, reproduced through the CLI as a new user (or an attacker) would:
each test is one finding; the promise is that nothing runs that the right people did not
approve, and nothing approved is lost."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli.conftest import Cli

pytestmark = pytest.mark.slow

HEADER = "id,model,kind,entity_type,entity_id,score,value_at_stake,features,observed_at\n"
ROW = ('{id},churn-gbm,churn,account,{account},0.91,{value},'
       '"{{""segment"": ""{segment}"", ""plan"": ""scale""}}",2026-11-20T08:00:00Z\n')
APPROVERS = {"finance": "dana@finance", "sales": "raj@sales", "support": "sam@support",
             "maintenance": "max@maint", "operations": "olu@ops", "supply_chain": "sue@supply"}
SECOND = {"finance": "omar@finance", "sales": "mia@sales"}


def _csv(write: Callable[[str, str], Path], *rows: tuple[str, str, int],
         segment: str = "enterprise") -> Path:
    return write("preds.csv", HEADER + "".join(
        ROW.format(id=i, account=a, value=v, segment=segment) for i, a, v in rows))


def _users(cli: Cli, *names: str) -> None:
    """Register approvers: the CLI answers as a registered user."""
    functions = {name: f for f, name in APPROVERS.items()} | {n: f for f, n in SECOND.items()}
    for name in names:
        cli("users", "add", name, "--role", "approver", "--function", functions[name])


def _policies(tmp: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    bundled = yaml.safe_load((resources.files("decisionops.agent") / "data" / "functions.yaml")
                             .read_text("utf-8"))
    change(bundled["functions"])
    path = tmp / "functions.yaml"
    path.write_text(yaml.safe_dump(bundled))
    return path


def _pending(cli: Cli) -> dict[str, dict[str, Any]]:
    return {a["function"]: a for a in cli.json("approvals", "list")}


def waiting(cli: Cli, write: Callable[[str, str], Path], *users: str
            ) -> dict[str, dict[str, Any]]:
    """``users`` registered, one churn prediction on ACC-10004 planned: its pending
    requests by function."""
    _users(cli, *users)
    cli("ingest", str(_csv(write, ("p-1", "ACC-10004", 40000))))
    cli("run", "--once")
    return _pending(cli)


def _effects(cli: Cli, tool: str | None = None) -> list[tuple[str, str, str]]:
    with sqlite3.connect(cli.cwd / "home" / "enterprise.sqlite") as conn:
        rows = conn.execute("select tool, idempotency_key, arguments_json from tool_calls"
                            ).fetchall()
    return [r for r in rows if tool is None or r[0] == tool]


def _decision(cli: Cli) -> dict[str, Any]:
    (decision,) = cli.json("decisions", "list")
    return cli.json("decisions", "show", decision["id"])


def _run_until_terminal(cli: Cli, times: int = 4) -> dict[str, Any]:
    for _ in range(times):
        cli("run", "--once")
        shown = _decision(cli)
        if shown["decision"]["status"] in ("completed", "rejected", "failed", "compensated",
                                           "needs_human"):
            return shown
    return shown


# ---------------------------------------------------------------------- finding 1


@pytest.mark.parametrize("change", ["account_id=ACC-99999", "currency=USD"])
def test_an_edit_cannot_redirect_an_effect_to_another_target(
        cli: Cli, write: Callable[[str, str], Path], change: str) -> None:
    _users(cli, "dana@finance")
    cli("ingest", str(_csv(write, ("p-1", "ACC-10004", 40000))))
    cli("run", "--once")
    finance = _pending(cli)["finance"]
    before = cli.json("ledger", "list")
    out = cli("approvals", "edit", finance["id"], "--as", "dana@finance",
              "--set", f"step.goodwill_credit.{change}", code=2)
    argument = change.partition("=")[0]
    assert f"step.goodwill_credit.{argument}" in out.stderr
    assert "locked" in out.stderr or "target" in out.stderr
    assert cli.json("approvals", "show", finance["id"])["approval"]["status"] == "pending"
    new = cli.json("ledger", "list")[len(before):]
    assert not [e for e in new if e["event"].startswith("approval.") and
                e["event"] != "approval.refused"]
    # The plan says which arguments are locked.
    shown = cli("approvals", "show", finance["id"]).stdout
    assert "locked" in shown and "account_id" in shown


# ---------------------------------------------------------------------- finding 2


def test_four_eyes_holds_on_the_cli_too(cli: Cli, write: Callable[[str, str], Path],
                                        tmp_path: Path) -> None:
    def four_eyes(functions: dict[str, Any]) -> None:
        functions["finance"]["four_eyes"] = True

    env = {"DECISIONOPS_FUNCTIONS_FILE": str(_policies(tmp_path, four_eyes))}
    cli.env.update(env)
    _users(cli, "dana@finance", "omar@finance", "raj@sales")
    cli("ingest", str(_csv(write, ("p-1", "ACC-10004", 40000))))
    cli("run", "--once")
    pending = _pending(cli)
    finance = pending["finance"]["id"]
    proposed = cli("approvals", "edit", finance, "--as", "dana@finance",
                   "--set", "step.goodwill_credit.amount=150")
    assert "propos" in proposed.stdout
    refused = cli("approvals", "approve", finance, "--as", "dana@finance", code=2)
    assert "four eyes" in refused.stderr
    # omar sees the proposal, and approves exactly it (an approve naming none is refused)
    listed = {a["id"]: a for a in cli.json("approvals", "list")}
    assert listed[finance]["proposed_by"] == "dana@finance"
    assert "edit proposed by dana@finance" in cli("approvals", "list", env={
        "COLUMNS": "250"}).stdout
    shown = cli("approvals", "show", finance).stdout
    assert "edit proposed by dana@finance" in shown and "goodwill_credit.amount" in shown
    proposal = cli.json("approvals", "show", finance)["proposal"]
    assert proposal["proposer"] == "dana@finance" and proposal["hash"] in shown
    blind = cli("approvals", "approve", finance, "--as", "omar@finance", code=2)
    assert "--proposal-hash" in blind.stderr and "dana@finance proposed" in blind.stderr
    cli("approvals", "approve", finance, "--as", "omar@finance",
        "--proposal-hash", proposal["hash"])
    cli("approvals", "approve", pending["sales"]["id"], "--as", "raj@sales")
    shown = _run_until_terminal(cli)
    assert shown["decision"]["status"] == "completed"
    credit = [e for e in shown["executions"] if e["step_id"] == "goodwill_credit"][0]
    assert credit["arguments"]["amount"] == 150
    answer = [a for a in shown["approvals"] if a["function"] == "finance"][0]
    assert answer["approver"] == "omar@finance"


def test_the_cli_answers_only_as_a_registered_approver(
        cli: Cli, write: Callable[[str, str], Path]) -> None:
    cli("ingest", str(_csv(write, ("p-1", "ACC-10004", 40000))))
    cli("run", "--once")
    finance = _pending(cli)["finance"]["id"]
    out = cli("approvals", "approve", finance, "--as", "dana@finance", code=2)
    assert "users add" in out.stderr
    assert cli.json("approvals", "show", finance)["approval"]["status"] == "pending"
    # registered as dana@finance: --as dana names her (as --as's help says)
    _users(cli, "dana@finance")
    cli("approvals", "approve", finance, "--as", "dana", "--no-apply")
    assert cli.json("approvals", "show", finance)["approval"]["approver"] == "dana@finance"
    # registered as omar: --as omar@finance says to answer as omar (trial 28: it advised
    # adding omar@finance, which the one-name rule refuses)
    cli("users", "add", "omar", "--role", "approver", "--function", "finance")
    out = cli("approvals", "approve", finance, "--as", "omar@finance", code=2)
    assert "the registered user 'omar' answers as omar@finance" in " ".join(out.stderr.split())
    assert "--as omar" in out.stderr


def test_production_can_refuse_cli_answers(cli: Cli, write: Callable[[str, str], Path]) -> None:
    _users(cli, "dana@finance")
    cli("ingest", str(_csv(write, ("p-1", "ACC-10004", 40000))))
    cli("run", "--once")
    finance = _pending(cli)["finance"]["id"]
    out = cli("approvals", "approve", finance, "--as", "dana@finance", code=2,
              env={"DECISIONOPS_CLI_ANSWERS": "false"})
    assert "cli_answers" in out.stderr
    assert cli.json("approvals", "show", finance)["approval"]["status"] == "pending"


# ---------------------------------------------------------------------- finding 3


def test_an_expired_request_of_an_on_timeout_approve_function_runs_its_steps(
        cli: Cli, write: Callable[[str, str], Path], tmp_path: Path) -> None:
    def approve_on_timeout(functions: dict[str, Any]) -> None:
        functions["finance"].update(on_timeout="approve", sla_hours=0.0003)  # ~1 s
        functions["sales"]["auto_approve"] = {"max_risk": "high"}

    cli.env["DECISIONOPS_FUNCTIONS_FILE"] = str(_policies(tmp_path, approve_on_timeout))
    cli("ingest", str(_csv(write, ("p-1", "ACC-10004", 40000))))
    cli("run", "--once")
    assert set(_pending(cli)) == {"finance"}
    time.sleep(1.5)
    shown = _run_until_terminal(cli)
    assert shown["decision"]["status"] == "completed", shown["decision"]
    finance = [a for a in shown["approvals"] if a["function"] == "finance"][0]
    assert finance["status"] == "expired"
    credit = [e for e in shown["executions"] if e["step_id"] == "goodwill_credit"][0]
    assert credit["status"] == "succeeded"
    assert len(_effects(cli, "finance.issue_credit")) == 1


# ---------------------------------------------------------------------- finding 4


SPLIT_PLAYBOOK = """
name: churn-retention
kind: churn
version: 1
description: A plan that splits one credit into sub-limit pieces.
trigger: {min_score: 0.5, min_expected_value: 100, cooldown_days: 0}
steps:
""" + "".join(f"""
  - id: credit_{i}
    function: finance
    tool: finance.issue_credit
    risk: medium
    arguments:
      account_id: "{{{{ prediction.entity_id }}}}"
      amount: 90
      currency: EUR
      reason: Goodwill credit part {i}
""" for i in range(4))


def test_splitting_a_credit_under_the_auto_approve_limit_buys_nothing(
        cli: Cli, write: Callable[[str, str], Path], tmp_path: Path) -> None:
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "churn.yaml").write_text(SPLIT_PLAYBOOK)
    cli.env["DECISIONOPS_PLAYBOOKS_DIR"] = str(playbooks)
    _users(cli, "dana@finance")
    cli("ingest", str(_csv(write, ("p-1", "ACC-10004", 40000))))
    cli("run", "--once")
    # Four credits of 90 are 360 in one decision: over finance's auto-approve total.
    assert not _effects(cli, "finance.issue_credit")
    finance = _pending(cli)["finance"]
    assert "total" in finance["reason"]


# ---------------------------------------------------------------------- finding 6


def test_a_hold_on_an_entity_stops_answered_approvals_from_being_applied(
        cli: Cli, write: Callable[[str, str], Path]) -> None:
    _users(cli, "dana@finance", "raj@sales")
    cli("ingest", str(_csv(write, ("p-1", "ACC-10004", 40000))))
    cli("run", "--once")
    for function, approval in _pending(cli).items():
        cli("approvals", "approve", approval["id"], "--as", APPROVERS[function], "--no-apply")
    cli("chat", "-m", "hold ACC-10004 until +1d because disputed invoice")
    cli("run", "--once")
    shown = _decision(cli)
    assert shown["decision"]["status"] == "awaiting_approval"
    # the listing says why it waits with every answer in (trial 26: not a word)
    (listed,) = cli.json("decisions", "list")
    assert "entity ACC-10004 is on hold #1" in listed["held"], listed
    assert "on hold: entity ACC-10004" in cli("decisions", "list").stdout
    assert not _effects(cli, "crm.create_retention_offer")
    assert not _effects(cli, "finance.issue_credit")
    cli("chat", "-m", "release ACC-10004")
    shown = _run_until_terminal(cli)
    assert shown["decision"]["status"] == "completed"
    events = [e["event"] for e in shown["ledger"]]
    assert "hold.placed" in [e["event"] for e in cli.json("ledger", "list")]
    assert events.count("decision.completed") == 1


def test_a_hold_on_a_function_stops_its_steps_from_starting(
        cli: Cli, write: Callable[[str, str], Path]) -> None:
    _users(cli, "dana@finance", "raj@sales")
    cli("ingest", str(_csv(write, ("p-1", "ACC-10004", 40000))))
    cli("run", "--once")
    cli("chat", "-m", "hold finance until +1d because month-end close")
    for function, approval in _pending(cli).items():
        cli("approvals", "approve", approval["id"], "--as", APPROVERS[function])
    cli("run", "--once")
    shown = _decision(cli)
    assert shown["decision"]["status"] not in ("completed", "failed")
    assert _effects(cli, "crm.create_retention_offer")  # sales acted
    assert not _effects(cli, "finance.issue_credit")  # finance did not
    cli("chat", "-m", "release finance")
    shown = _run_until_terminal(cli)
    assert shown["decision"]["status"] == "completed"
    assert len(_effects(cli, "finance.issue_credit")) == 1


# ---------------------------------------------------------------------- finding 7


def test_a_crash_after_route_leaves_nothing_stuck(cli: Cli,
                                                 write: Callable[[str, str], Path]) -> None:
    _users(cli, "dana@finance", "raj@sales")
    cli("ingest", str(_csv(write, ("p-1", "ACC-10004", 40000))))
    crashed = cli("run", "--once", code=86, env={"DECISIONOPS_CRASH_AT": "after_route"})
    assert crashed.returncode == 86
    # No wait for the lease (120 s) to lapse: its owner, a process of this machine, is gone.
    cli("run", "--once")
    pending = _pending(cli)
    assert set(pending) == {"finance", "sales"}
    for function, approval in pending.items():
        cli("approvals", "approve", approval["id"], "--as", APPROVERS[function], "--no-apply")
    shown = _run_until_terminal(cli)
    assert shown["decision"]["status"] == "completed"
    keys = [k for _, k, _ in _effects(cli)]
    assert len(keys) == len(set(keys)) == 4


def test_a_crash_before_answers_are_marked_applied_leaves_nothing_stuck(
        cli: Cli, write: Callable[[str, str], Path]) -> None:
    _users(cli, "dana@finance", "raj@sales")
    cli("ingest", str(_csv(write, ("p-1", "ACC-10004", 40000))))
    cli("run", "--once")
    pending = _pending(cli)
    # finance first: sales's revise then withdraws nothing, and both answers are applied
    cli("approvals", "approve", pending["finance"]["id"], "--as", "dana@finance", "--no-apply")
    cli("approvals", "revise", pending["sales"]["id"], "--as", "raj@sales",
        "--feedback", "offer a 15% discount instead", "--no-apply")
    cli("run", "--once", code=86, env={"DECISIONOPS_CRASH_AT": "before_mark_applied",
                                       "DECISIONOPS_LEASE_SECONDS": "5"})
    time.sleep(5.5)
    cli("run", "--once")
    again = _pending(cli)
    assert set(again) == {"finance", "sales"}
    assert {a["plan_version"] for a in again.values()} == {2}
    for function, approval in again.items():
        cli("approvals", "approve", approval["id"], "--as", APPROVERS[function], "--no-apply")
    shown = _run_until_terminal(cli)
    assert shown["decision"]["status"] == "completed"
    assert shown["decision"]["plan_version"] == 2


def test_every_answer_command_binds_to_the_previews_seen_and_edit_takes_a_comment(
        cli: Cli, write: Callable[[str, str], Path]) -> None:
    """As the HTTP API: edit, reject and revise take --preview-hash (refused, naming it,
    when the previews were read again since), and an edit carries its --comment."""
    pending = waiting(cli, write, "dana@finance", "raj@sales")
    other = "0" * 64
    for command, extra in (("reject", ["--reason", "no"]), ("revise", ["--feedback", "x"]),
                           ("edit", ["--set", "step.goodwill_credit.amount=150"])):
        refused = cli("approvals", command, pending["finance"]["id"], "--as", "dana@finance",
                      "--preview-hash", other, *extra, code=2)
        assert refused.stderr.startswith("error: --preview-hash:"), refused.stderr
    # Under --json the API's body: the option and the reason (trial 19: no reason key).
    body = json.loads(cli("approvals", "reject", pending["finance"]["id"], "--as",
                          "dana@finance", "--preview-hash", other, "--reason", "no", "--json",
                          code=2).stdout)["error"]
    assert (body["field"], body["reason"]) == ("--preview-hash", "stale_preview")
    # An edit that changes nothing names the option it came in (trial 19: "arguments").
    amount = pending["finance"]["request"]["steps"][0]["arguments"]["amount"]
    same = cli("approvals", "edit", pending["finance"]["id"], "--as", "dana@finance", "--set",
               f"step.goodwill_credit.amount={amount}", code=2)
    assert same.stderr.startswith("error: --set: the edit changes no argument"), same.stderr
    assert cli.json("approvals", "show", pending["finance"]["id"])["approval"]["status"] \
        == "pending"
    seen = cli.json("approvals", "show", pending["finance"]["id"])["preview_hash"]
    cli("approvals", "edit", pending["finance"]["id"], "--as", "dana@finance", "--set",
        "step.goodwill_credit.amount=150", "--comment", "half is enough", "--preview-hash",
        seen, "--no-apply")
    answer = cli.json("approvals", "show", pending["finance"]["id"])["approval"]["answer"]
    assert answer["comment"] == "half is enough"


def test_the_answer_commands_print_json(cli: Cli, write: Callable[[str, str], Path]) -> None:
    """approve, edit, reject and revise take --json: the HTTP API's answer body and whether
    the answer was applied; a refusal is the API's error body."""
    pending = waiting(cli, write, "dana@finance", "raj@sales")
    finance, sales = pending["finance"]["id"], pending["sales"]["id"]
    # Applied only where a leg ran: here the decision waits for sales (trial 19: the CLI
    # said true, the API false).
    approved = cli.json("approvals", "approve", finance, "--as", "dana@finance")
    assert approved == {"approval_id": finance, "status": "approved",
                        "decision_id": pending["finance"]["decision_id"],
                        "decision_status": "awaiting_approval", "pending_approvals": [sales],
                        "held": None, "applied": False}
    again = json.loads(cli("approvals", "approve", finance, "--as", "dana@finance", "--json",
                           code=2).stdout)
    assert again["error"]["reason"] == "replay" and again["error"]["field"] == "approval_id"
    rejected = cli.json("approvals", "reject", sales, "--as", "raj@sales", "--reason", "no")
    assert (rejected["status"], rejected["applied"]) == ("rejected", True)
    assert rejected["decision_status"] == "completed" and rejected["pending_approvals"] == []


def test_an_answer_applied_while_a_tool_is_down_is_recorded_and_said_so(
        cli: Cli, write: Callable[[str, str], Path]) -> None:
    """The answer stands; carrying the decision on stops at the tool that is down, and
    the command says so instead of failing (the loop tries again once the lease lapses)."""
    from decisionops.tools.enterprise import Enterprise

    pending = waiting(cli, write, "dana@finance", "raj@sales")
    with Enterprise(f"sqlite:///{cli.cwd / 'home' / 'enterprise.sqlite'}") as enterprise:
        enterprise.inject_fault("crm.create_retention_offer", "fail_retryable", times=100)
    cli("approvals", "approve", pending["finance"]["id"], "--as", "dana@finance")
    out = cli.json("approvals", "approve", pending["sales"]["id"], "--as", "raj@sales")
    assert out["status"] == "approved" and out["applied"] is False
    assert "retries exhausted" in out["stopped"], out
    assert out["decision_status"] == "executing"  # where it stopped, not before the answer
    shown = cli.json("decisions", "show", pending["sales"]["decision_id"])
    assert shown["decision"]["status"] == "executing"
    assert "tried again once the lease lapses (1 of" in shown["decision"]["error"]
    assert _effects(cli, "crm.create_retention_offer") == []


def test_approvals_show_says_what_a_revise_can_change(
        cli: Cli, write: Callable[[str, str], Path]) -> None:
    """(trial 21: the API and the inbox said it, approvals show did not)"""
    _users(cli, "dana@finance", "raj@sales")
    cli("ingest", str(_csv(write, ("p-1", "ACC-10004", 40000))))
    cli("run", "--once")
    sales = _pending(cli)["sales"]["id"]
    shown = " ".join(cli("approvals", "show", sales).stdout.split())
    assert "a revise can: remove goodwill_credit" in shown
    body = cli.json("approvals", "show", sales)
    assert body["can_revise"] is True and "set retention_offer.discount_pct" in body["revise_can"]


def test_approvals_list_pages_pending_requests_as_the_inbox_and_the_api_do(
        cli: Cli, write: Callable[[str, str], Path]) -> None:
    """(trial 21: the CLI cut and ordered by exact deadline, the API and the inbox by the
    hour a request is due and then the value at stake: different pages)"""
    from datetime import timedelta

    from sqlalchemy import update

    from decisionops.agent.models import utcnow
    from decisionops.agent.store import Store
    from decisionops.agent.store import _tables as t

    _users(cli, "dana@finance", "raj@sales")
    cli("ingest", str(_csv(write, ("p-1", "ACC-10001", 30000), ("p-2", "ACC-10002", 31000),
                           ("p-3", "ACC-10003", 90000))))
    cli("run", "--once")
    finance = {a["decision_id"]: a["id"] for a in cli.json("approvals", "list", "--function",
                                                          "finance")}
    assert len(finance) == 3
    hour = (utcnow() + timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    store = Store.open(f"sqlite:///{cli.cwd / 'home' / 'decisionops.sqlite'}")
    try:
        values = {}
        for minutes, (decision_id, approval_id) in zip((5, 10, 50), sorted(finance.items()),
                                                        strict=True):
            values[approval_id] = store.decisions.get(decision_id).expected_value
            with store.transaction() as conn:
                conn.execute(update(t.approvals).where(t.approvals.c.id == approval_id)
                             .values(deadline=hour + timedelta(minutes=minutes)))
    finally:
        store.close()
    page = [a["id"] for a in cli.json("approvals", "list", "--function", "finance",
                                      "--limit", "2")]
    by_value = sorted(values, key=lambda a: -values[a])
    assert page == by_value[:2]


def test_an_approve_overtaken_by_the_world_says_the_next_version_waits(
        cli: Cli, write: Callable[[str, str], Path]) -> None:
    """(trial 26 L9: the approve printed only "decision … is now awaiting_approval".)
    The world changed since the plan was routed (a credit issued to the account by
    hand): the last answer runs none of it, and says that the next version went to its
    approvers and must be answered again."""
    from decisionops.agent.runtime import Runtime
    from decisionops.agent.settings import Settings

    asked = waiting(cli, write, "dana@finance", "raj@sales")
    cli("approvals", "approve", asked["sales"]["id"], "--as", "raj@sales")
    with Runtime(Settings(home=cli.cwd / "home"), actor="by-hand") as rt:
        rt.tools.call("finance.issue_credit", {"account_id": "ACC-10004", "amount": 50,
                                               "currency": "EUR", "reason": "manual"},
                      idempotency_key="manual-credit-l9")
    said = " ".join(cli("approvals", "approve", asked["finance"]["id"],
                        "--as", "dana@finance").stdout.split())
    assert "the world changed since plan v1 was routed, so none of it ran" in said, said
    assert "is on v2, asked of finance, sales again" in said, said


def test_a_revise_says_it_is_the_revise_that_ended_the_version(
        cli: Cli, write: Callable[[str, str], Path]) -> None:
    """(trial 30 #5: after a revise the CLI said "the world changed since plan v1 was
    routed", which it had not: the revise itself ended v1.)"""
    asked = waiting(cli, write, "dana@finance", "raj@sales")
    said = " ".join(cli("approvals", "revise", asked["finance"]["id"], "--as",
                        "dana@finance", "--feedback", "no goodwill credit").stdout.split())
    assert "world changed" not in said, said
    assert "plan v1 ends with this revise: none of it ran" in said, said
    assert "is on v2" in said, said
