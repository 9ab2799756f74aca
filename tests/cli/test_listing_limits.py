"""A listing cut at its ``--limit`` says so, with how to see more (trial 17 F1:
``approvals list`` showed 100 of 228 requests, ``predictions queue`` 50 of 122, and
nothing said the rest were there); under ``--json`` the note is on stderr and stdout
stays one JSON document. A listing that holds everything says nothing."""

from __future__ import annotations

import json

import pytest

from decisionops.agent.cli._common import say_more
from tests.cli.conftest import Cli

NOTE = "the first 2 shown; there are more (--limit up to "


@pytest.fixture
def busy(cli: Cli) -> Cli:
    path = cli.cwd / "p.jsonl"
    rows = [{"id": f"p-{i}", "model": "m", "kind": "churn", "entity_type": "account",
             "entity_id": f"ACC-{10001 + i}", "score": 0.9, "value_at_stake": 40000,
             "observed_at": "2026-11-01T09:00:00Z"} for i in range(4)]
    # Two the loop cannot act on (no value at stake): the needs-a-human queue holds both.
    rows += [{"id": f"q-{i}", "model": "m", "kind": "churn", "entity_type": "account",
              "entity_id": f"ACC-{10101 + i}", "score": 0.9,
              "observed_at": "2026-11-01T09:00:00Z"} for i in range(3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cli("ingest", str(path))
    cli("run", "--once")
    return cli


@pytest.mark.parametrize("listing", [
    ("approvals", "list"), ("decisions", "list"), ("predictions", "list"),
    ("predictions", "queue"), ("ledger", "list")])
def test_a_listing_cut_at_its_limit_says_there_are_more(busy: Cli,
                                                        listing: tuple[str, str]) -> None:
    table = busy(*listing, "--limit", "2")
    assert NOTE in table.stdout
    as_json = busy(*listing, "--limit", "2", "--json")
    assert len(json.loads(as_json.stdout)) == 2
    assert NOTE in as_json.stderr
    whole = busy(*listing, "--limit", "10000", "--json")
    assert len(json.loads(whole.stdout)) > 2 and "there are more" not in whole.stderr


def test_at_the_largest_limit_it_says_to_narrow_the_listing(
        capsys: pytest.CaptureFixture[str]) -> None:
    say_more(10_000, 10_000, as_json=False)
    say_more(50, 10_000, as_json=True)
    out, err = capsys.readouterr()
    assert out.strip() == ("the first 10,000 shown; there are more (narrow the listing with "
                           "its filters)")
    assert err.strip() == "the first 50 shown; there are more (--limit up to 10,000)"
