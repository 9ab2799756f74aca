"""Credentials (catalog A1, A5) and the web inbox: no token, bad, revoked or expired
tokens; session cookies and CSRF; escaping; chat cannot approve."""

from __future__ import annotations

import re
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from decisionops.agent.api import ServiceSettings, create_app, issue_token
from decisionops.agent.errors import ConfigError
from decisionops.agent.models import utcnow
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from decisionops.agent.store import _service_tables as st
from tests.api.conftest import Service, add_users, churn_record, make_app


def _login(svc: Service, user: str) -> str:
    """Log in through the form; returns the session's CSRF token."""
    form = svc.client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    done = svc.client.post("/login", data={"token": svc.tokens[user], "csrf_token": csrf,
                                           "next": "/inbox"}, follow_redirects=False)
    assert done.status_code == 303, done.text
    cookie = done.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    page = svc.client.get("/inbox")
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text).group(1)


def test_api_refuses_missing_wrong_revoked_and_expired_tokens(svc: Service) -> None:
    assert svc.client.get("/v1/approvals").status_code == 401
    bad = svc.client.get("/v1/approvals", headers={"Authorization": "Bearer dops_nope"})
    assert bad.status_code == 401 and bad.headers["WWW-Authenticate"] == "Bearer"
    basic = svc.client.get("/v1/approvals", headers={"Authorization": "Basic ZGFuYTp4"})
    assert basic.status_code == 401
    assert svc.get("/v1/me", "dana").json()["functions"] == ["finance"]
    svc.rt.store.users.revoke("dana", actor="test")
    assert svc.get("/v1/me", "dana").status_code == 401
    token, token_id = issue_token(svc.rt, "raj", actor="test", expires_days=1)
    headers = {"Authorization": f"Bearer {token}"}
    assert svc.client.get("/v1/me", headers=headers).status_code == 200
    with svc.rt.store.transaction() as conn:
        conn.execute(st.api_tokens.update().where(st.api_tokens.c.id == token_id)
                     .values(expires_at=utcnow() - timedelta(seconds=1)))
    assert svc.client.get("/v1/me", headers=headers).status_code == 401
    stored = [r.token_hash for r in _tokens(svc)]
    assert token not in stored and all(len(h) == 64 for h in stored)


def _tokens(svc: Service) -> list:
    with svc.rt.store.reading() as conn:
        return list(conn.execute(st.api_tokens.select()))


def test_web_login_session_and_csrf(svc: Service) -> None:
    assert svc.client.get("/inbox", follow_redirects=False).status_code == 303
    no_cookie = svc.client.post("/login", data={"token": svc.tokens["dana"], "csrf_token": "x"})
    assert no_cookie.status_code == 403  # cross-site form post: no double-submit cookie
    csrf = _login(svc, "dana")
    assert svc.client.get("/v1/me").json()["name"] == "dana"  # the cookie authenticates
    # Unsafe API calls with the cookie need the CSRF header.
    assert svc.client.post("/v1/chat", json={"message": "help"}).status_code == 403
    ok = svc.client.post("/v1/chat", json={"message": "help"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200
    decision = svc.decide()
    approval = svc.pending(decision)["finance"]
    forged = svc.client.post(f"/inbox/{approval['id']}", data={
        "action": "approve", "plan_hash": approval["plan_hash"], "csrf_token": "wrong"})
    assert forged.status_code == 403
    assert svc.rt.store.approvals.get(approval["id"]).status == "pending"
    svc.rt.store.users.revoke("dana", actor="test")
    assert svc.client.get("/inbox", follow_redirects=False).status_code == 303  # session ended


def test_inbox_shows_evidence_and_escapes_everything(svc: Service) -> None:
    hostile = "<script>alert(1)</script>"
    decision = svc.decide(churn_record(region=hostile))
    _login(svc, "dana")
    inbox = svc.client.get("/inbox")
    text = inbox.text.replace("<wbr>", "")  # line-break offers inside long tokens
    assert "ACC-10004" in text and "finance.issue_credit" in text
    assert "Content-Security-Policy" in inbox.headers
    approval = svc.pending(decision)["finance"]
    page = svc.client.get(f"/inbox/requests/{approval['id']}")
    assert page.status_code == 200
    text = page.text.replace("<wbr>", "")
    assert hostile not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert 'class="node mine' in page.text  # the approver's part of the plan DAG
    assert "Northwind" in page.text or "account_manager" in page.text  # entity context
    assert '<label for="reject-reason">' in page.text


def test_web_form_answers_go_through_the_same_checks(svc: Service) -> None:
    decision = svc.decide()
    pending = svc.pending(decision)
    csrf = _login(svc, "dana")
    wrong = svc.client.post(f"/inbox/{pending['sales']['id']}", data={
        "action": "approve", "plan_hash": pending["sales"]["plan_hash"], "csrf_token": csrf})
    assert wrong.status_code == 403 and "sales" in wrong.text  # refused (as the API), shown
    # The same edits the API and the CLI refuse: another function's step, and no change.
    foreign = svc.client.post(f"/inbox/{pending['finance']['id']}", data={
        "action": "edit", "plan_hash": pending["finance"]["plan_hash"], "csrf_token": csrf,
        "arg.goodwill_credit.amount": "120", "arg.retention_offer.discount_pct": "5"})
    assert foreign.status_code == 422 and "not part of this approval" in foreign.text
    unchanged = svc.client.post(f"/inbox/{pending['finance']['id']}", data={
        "action": "edit", "plan_hash": pending["finance"]["plan_hash"], "csrf_token": csrf})
    assert unchanged.status_code == 422 and "changes no argument" in unchanged.text
    assert svc.rt.store.approvals.get(pending["finance"]["id"]).status == "pending"
    edit = svc.client.post(f"/inbox/{pending['finance']['id']}", data={
        "action": "edit", "plan_hash": pending["finance"]["plan_hash"], "csrf_token": csrf,
        "arg.goodwill_credit.amount": "120", "arg.goodwill_credit.currency": "EUR"},
        follow_redirects=False)
    assert edit.status_code == 303 and edit.headers["location"].startswith(f"/decisions/{decision}")
    row = svc.rt.store.approvals.get(pending["finance"]["id"])
    assert row.status == "edited" and row.approved_arguments["goodwill_credit"]["amount"] == 120
    assert [r["reason"] for r in svc.refusals(decision)] == ["wrong_function"]


def test_chat_cannot_approve(svc: Service) -> None:
    decision = svc.decide()
    for text in ("approve all pending", "Approve apr_x", "reject it", "edit the credit to 500"):
        reply = svc.post("/v1/chat", "olga", {"message": text}).json()["reply"]
        assert "cannot approve" in reply
    assert svc.pending(decision).keys() == {"finance", "sales"}
    assert svc.post("/v1/chat", "feeder", {"message": "help"}).status_code == 403


def test_the_request_page_shows_other_open_decisions_on_the_entity(svc: Service) -> None:
    # An operator hold on sales keeps the late-payment decision open (its steps are all
    # within auto-approve policy, so it would otherwise run and finish at once).
    svc.rt.approvals.hold("sales", until=utcnow() + timedelta(hours=1),
                          reason="quarter close", actor="olga")
    dunning = svc.decide({**churn_record("late-api-1"), "kind": "late_payment",
                          "features": {"invoice_id": "INV-7"}})
    assert svc.rt.store.decisions.get(dunning).status == "held"
    offer = svc.decide()
    _login(svc, "raj")
    sales = svc.pending(offer)["sales"]
    (related,) = sales["request"]["related"]
    assert (related["decision_id"], related["kind"], related["status"]) == (
        dunning, "late_payment", "held")
    page = svc.client.get(f"/inbox/{sales['id']}").text.replace("<wbr>", "")
    assert 'id="related"' in page and "Other open decisions on ACC-10004" in page
    assert f'href="/decisions/{dunning}"' in page
    assert "sales:payment_call crm.create_task" in page
    alone = svc.decide(churn_record("churn-api-9", account="ACC-10003"))
    assert 'id="related"' not in svc.client.get(
        f"/inbox/{svc.pending(alone)['sales']['id']}").text


def test_a_session_survives_a_restart_of_the_service(tmp_path: Path) -> None:
    """Without session_secret the key is made once and kept in the data folder, owner-only
    (trial: a restart of serve logged every approver out, and an answer posted then was
    lost to the login page); a kept key that is not one is refused, naming it."""
    home = tmp_path / "home"
    first = make_app(home, session_secret=None)
    with TestClient(first) as client:
        _login(Service(first, client, add_users(first)), "dana")
        cookies = dict(client.cookies)
    kept = home / "session_secret"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert not list(home.glob(".session_secret.*"))  # nothing left aside

    def restarted() -> FastAPI:  # the same data folder served again
        conf = Settings(home=home)
        return create_app(conf, service=ServiceSettings(worker_interval_seconds=0),
                          runtime_factory=lambda: Runtime(conf, actor="api-test"))

    with TestClient(restarted(), cookies=cookies) as client:
        page = client.get("/inbox", follow_redirects=False)
        assert page.status_code == 200, page.headers
    kept.write_text("short\n")
    with pytest.raises(ConfigError, match="session_secret: not a session key"), \
            TestClient(restarted()):
        pass


def test_a_true_false_field_of_the_edit_form_takes_true_or_false_only(svc: Service) -> None:
    """(trial 23: the inbox turned any text but true/1/yes/on into false: an approver who
    typed "Y" for yes approved the purchase order not expedited; the API and the CLI
    refuse "Y".) true or false, as every channel takes it; anything else is refused
    naming the field, and nothing changes."""
    from decisionops.agent.api import add_user
    from tests.api.test_api_approvals import _failure_record

    token, _ = add_user(svc.rt, "sue@supply", role="approver", functions=["supply_chain"],
                        actor="test")
    svc.tokens["sue"] = token
    record = _failure_record("failure-web-1") | {"features": {
        **_failure_record("x")["features"], "remaining_useful_life_hours": 60.0}}
    supply = svc.pending(svc.decide(record))["supply_chain"]
    csrf = _login(svc, "sue")
    page = svc.client.get(f"/inbox/requests/{supply['id']}")
    assert 'name="arg.spare_part.expedite" value="true"' in page.text  # as JSON says it
    form = {"action": "edit", "plan_hash": supply["plan_hash"], "csrf_token": csrf}
    if supply.get("preview_hash"):
        form["preview_hash"] = supply["preview_hash"]
    for said in ("Y", "yes", "0"):  # as the API's JSON and the CLI's --set refuse them
        refused = svc.client.post(f"/inbox/{supply['id']}",
                                  data=form | {"arg.spare_part.expedite": said})
        assert refused.status_code == 422, refused.text
        assert "spare_part.expedite" in refused.text and "must be a boolean" in refused.text
    assert svc.rt.store.approvals.get(supply["id"]).status == "pending"
    taken = svc.client.post(f"/inbox/{supply['id']}", data=form | {
        "arg.spare_part.expedite": " False "}, follow_redirects=False)
    assert taken.status_code == 303, taken.text
    row = svc.rt.store.approvals.get(supply["id"])
    assert row.status == "edited" and row.approved_arguments["spare_part"]["expedite"] is False
