"""Outcomes and the value report read over the API (trial 13 L6: they could be recorded
over HTTP, but listing them or the report took the CLI on the server)."""

from __future__ import annotations

from datetime import timedelta

from decisionops.agent.models import utcnow
from decisionops.agent.report import build_report
from tests.api.conftest import Service, churn_record


def _record(svc: Service, label: str = "retained", value: float = 30_000, *,
            account: str = "ACC-10005") -> str:
    decision = svc.decide(churn_record(f"out-{account}", account=account))
    body = {"decision_id": decision, "label": label, "value_realized": value,
            "observed_at": (utcnow() - timedelta(hours=1)).isoformat()}
    response = svc.post("/v1/outcomes", "feeder", body)
    assert response.status_code == 201, response.text
    return decision


def test_outcomes_are_listed_as_the_cli_lists_them(svc: Service) -> None:
    decision = _record(svc)
    listed = svc.get("/v1/outcomes", "olga")
    assert listed.status_code == 200, listed.text
    [row] = listed.json()
    assert (row["decision_id"], row["arm"], row["label"], row["value_realized"],
            row["source"], row["recorded_by"]) == (decision, "treated", "retained", 30_000,
                                                   "api", "feeder")
    assert row == svc.rt.store.outcomes.outcome_list()[0] | {
        k: row[k] for k in row if k.endswith("_at")}  # times as JSON text
    assert svc.get("/v1/outcomes", "olga", params={"arm": "control"}).json() == []
    assert len(svc.get("/v1/outcomes", "root", params={"kind": "churn",
                                                       "since": "7d"}).json()) == 1
    assert svc.get("/v1/outcomes", "olga", params={"since": "2000-01-01"}).json() == [row]


def test_the_report_is_the_figures_build_report_makes(svc: Service) -> None:
    _record(svc)
    _record(svc, label="churned", value=0, account="ACC-10006")
    response = svc.get("/v1/report", "olga", params={"since": "30d"})
    assert response.status_code == 200, response.text
    got = response.json()
    want = build_report(svc.rt.store, since=utcnow() - timedelta(days=30)).model_dump(
        mode="json")
    for key in ("outcomes", "counted_outcomes", "value", "uplift", "tools", "success_labels"):
        assert got[key] == want[key], key
    assert got["outcomes"] == 2 and got["value"][0]["treated_realized"] == 30_000
    # Success labels are read as outcomes spell them: "Churned" counts churned.
    churned = svc.get("/v1/report", "olga", params={"success": ["Churned"]}).json()
    assert churned["success_labels"] == ["churned"]


def test_bad_parameters_name_the_field_and_readers_without_the_right_are_refused(
        svc: Service) -> None:
    _record(svc)
    for path, params, field in (("/v1/outcomes", {"since": "yesterday-ish"}, "since"),
                                ("/v1/outcomes", {"arm": "both"}, "arm"),
                                ("/v1/outcomes", {"since": "2099-01-01"}, "since"),
                                ("/v1/report", {"since": "-3d"}, "since"),
                                ("/v1/report", {"success": ["=cmd()"]}, "success")):
        response = svc.get(path, "olga", params=params)
        assert response.status_code == 422, (path, params, response.text)
        assert response.json()["error"]["field"] == field, response.json()
    # Figures across every decision: operators and admins, not an approver (who sees
    # only their functions' decisions) nor an ingest feed (which reads nothing).
    for user in ("dana", "feeder"):
        assert svc.get("/v1/outcomes", user).status_code == 403
        assert svc.get("/v1/report", user).status_code == 403
    assert svc.client.get("/v1/report").status_code == 401
