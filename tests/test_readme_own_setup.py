"""The README's "Your own kinds, playbooks, policies and planner" example works as
written: its decisionops.toml, playbook and functions file load from a folder of their
own, pass the start checks, and a fraud prediction gets its plan, support's part approved
by policy and finance's asked of its approvers."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from decisionops.agent.models import Prediction
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from tests.support import approver, pending, start_decisions

REPO = Path(__file__).resolve().parents[1]


def _blocks(language: str) -> list[str]:
    readme = (REPO / "README.md").read_text("utf-8")
    section = readme.split("\n## Your own kinds, playbooks, policies and planner\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    return re.findall(rf"^```{language}\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)


def test_the_own_setup_example(tmp_path: Path) -> None:
    (toml,) = _blocks("toml")
    playbook, functions = _blocks("yaml")
    config = tomllib.loads(toml)
    (tmp_path / config["playbooks_dir"]).mkdir()
    (tmp_path / config["playbooks_dir"] / "fraud.yaml").write_text(playbook)
    (tmp_path / config["functions_file"]).write_text(functions)
    settings = Settings(home=tmp_path / "home", holdout_share=0,
                        playbooks_dir=tmp_path / config["playbooks_dir"],
                        functions_file=tmp_path / config["functions_file"])
    with Runtime(settings, actor="test") as rt:  # the start checks pass
        assert "fraud" in rt.playbooks.kinds()
        for name in ("sam@support", "dana@finance", "omar@finance"):
            approver(rt, name)
        rt.ingest([Prediction(id="f-1", model="fraud-xgb", kind="fraud",
                              entity_type="account", entity_id="ACC-10004", score=0.93,
                              value_at_stake=5_000, features={"refund": 40},
                              observed_at="2026-11-20T08:00:00Z")], source="test")
        rt.triage_pending()
        (result,) = start_decisions(rt)
        asked = pending(rt, result.decision_id)
        assert set(asked) == {"finance"}  # support's low-risk step: approved by policy
        steps = [s["id"] for s in asked["finance"]["request"]["steps"]]
        assert steps == ["refund"]
