"""``decisionops plan preview``: what the loop would do with a prediction, without a
decision; with another score (scenario analysis); nothing stored; bad input named."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Cli
from tests.cli.test_cross_process import HEADER, ROW

pytestmark = pytest.mark.slow


def _counts(cli: Cli) -> tuple[int, int, int]:
    return (len(cli.json("ledger", "list", "--limit", "100000")),
            len(cli.json("decisions", "list", "--limit", "10000")),
            len(cli.json("approvals", "list", "--status", "all", "--limit", "10000")))


def test_a_preview_shows_the_plan_its_routing_and_previews_and_stores_nothing(cli: Cli) -> None:
    path = cli.cwd / "p.csv"
    path.write_text(HEADER + ROW.format(id="pp-1", account="ACC-10004", value=40000))
    cli("ingest", str(path))  # not triaged, no decision yet
    before = _counts(cli)
    out = cli.json("plan", "preview", "pp-1")
    assert out["triage"]["action"] == "act"
    routes = {r["function"]: r for r in out["routing"]}
    assert set(routes) == {"sales", "support", "finance"}
    assert routes["finance"]["approval"] == "people" and routes["support"]["approval"] == "policy"
    credit = routes["finance"]["previews"]["goodwill_credit"]["result"]
    assert credit["after"]["credits_issued"] == credit["before"]["credits_issued"] + 200
    assert out["plan"]["expected_value"] > 0
    text = cli("plan", "preview", "pp-1").stdout
    assert "nothing is stored" in text and "would change: ACC-10004: issued credits" in text
    assert _counts(cli) == before  # no decision, request or ledger entry

    low = cli.json("plan", "preview", "pp-1", "--score", "0.2")
    assert low["changed"] == {"score": 0.2}
    assert (low["triage"]["action"], low["triage"]["reason"]) == ("drop", "below_threshold")
    assert low["plan"] is None
    small = cli.json("plan", "preview", "pp-1", "--value", "5000")
    assert "finance" not in {r["function"] for r in small["routing"]}  # no credit under 20k

    assert "no prediction 'nope'" in cli("plan", "preview", "nope", code=2).stderr
    assert "--score" in cli("plan", "preview", "pp-1", "--score", "1.5", code=2).stderr
    assert "--value" in cli("plan", "preview", "pp-1", "--value", "-1", code=2).stderr
    assert _counts(cli) == before


def test_an_answer_at_the_command_line_binds_to_the_preview_hash_it_names(cli: Cli) -> None:
    path = cli.cwd / "p.csv"
    path.write_text(HEADER + ROW.format(id="pp-2", account="ACC-10006", value=40000))
    assert "p.csv: 1 row, 1 ingested" in " ".join(cli("ingest", str(path)).stdout.split())
    cli("run", "--once")
    cli.approvers("dana@finance")
    (finance,) = cli.json("approvals", "list", "--function", "finance")
    shown = cli.json("approvals", "show", finance["id"])
    bad = cli("approvals", "approve", finance["id"], "--as", "dana@finance",
              "--preview-hash", "deadbeef", code=2).stderr
    assert "--preview-hash: must be the 64 hex characters" in " ".join(bad.split())
    stale = cli("approvals", "approve", finance["id"], "--as", "dana@finance",
                "--preview-hash", "0" * 64, code=2).stderr
    # named as the CLI's option, as the bad format above
    assert stale.startswith("error: --preview-hash:") and "reload the request" in stale
    assert cli.json("approvals", "show", finance["id"])["approval"]["status"] == "pending"
    cli("approvals", "approve", finance["id"], "--as", "dana@finance",
        "--preview-hash", shown["preview_hash"])
    assert cli.json("approvals", "show", finance["id"])["approval"]["status"] == "approved"


def test_a_preview_says_what_the_loop_would_do_under_an_operator_hold(cli: Cli) -> None:
    """The preview triages as the loop does: a hold on the entity or the playbook drops
    the prediction there, so the preview drops it too and drafts no plan."""
    path = cli.cwd / "p.csv"
    path.write_text(HEADER + ROW.format(id="pp-3", account="ACC-10008", value=40000))
    cli("ingest", str(path))
    assert cli.json("plan", "preview", "pp-3")["triage"]["action"] == "act"
    playbook = cli.json("plan", "preview", "pp-3")["plan"]["playbook"]
    for target in (("ACC-10008",), (playbook,)):
        cli("holds", "add", *target, "--until", "+1d", "--reason", "disputed invoice")
        held = cli.json("plan", "preview", "pp-3")
        assert (held["triage"]["action"], held["triage"]["reason"]) == ("drop", "hold")
        assert f"{target[0]} is on hold" in held["triage"]["detail"] and held["plan"] is None
        assert held["triage"]["detail"].endswith("(disputed invoice)")  # the reason given
        cli("holds", "release", *target)
    assert cli.json("plan", "preview", "pp-3")["triage"]["action"] == "act"
