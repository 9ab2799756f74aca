"""The adversarial suite: attacks on the approval protocol, the executor and the
planners, each judged by what the reference enterprise recorded.

Every case attacks a runtime on temporary files of its own (``Arena``) and checks that
the attack was refused while the legitimate work still happened; then every effect is
audited (``audit_effects``): an effect is *outside policy* unless an answer that grants
approval for the decision's current plan version, by someone policy allows, approved its
exact arguments, within the function's tools, limits and totals, on the targets the
plan proposed, outside any hold, and carrying nothing an attacker planted.

::

    run_suite(all_cases()) -> SuiteReport      report.line(): "effects outside policy: 0 of N"
    audit_effects(store, enterprise, policies, tools, taints=()) -> EffectAudit
    print_suite(report, console) / write_suite(report, path)

Run it with ``decisionops eval --suite adversarial`` or ``pytest
tests/reliability/test_adversarial.py``.
"""

from decisionops.evals.adversarial._arena import Arena, CaseFailed, predict
from decisionops.evals.adversarial._audit import AuditedEffect, EffectAudit, Taint, Violation, audit_effects
from decisionops.evals.adversarial._report import print_suite, write_suite
from decisionops.evals.adversarial._suite import (
    FINDINGS,
    Case,
    CaseResult,
    SuiteReport,
    World,
    run_case,
    run_suite,
)

__all__ = [
    "FINDINGS",
    "Arena",
    "AuditedEffect",
    "Case",
    "CaseFailed",
    "CaseResult",
    "EffectAudit",
    "SuiteReport",
    "Taint",
    "Violation",
    "World",
    "all_cases",
    "audit_effects",
    "predict",
    "print_suite",
    "run_case",
    "run_suite",
    "write_suite",
]


def all_cases() -> list[Case]:
    """Every case, grouped by finding."""
    from decisionops.evals.adversarial import (
        _cases_answers,
        _cases_cache,
        _cases_edits,
        _cases_faults,
        _cases_four_eyes,
        _cases_holds,
        _cases_injection,
        _cases_ledger,
        _cases_tool_outputs,
        _cases_totals,
    )

    modules = (_cases_edits, _cases_four_eyes, _cases_answers, _cases_totals, _cases_cache,
               _cases_holds, _cases_faults, _cases_ledger, _cases_injection,
               _cases_tool_outputs)
    return [case for module in modules for case in module.CASES]
