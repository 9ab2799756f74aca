"""``agent.conflicts.judge``: related decisions are always listed; only older decisions
supersede a newer one or make it wait, so no two decisions wait for (or drop) each other."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from decisionops.agent.conflicts import judge
from decisionops.agent.errors import ConfigError
from decisionops.agent.models import RelatedDecision
from decisionops.agent.playbooks import PlaybookBook, load_playbooks

T0 = datetime(2026, 11, 20, 8, tzinfo=UTC)


def _book(tmp_path: Path, *, churn: str = "", late: str = "") -> PlaybookBook:
    folder = tmp_path / "pb"
    folder.mkdir(exist_ok=True)
    step = ("steps: [{id: s, function: sales, tool: crm.create_task, arguments: "
            "{account_id: a, owner_role: account_manager, subject: s, due_in_days: 1}}]")
    (folder / "x.yaml").write_text(
        f"- {{name: churn-retention, kind: churn, trigger: {{min_score: 0.5}}, {churn}\n"
        f"   {step}}}\n"
        f"- {{name: late-payment-collections, kind: late_payment, "
        f"trigger: {{min_score: 0.5}}, {late}\n   {step}}}\n")
    return load_playbooks(folder)


def _open(decision: str, kind: str, minutes: int) -> tuple[RelatedDecision, datetime]:
    playbook = "churn-retention" if kind == "churn" else "late-payment-collections"
    return (RelatedDecision(decision_id=decision, kind=kind, status="awaiting_approval",
                            playbook=playbook, steps=("sales:s crm.create_task",)),
            T0 + timedelta(minutes=minutes))


def test_related_decisions_are_listed_without_rules(tmp_path: Path) -> None:
    verdict = judge(kind="late_payment", playbook="late-payment-collections",
                    created=(T0 + timedelta(minutes=5), "dec_new"),
                    others=[_open("dec_a", "churn", 0)], book=_book(tmp_path))
    assert [r.decision_id for r in verdict.related] == ["dec_a"]
    assert verdict.superseded_by is None and verdict.waits_for == []


def test_an_older_superseding_decision_drops_the_newer_one_only(tmp_path: Path) -> None:
    book = _book(tmp_path, churn="supersedes: [late_payment],")
    newer = judge(kind="late_payment", playbook="late-payment-collections",
                  created=(T0 + timedelta(minutes=5), "dec_new"),
                  others=[_open("dec_a", "churn", 0)], book=book)
    assert newer.superseded_by.decision_id == "dec_a"
    assert newer.reason.startswith("superseded by open decision dec_a (churn")
    older = judge(kind="late_payment", playbook="late-payment-collections",
                  created=(T0, "dec_old"), others=[_open("dec_a", "churn", 5)], book=book)
    assert older.superseded_by is None


def test_waits_for_older_decisions_only(tmp_path: Path) -> None:
    book = _book(tmp_path, late="waits_for: [churn],", churn="waits_for: [late_payment],")
    late = judge(kind="late_payment", playbook="late-payment-collections",
                 created=(T0 + timedelta(minutes=1), "dec_l"),
                 others=[_open("dec_c", "churn", 0)], book=book)
    churn = judge(kind="churn", playbook="churn-retention", created=(T0, "dec_c"),
                  others=[_open("dec_l", "late_payment", 1)], book=book)
    assert [r.decision_id for r in late.waits_for] == ["dec_c"]
    assert late.reason == "waits for dec_c (churn, awaiting_approval)"
    assert churn.waits_for == []  # mutual rules: only the newer waits
    # Same creation time: the id breaks the tie.
    tie = judge(kind="churn", playbook="churn-retention", created=(T0, "dec_b"),
                others=[_open("dec_a", "late_payment", 0)], book=book)
    assert [r.decision_id for r in tie.waits_for] == ["dec_a"]


@pytest.mark.parametrize("rule", ["supersedes: [Churn],", "waits_for: [churn-x],"])
def test_rules_name_kinds(tmp_path: Path, rule: str) -> None:
    with pytest.raises(ConfigError):
        _book(tmp_path, late=rule)
