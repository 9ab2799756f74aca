"""``decisionops ledger verify`` as the black-box trial ran it: approval rows forged with
sqlite3 on the demo's store file are named (approval, field, row's value, ledger's value)
and fail the command, as do a head row with a wrong hash and a missing head row."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.cli.conftest import Cli


def _sql(cli: Cli, *statements: str) -> None:
    with sqlite3.connect(cli.cwd / "home" / "decisionops.sqlite") as conn:
        for statement in statements:
            conn.execute(statement)


@pytest.mark.slow
def test_forged_rows_and_head_fail_ledger_verify(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli("demo")
    with sqlite3.connect(cli.cwd / "home" / "decisionops.sqlite") as conn:
        sales, sales_by = conn.execute(
            "select id, approver from approvals where status = 'approved' and function = "
            "'sales' and approver != 'mia@sales' order by id limit 1").fetchone()
        finance, finance_status, finance_by = conn.execute(
            "select id, status, approver from approvals where status in ('approved', 'edited') "
            "and function = 'finance' and approver != 'omar@finance' order by id limit 1"
        ).fetchone()
        (entries,) = conn.execute("select seq from ledger_head").fetchone()
    ok = cli.json("ledger", "verify")
    assert ok["ok"] is True and ok["disagreements"] == []
    assert ok["approvals"] > 0 and ok["decisions"] > 0
    assert ok["executions"] > 0 and ok["outcomes"] > 0 and ok["predictions"] > 0
    said = cli("ledger", "verify").stdout
    assert "approvals, " in said and " tool calls, " in said and " outcomes, " in said
    assert " predictions agree with it" in said

    _sql(cli, f"update approvals set approver='mia@sales' where id='{sales}'",
         f"update approvals set status='rejected', approver='omar@finance' where id='{finance}'")
    failed = cli("ledger", "verify", code=1)
    text = " ".join(failed.stderr.split())
    assert "ledger does not verify: 3 stored rows disagree with the ledger" in text
    assert f"approval {sales}: approver is 'mia@sales' in the store, '{sales_by}' in the " \
           "ledger" in text
    assert f"approval {finance}: status is 'rejected' in the store, '{finance_status}' in " \
           "the ledger" in text
    assert f"approval {finance}: approver is 'omar@finance' in the store, '{finance_by}' in " \
           "the ledger" in text
    report = cli.json("ledger", "verify", code=1)
    assert report["ok"] is False and report["disagreeing"] == 3
    assert {(d["id"], d["field"], d["row"], d["ledger"]) for d in report["disagreements"]} == {
        (sales, "approver", "mia@sales", sales_by),
        (finance, "status", "rejected", finance_status),
        (finance, "approver", "omar@finance", finance_by)}
    _sql(cli, f"update approvals set approver='{sales_by}' where id='{sales}'",
         f"update approvals set status='{finance_status}', approver='{finance_by}' "
         f"where id='{finance}'")
    assert cli.json("ledger", "verify")["ok"] is True

    _sql(cli, "update ledger_head set hash='abc'")
    text = " ".join(cli("ledger", "verify", code=1).stderr.split())
    assert f"the head row records entry {entries} with hash abc" in text
    assert "removed" not in text

    _sql(cli, "delete from ledger_head")
    text = " ".join(cli("ledger", "verify", code=1).stderr.split())
    assert "the head row (ledger_head) is missing" in text


@pytest.mark.slow
def test_a_plan_changed_in_the_store_fails_ledger_verify(tmp_path: Path) -> None:
    """(trial 31 #1: a credit's amount edited in a stored plan verified clean, while
    `decisions show` and `approvals show` said the approver approved the forged amount.)
    A plan's body must hash to its row's hash, and that to the hash its plan entry
    recorded; the plan is named, with both hashes."""
    cli = Cli(tmp_path)
    cli("demo")
    with sqlite3.connect(cli.cwd / "home" / "decisionops.sqlite") as conn:
        decision, version, recorded = conn.execute(
            "select decision_id, version, hash from plans where verdict = 'accepted' and "
            "body like '%goodwill_credit%' order by decision_id limit 1").fetchone()
    assert cli.json("ledger", "verify")["ok"] is True
    _sql(cli, "update plans set body = json_set(body, '$.steps[2].arguments.amount', 9999.0) "
              f"where decision_id = '{decision}' and version = {version}")
    report = cli.json("ledger", "verify", code=1)
    [found] = report["disagreements"]
    assert (found["table"], found["id"], found["field"]) == (
        "plans", f"{decision} v{version}", "body")
    assert found["ledger"] == recorded and found["row"] != recorded
    text = " ".join(cli("ledger", "verify", code=1).stderr.split())
    assert f"plan {decision} v{version}: body is" in text
    # the row's hash column changed to match: the ledger's entry still says otherwise
    _sql(cli, f"update plans set hash = '{found['row']}' where decision_id = '{decision}' "
              f"and version = {version}")
    fields = {(d["id"], d["field"]) for d in cli.json("ledger", "verify", code=1)
              ["disagreements"]}
    assert (f"{decision} v{version}", "hash") in fields


@pytest.mark.slow
def test_holds_and_users_changed_in_the_store_fail_ledger_verify(tmp_path: Path) -> None:
    """(trial 31 #10: a hold deleted in the database, which let the loop act on the held
    entity, and an approver's role raised to admin both verified clean, though
    hold.placed and user.created record them.)"""
    cli = Cli(tmp_path)
    cli("users", "add", "dana@finance", "--role", "approver", "--function", "finance")
    cli("users", "add", "olga", "--role", "operator")
    held = cli.json("holds", "add", "ACC-10060", "--until", "+5d", "--reason", "dispute")
    cli.json("holds", "add", "ACC-10061", "--until", "+5d")
    cli("holds", "release", "ACC-10061")
    assert cli.json("ledger", "verify")["ok"] is True
    _sql(cli, "delete from holds where target = 'ACC-10060'",
         "update holds set released_at = null where target = 'ACC-10061'",
         "update users set role = 'admin' where name = 'dana@finance'",
         "update users set functions = '[\"finance\", \"sales\"]' where name = 'olga'",
         "insert into users (name, role, functions, created_at, created_by) values "
         "('mallory', 'admin', '[]', '2026-12-01 00:00:00.000000', 'nobody')")
    report = cli.json("ledger", "verify", code=1)
    found = {(d["table"], d["id"], d["field"]) for d in report["disagreements"]}
    assert found == {("holds", str(held["id"]), "row"),
                     ("holds", str(held["id"] + 1), "released"),
                     ("users", "dana@finance", "role"),
                     ("users", "olga", "functions"),
                     ("users", "mallory", "role")}, found
    text = " ".join(cli("ledger", "verify", code=1).stderr.split())
    assert f"hold {held['id']} is in the ledger" in text and "its row was removed" in text
    assert "user dana@finance: role is 'admin' in the store, 'approver' in the ledger" in text
    assert "user mallory is in the store" in text and "never recorded it" in text
