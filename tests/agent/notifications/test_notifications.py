"""Approver notifications, black-box: a request created, reminded, escalated or expired
reaches a Slack-compatible webhook and approvers' mailboxes (real local servers), with a
working link to the request in the inbox; retries back off; failures show in metrics and
in ``decisions show``; nothing is queued for an event that rolled back; no secret in any
error."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from decisionops.agent.api import add_user
from decisionops.agent.errors import InvalidInputError
from decisionops.agent.housekeeping import default_housekeeping, sla_sweep
from decisionops.agent.models import utcnow
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from decisionops.agent.store import Event
from decisionops.agent.worker import Worker, wait_for
from tests.agent.notifications.conftest import (
    SMTP_PASSWORD,
    WEBHOOK_PATH,
    Mailbox,
    Webhook,
)
from tests.api.conftest import Service, churn_record, serve
from tests.cli.conftest import Cli
from tests.graphs.conftest import churn

PUBLIC = "https://decisionops.example.test"
EMAILS = {"raj@sales": "raj@example.com", "mia@sales": "mia@example.com",
          "lee@support": "lee@example.com", "sam@support": "sam@example.com"}


def channels(webhook: Webhook, mailbox: Mailbox, **more: Any) -> dict[str, Any]:
    return {"slack_webhook_url": webhook.url, "smtp_url": mailbox.url,
            "smtp_from": "decisionops@example.com", "public_url": PUBLIC,
            "approver_emails": EMAILS, "notify_backoff_seconds": 0.05, **more}


def loop_tick(rt: Runtime) -> None:
    Worker(rt, housekeeping=default_housekeeping(rt.settings)).tick()


def sales_request(rt: Runtime, decision_id: str) -> str:
    (request,) = [a for a in rt.store.approvals.list(decision_id=decision_id, status="pending")
                  if a.function == "sales"]
    return request.id


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("pg_url") if request.param == "postgres" else None


@pytest.fixture
def svc(tmp_path: Path, webhook: Webhook, mailbox: Mailbox) -> Iterator[Service]:
    with serve(tmp_path / "home", settings=channels(webhook, mailbox)) as service:
        yield service


def test_a_new_request_reaches_slack_and_the_approvers_mailboxes_with_a_working_link(
        svc: Service, webhook: Webhook, mailbox: Mailbox) -> None:
    decision_id = svc.decide(churn_record("churn-n1", account="ACC-10004"))
    approval_id = sales_request(svc.rt, decision_id)
    loop_tick(svc.rt)
    # Each channel has its own sender: wait for this request's post and both its mails.
    assert wait_for(lambda: any(approval_id in p["text"] for p in webhook.posts) and len(
        {to[0] for to, m in mailbox.messages if approval_id in m["Subject"]}) >= 2, 10)
    link = f"{PUBLIC}/inbox/requests/{approval_id}"

    slack = [p for p in webhook.posts if approval_id in p["text"]]
    assert len(slack) == 1
    (post,) = slack
    assert "sales" in post["text"] and "ACC-10004" in post["text"] and link in post["text"]
    assert post["client_msg_id"].startswith("notify_")
    buttons = [e for b in post["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["url"] for b in buttons] == [link]
    fields = " ".join(f["text"] for b in post["blocks"] for f in b.get("fields", []))
    assert approval_id in fields and "Deadline:" in fields and "Value:" in fields

    mails = {to[0]: m for to, m in mailbox.messages if approval_id in m["Subject"]}
    assert set(mails) == {"raj@example.com", "mia@example.com"}
    mail = mails["raj@example.com"]
    assert mail["From"] == "decisionops@example.com"
    assert link in mail.get_payload(decode=True).decode() and mail["Message-ID"].startswith("<notify_")
    assert mail["Date"] is not None  # (trial: no Date header, which RFC 5322 requires)

    # The link works: an approver who logs in lands on the request.
    path = link.removeprefix(PUBLIC)
    form = svc.client.get(f"/login?next={path}")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    svc.client.post("/login", data={"token": svc.tokens["raj"], "csrf_token": csrf,
                                     "next": path})
    page = svc.client.get(path)
    assert page.status_code == 200 and approval_id in page.text

    sent = svc.rt.store.notifications.for_decision(decision_id)
    assert {(n.channel, n.status, n.attempts) for n in sent
            if n.approval_id == approval_id} == {("slack", "sent", 1), ("email", "sent", 1)}
    metrics = svc.client.get("/metrics", headers=svc.auth("root")).text
    assert re.search(r'decisionops_notifications_total\{channel="email",outcome="sent"\} [1-9]',
                     metrics)


def test_retries_back_off_until_the_webhook_answers(backend: str | None, tmp_path: Path,
                                                    webhook: Webhook, mailbox: Mailbox) -> None:
    webhook.fail_first = 2
    settings = Settings(home=tmp_path / "home", database_url=backend,
                        **channels(webhook, mailbox))
    with Runtime(settings, actor="w") as rt:
        rt.ingest([churn("p-retry", account="ACC-10004", value=10_000, segment="mid_market")],
                  source="test")
        loop_tick(rt)
        decision_id = rt.decision_ids(["p-retry"])[0]
        approval_id = sales_request(rt, decision_id)

        def slack() -> Any:
            (row,) = [n for n in rt.store.notifications.for_decision(decision_id)
                      if n.channel == "slack" and n.approval_id == approval_id]
            return row

        assert wait_for(lambda: slack().attempts == 1, 10)
        first = slack()
        assert first.status == "pending" and first.last_error == "slack: HTTP 500"
        assert first.next_attempt_at > utcnow() - timedelta(seconds=1)
        while slack().status != "sent":
            loop_tick(rt)
            assert wait_for(lambda: slack().status == "sent" or slack().attempts >= 2, 5)
            if slack().attempts > 3:
                break
        final = slack()
        assert (final.status, final.attempts) == ("sent", 3)
        assert len([p for p in webhook.posts if approval_id in p["text"]]) == 1
        retried = rt.metrics.registry.get_sample_value(
            "decisionops_notifications_total", {"channel": "slack", "outcome": "retried"})
        assert retried == 2


def test_a_message_that_never_goes_through_is_failed_and_shown_without_secrets(
        tmp_path: Path, webhook: Webhook, mailbox: Mailbox) -> None:
    cli = Cli(tmp_path)
    env = {"DECISIONOPS_SLACK_WEBHOOK_URL": webhook.url.replace(WEBHOOK_PATH,
                                                                WEBHOOK_PATH + "-gone"),
           "DECISIONOPS_SMTP_URL": mailbox.url.replace(SMTP_PASSWORD, "wrong-s3cret-canary"),
           "DECISIONOPS_SMTP_FROM": "decisionops@example.com",
           "DECISIONOPS_PUBLIC_URL": PUBLIC,
           "DECISIONOPS_NOTIFY_MAX_ATTEMPTS": "1"}
    # The approver's address is registered with the user, not in the settings.
    cli("users", "add", "raj", "--role", "approver", "--function", "sales",
        "--email", "raj@example.com", env=env)
    cli("users", "add", "mia", "--role", "approver", "--function", "sales",
        "--email", "not-an-address", env=env, code=2)
    (tmp_path / "p.jsonl").write_text(churn("p-fail", account="ACC-10004", value=10_000,
                                            segment="mid_market").model_dump_json() + "\n")
    cli("ingest", str(tmp_path / "p.jsonl"), env=env)
    out = cli("run", "--once", env=env).stdout + cli("run", "--once", env=env).stdout
    (decision,) = json.loads(cli("decisions", "list", "--json", env=env).stdout)
    shown = json.loads(cli("decisions", "show", decision["id"], "--json", env=env).stdout)
    notes = shown["notifications"]
    assert notes and {n["status"] for n in notes} == {"failed"}
    assert {n["recipient"] for n in notes if n["channel"] == "email"} == {"raj@example.com"}
    # Wrong credentials: a 535, or the server hangs up after it.
    # The server's reply is kept: "SMTP 535: 5.7.8 Authentication credentials invalid".
    assert all(n["last_error"] == "slack: HTTP 404"
               or n["last_error"].startswith(("email: SMTP 535: ",
                                              "email: SMTPServerDisconnected"))
               for n in notes), notes
    text = cli("decisions", "show", decision["id"], env=env).stdout
    assert "notifications" in text and "failed" in text
    for leaked in ("s3cret-canary", "wrong-s3cret"):
        assert leaked not in text + json.dumps(shown) + out


def test_users_registered_with_an_address_get_the_mail(tmp_path: Path, webhook: Webhook,
                                                       mailbox: Mailbox) -> None:
    settings = Settings(home=tmp_path / "home", **channels(webhook, mailbox, approver_emails={}))
    with Runtime(settings, actor="w") as rt:
        add_user(rt, "raj", role="approver", functions=["sales"], actor="t",
                 email="raj.k@example.com")
        add_user(rt, "mia", role="approver", functions=["sales"], actor="t")
        rt.store.users.set_email("mia", "mia.s@example.com", actor="t")
        add_user(rt, "sam", role="approver", functions=["support"], actor="t",
                 email="sam@example.com")
        with pytest.raises(InvalidInputError, match="email"):
            rt.store.users.set_email("sam", "sam at example", actor="t")
        assert rt.store.users.get("raj")["email"] == "raj.k@example.com"
        rt.ingest([churn("p-users", account="ACC-10004", value=10_000, segment="mid_market")],
                  source="test")
        loop_tick(rt)
        approval_id = sales_request(rt, rt.decision_ids(["p-users"])[0])
        assert wait_for(lambda: len([m for _, m in mailbox.messages
                                     if approval_id in m["Subject"]]) == 2, 10)
        assert {m["To"] for _, m in mailbox.messages if approval_id in m["Subject"]} == {
            "raj.k@example.com", "mia.s@example.com"}


def test_a_revoked_approver_gets_no_mail_whatever_address_is_configured(
        tmp_path: Path, webhook: Webhook, mailbox: Mailbox) -> None:
    # Found in a black-box trial: mia revoked, her ``approver_emails`` address still got
    # every request (its id, entity, amount and link).
    settings = Settings(home=tmp_path / "home", **channels(webhook, mailbox))
    with Runtime(settings, actor="w") as rt:
        add_user(rt, "mia@sales", role="approver", functions=["sales"], actor="t")
        rt.store.users.revoke("mia@sales", actor="t")
        rt.ingest([churn("p-revoked", account="ACC-10004", value=10_000,
                         segment="mid_market")], source="test")
        loop_tick(rt)
        approval_id = sales_request(rt, rt.decision_ids(["p-revoked"])[0])
        assert wait_for(lambda: any(approval_id in m["Subject"] for _, m in mailbox.messages),
                        10)
        time.sleep(0.3)  # any second message would be sent by now
        assert {m["To"] for _, m in mailbox.messages if approval_id in m["Subject"]} == {
            "raj@example.com"}


def test_a_request_answered_before_its_message_went_out_is_not_announced_late(
        tmp_path: Path, webhook: Webhook, mailbox: Mailbox) -> None:
    # Found in a black-box trial: behind a slow or failing channel, "Approval requested"
    # and escalations went out for requests already answered or expired.
    from decisionops.agent.models import Approve
    from tests.support import answer

    webhook.fail_first = 10_000
    settings = Settings(home=tmp_path / "home", **channels(webhook, mailbox))
    with Runtime(settings, actor="w") as rt:
        rt.ingest([churn(pid, account=account, value=10_000, segment="mid_market")
                   for pid, account in (("p-late", "ACC-10004"), ("p-live", "ACC-10005"))],
                  source="test")
        loop_tick(rt)
        late, live = (sales_request(rt, d) for d in rt.decision_ids(["p-late", "p-live"]))
        assert wait_for(lambda: webhook.calls >= 2, 10)  # the Slack messages are failing
        # The senders stop (a post in flight finishes first): what is tested is the next
        # claim, not a race with a post claimed while the request was pending.
        rt.notification_sender.close()
        answer(rt, late, Approve(), approver_name="raj@sales", apply=False)
        webhook.fail_first = 0
        time.sleep(0.5)  # past the backoff
        rt.notifications.deliver_due()  # one pass: the stale one skipped, the live one sent
        (slack,) = [m for m in rt.store.notifications.list(decision_id=rt.decision_ids(
            ["p-late"])[0]) if m.channel == "slack" and m.approval_id == late]
        assert slack.status == "skipped", slack
        assert slack.last_error == "not sent: the request was approved before it went out"
        assert not [p for p in webhook.posts if late in json.dumps(p)]
        assert [p for p in webhook.posts if live in json.dumps(p)]


def test_a_message_a_stopped_sender_had_taken_is_not_said_unsent(tmp_path: Path) -> None:
    """(trial 26: a Slack message reached its receiver, the process was killed the same
    second, and after the restart it read "not sent: the request was approved before it
    went out".) A message a sender took and never finished may have gone out: skipped,
    it says so."""
    from datetime import timedelta

    from decisionops.agent.models import Approve, utcnow
    from tests.support import answer

    settings = Settings(home=tmp_path / "home", slack_webhook_url="http://127.0.0.1:9/x")
    with Runtime(settings, actor="w") as rt:
        rt.notification_sender.close()  # no sender of its own: this test is the sender
        rt.ingest([churn("p-cut", account="ACC-10004", value=10_000, segment="mid_market")],
                  source="test")
        loop_tick(rt)
        request = sales_request(rt, rt.decision_ids(["p-cut"])[0])
        taken = rt.store.notifications.claim_due(limit=10, lease=timedelta(seconds=1))
        assert any(m.approval_id == request for m in taken)  # ... and the sender dies here
        answer(rt, request, Approve(), approver_name="raj@sales", apply=False)
        rt.store.notifications.claim_due(limit=10, lease=timedelta(seconds=1),
                                         now=utcnow() + timedelta(seconds=2))
        (slack,) = [m for m in rt.store.notifications.for_decision(rt.decision_ids(
            ["p-cut"])[0]) if m.channel == "slack" and m.approval_id == request]
        assert slack.status == "skipped"
        assert slack.last_error == ("not sent again: the request was approved; an earlier "
                                    "attempt may have delivered it")


def test_no_log_line_carries_the_webhook_url_or_the_smtp_password(
        tmp_path: Path, webhook: Webhook, mailbox: Mailbox,
        caplog: pytest.LogCaptureFixture) -> None:
    webhook.fail_first = 1
    settings = Settings(home=tmp_path / "home", **channels(webhook, mailbox))
    with caplog.at_level(logging.DEBUG), Runtime(settings, actor="w") as rt:
        rt.ingest([churn("p-logs", account="ACC-10004", value=10_000, segment="mid_market")],
                  source="test")
        loop_tick(rt)
        assert wait_for(lambda: webhook.calls >= 1 and mailbox.messages, 10)
        time.sleep(0.1)
        rt.notifications.deliver_due()
        assert wait_for(lambda: webhook.posts, 10)
    assert "HTTP Request" in caplog.text  # httpx did log the calls
    assert "webhook-s3cret-canary" not in caplog.text
    assert SMTP_PASSWORD not in caplog.text


def test_a_slow_webhook_never_holds_up_the_loop(tmp_path: Path, webhook: Webhook,
                                                mailbox: Mailbox) -> None:
    webhook.delay = 5.0
    settings = Settings(home=tmp_path / "home", **channels(webhook, mailbox))
    with Runtime(settings, actor="w") as rt:
        rt.ingest([churn("p-slow", account="ACC-10004", value=10_000, segment="mid_market")],
                  source="test")
        started = time.monotonic()
        loop_tick(rt)  # starts the decision, queues the messages, wakes the sender
        loop_tick(rt)
        assert time.monotonic() - started < 3.0
        assert webhook.posts == []
        assert wait_for(lambda: len(webhook.posts) == 1, 15)


def test_a_slow_webhook_never_holds_up_the_mail(tmp_path: Path, webhook: Webhook,
                                                mailbox: Mailbox) -> None:
    # Found in a black-box trial: one sender delivered both channels one message at a
    # time, so e-mails waited behind every slow Slack post (up to its 10 s timeout each).
    # Each channel has its own sender.
    webhook.delay = 4.0
    settings = Settings(home=tmp_path / "home", **channels(webhook, mailbox))
    with Runtime(settings, actor="w") as rt:
        rt.ingest([churn(f"p-{i}", account=a, value=10_000, segment="mid_market")
                   for i, a in enumerate(("ACC-10004", "ACC-10005"))], source="test")
        loop_tick(rt)  # two decisions: two Slack posts and their mails queued, sender woken
        queued = [n for n in rt.store.notifications.list(limit=100) if n.channel == "email"]
        assert len(queued) >= 2
        assert wait_for(lambda: len(mailbox.messages) == len(queued), 3.0), \
            (len(mailbox.messages), len(queued), len(webhook.posts))
        assert len(webhook.posts) == 0  # the first post is still waiting on the receiver


def test_reminder_escalation_and_expiry_each_notify_once(tmp_path: Path, webhook: Webhook,
                                                        mailbox: Mailbox) -> None:
    settings = Settings(home=tmp_path / "home", **channels(webhook, mailbox))
    with Runtime(settings, actor="w") as rt:
        rt.ingest([churn("p-sla", account="ACC-10004", value=10_000, segment="mid_market")],
                  source="test")
        loop_tick(rt)
        decision_id = rt.decision_ids(["p-sla"])[0]
        request = rt.store.approvals.get(sales_request(rt, decision_id))
        span = request.deadline - request.requested_at
        for share in (0.6, 0.6, 0.9, 0.9, 1.01):
            sla_sweep(rt, now=request.requested_at + span * share)
            # Each goes out while it is current (one queued behind the expiry would be
            # skipped, as a request answered before its message went out is).
            rt.notifications.deliver_due()
        loop_tick(rt)
        events = lambda: sorted(  # noqa: E731
            n.event for n in rt.store.notifications.for_decision(decision_id)
            if n.channel == "slack" and n.approval_id == request.id)
        assert events() == ["escalation", "expired", "reminder", "requested"]
        assert wait_for(lambda: sum(request.id in p["text"] for p in webhook.posts) == 4, 10)
        # what the expiry did, as the policy says (trial 26: "expired" only, where an
        # on_timeout: approve ran the step)
        (expired,) = [p["text"] for p in webhook.posts if p["text"].startswith("Approval expired")]
        assert "rejected, as the sales policy's on_timeout says: its steps do not run" in expired
        escalated = [m for to, m in mailbox.messages
                     if request.id in m["Subject"] and "Escalation" in m["Subject"]]
        assert {m["To"] for m in escalated} == {"raj@example.com", "mia@example.com"}


def test_nothing_is_queued_for_an_event_that_rolled_back(tmp_path: Path, webhook: Webhook,
                                                         mailbox: Mailbox) -> None:
    settings = Settings(home=tmp_path / "home", **channels(webhook, mailbox))
    with Runtime(settings, actor="w") as rt:
        rt.ingest([churn("p-rb", account="ACC-10004", value=10_000, segment="mid_market")],
                  source="test")
        loop_tick(rt)
        decision_id = rt.decision_ids(["p-rb"])[0]
        approval_id = sales_request(rt, decision_id)
        before = len(rt.store.notifications.for_decision(decision_id))
        with pytest.raises(RuntimeError), rt.store.transaction() as conn:
            rt.store.db.record(conn, [Event(actor="t", event="approval.reminder",
                                            decision_id=decision_id,
                                            body={"approval_id": approval_id})])
            assert len(rt.store.notifications.for_decision(decision_id)) == before
            raise RuntimeError("rolled back")
        assert len(rt.store.notifications.for_decision(decision_id)) == before


@pytest.mark.parametrize(("settings", "named"), [
    ({"smtp_url": "smtp://u:pw-s3cret@127.0.0.1:25"}, "smtp_from"),
    ({"smtp_url": "http://u:pw-s3cret@127.0.0.1", "smtp_from": "a@b.example"}, "smtp_url"),
    ({"slack_webhook_url": "ftp://hooks.example/s3cret"}, "slack_webhook_url"),
    ({"public_url": "decisionops.example"}, "public_url"),
])
def test_bad_channel_settings_name_the_setting_and_not_the_secret(
        tmp_path: Path, settings: dict[str, str], named: str) -> None:
    with pytest.raises(ValidationError) as err:
        Settings(home=tmp_path, **settings)
    message = err.value.errors()[0]["msg"]
    assert named in message and "s3cret" not in message


def test_a_send_that_raises_something_unexpected_is_retried_and_the_sender_lives_on(
        tmp_path: Path) -> None:
    # An https URL the settings accept but httpx cannot encode (an empty label) raises a
    # UnicodeError, not an httpx error: the message must be retried, not the sender killed.
    settings = Settings(home=tmp_path / "home", slack_webhook_url="https://hooks..example/x",
                        notify_backoff_seconds=0.05)
    with Runtime(settings, actor="w") as rt:
        now = utcnow()
        with rt.store.db.transaction() as conn:
            rt.store.notifications.enqueue(conn, [{
                "id": "notify_x", "decision_id": "d1", "approval_id": "a1",
                "event": "requested", "channel": "slack", "recipient": "#approvals-sales",
                "payload": {"text": "hi"}}], now)
        counts = rt.notifications.deliver_due()
        assert counts["notifications_retried"] == 1
        (row,) = rt.store.notifications.for_decision("d1")
        assert (row.status, row.attempts) == ("pending", 1)
        assert row.last_error and row.last_error.startswith("slack: ")
        assert "hooks..example" not in row.last_error


def test_a_long_round_never_sends_a_message_whose_lease_lapsed_twice(
        tmp_path: Path, webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> None:
    # A round claims its messages as it goes: a message claimed at the start of a long
    # round (slow receiver) must not lapse and be sent again by a second worker.
    import threading

    from decisionops.agent.notifications import _deliver

    monkeypatch.setattr(_deliver, "_LEASE", timedelta(seconds=0.5))
    webhook.delay = 0.4
    settings = Settings(home=tmp_path / "home", slack_webhook_url=webhook.url)
    with Runtime(settings, actor="w") as rt:
        with rt.store.db.transaction() as conn:
            rt.store.notifications.enqueue(conn, [{
                "id": f"notify_{n}", "decision_id": "d1", "approval_id": f"a{n}",
                "event": "requested", "channel": "slack", "recipient": "#approvals-sales",
                "payload": {"text": f"message {n}"}} for n in range(3)], utcnow())
        first = threading.Thread(target=rt.notifications.deliver_due)
        first.start()
        time.sleep(0.7)  # the first round is on its second message; the rest lapsed
        rt.notifications.deliver_due()
        first.join(10)
        texts = [p["text"] for p in webhook.posts]
        assert sorted(texts) == ["message 0", "message 1", "message 2"]


def test_two_workers_racing_on_the_outbox_send_each_message_once(
        backend: str | None, tmp_path: Path, webhook: Webhook) -> None:
    # Two worker processes' senders (two runtimes on one database), each draining the
    # outbox in small rounds at the same time: every message is claimed by one of them
    # and reaches the receiver once.
    import threading

    settings = Settings(home=tmp_path / "home", database_url=backend,
                        slack_webhook_url=webhook.url)
    with Runtime(settings, actor="w1") as one, Runtime(settings, actor="w2") as two:
        with one.store.db.transaction() as conn:
            one.store.notifications.enqueue(conn, [{
                "id": f"notify_race_{n}", "decision_id": "d-race", "approval_id": f"a{n}",
                "event": "requested", "channel": "slack", "recipient": "#approvals-sales",
                "payload": {"text": f"message {n}"}} for n in range(40)], utcnow())
        start = threading.Barrier(2)
        sent: dict[str, int] = {}

        def drain(rt: Runtime, name: str) -> None:
            start.wait()
            while True:
                counts = rt.notifications.deliver_due(limit=3)
                sent[name] = sent.get(name, 0) + counts.get("notifications_sent", 0)
                if not any(counts.values()):
                    return

        workers = [threading.Thread(target=drain, args=(rt, name))
                   for rt, name in ((one, "w1"), (two, "w2"))]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        texts = sorted(p["text"] for p in webhook.posts)
        assert texts == sorted(f"message {n}" for n in range(40))
        assert sum(sent.values()) == 40, sent
        rows = one.store.notifications.for_decision("d-race")
        assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}


def test_failed_messages_are_listed_and_sent_again_once_the_channel_is_fixed(
        tmp_path: Path, webhook: Webhook) -> None:
    cli = Cli(tmp_path)
    broken = {"DECISIONOPS_SLACK_WEBHOOK_URL": webhook.url + "-gone",
              "DECISIONOPS_PUBLIC_URL": PUBLIC, "DECISIONOPS_NOTIFY_MAX_ATTEMPTS": "1"}
    (tmp_path / "p.jsonl").write_text("".join(
        churn(f"p-resend-{account}", account=account, value=10_000,
              segment="mid_market").model_dump_json() + "\n"
        for account in ("ACC-10004", "ACC-10005")))
    cli("ingest", str(tmp_path / "p.jsonl"), env=broken)
    cli("run", "--once", env=broken)
    cli("run", "--once", env=broken)
    failed = json.loads(cli("notifications", "list", "--status", "failed", "--json",
                            env=broken).stdout)
    assert failed and {n["last_error"] for n in failed} == {"slack: HTTP 404"}
    assert "-gone" not in json.dumps(failed)
    assert "failed" in cli("notifications", "list", env=broken).stdout
    # At 80 columns each message is one line, its id and error readable (trial 19: every
    # column was folded to a few letters).
    narrow = cli("notifications", "list", env={**broken, "COLUMNS": "80"}).stdout
    lines = [line for line in narrow.splitlines() if failed[0]["id"] in line]
    assert len(lines) == 1 and "slack" in lines[0], narrow
    assert max(len(line) for line in narrow.splitlines()) <= 80, narrow
    assert "there are more" in cli("notifications", "list", "--limit", "1", env=broken).stdout

    # Bad input names what is wrong and changes nothing.
    assert "--status" in cli("notifications", "list", "--status", "lost", code=2).stderr
    assert "one of the two" in cli("notifications", "resend", code=2).stderr
    assert "no notification 'nope'" in cli("notifications", "resend", "nope", code=2).stderr
    # Under --json, the documented error body (found: {"code": "error"}, no field, exit 1).
    nope = json.loads(cli("notifications", "resend", "nope", "--json", code=2).stdout)
    assert (nope["error"]["code"], nope["error"]["field"]) == ("not_found", "ids")
    assert json.loads(cli("notifications", "list", "--status", "failed", "--json",
                          env=broken).stdout) == failed

    # The webhook fixed: resend queues them, the next pass sends each once.
    fixed = {**broken, "DECISIONOPS_SLACK_WEBHOOK_URL": webhook.url}
    requeued = json.loads(cli("notifications", "resend", "--failed", "--json",
                              env=fixed).stdout)["requeued"]
    assert sorted(requeued) == sorted(n["id"] for n in failed)
    cli("run", "--once", env=fixed)
    assert len(webhook.posts) == len(failed)
    assert {p["client_msg_id"] for p in webhook.posts} == set(requeued)
    sent = json.loads(cli("notifications", "list", "--json", env=fixed).stdout)
    assert {(n["status"], n["attempts"]) for n in sent} == {("sent", 1)}
    # A sent message is never sent again; naming it says why.
    again = cli("notifications", "resend", requeued[0], env=fixed, code=2).stderr
    assert "is sent, not failed" in again
    again = json.loads(cli("notifications", "resend", requeued[0], "--json", env=fixed,
                           code=2).stdout)
    assert (again["error"]["code"], again["error"]["field"]) == ("conflict", "ids")
    assert json.loads(cli("notifications", "resend", "--failed", "--json",
                          env=fixed).stdout) == {"requeued": []}
