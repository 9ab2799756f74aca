"""``decisionops --version`` and Typer's shell completion (``--show-completion``,
``--install-completion``), as a user runs them."""

from __future__ import annotations

from importlib.metadata import version

from tests.cli.conftest import Cli


def test_version_prints_the_installed_version(cli: Cli) -> None:
    out = cli("--version").stdout
    assert out.strip() == f"decisionops {version('decisionops')}"


def test_show_completion_prints_a_bash_script_for_decisionops(cli: Cli) -> None:
    out = cli("--show-completion", "bash").stdout
    assert "_DECISIONOPS_COMPLETE=complete_bash" in out
    assert "complete -o default -F" in out and "decisionops" in out


def test_completion_completes_command_groups(cli: Cli) -> None:
    proc = cli(env={"_DECISIONOPS_COMPLETE": "complete_bash", "COMP_WORDS": "decisionops appr",
                    "COMP_CWORD": "1"})
    assert proc.stdout.split() == ["approvals"]
