"""DecisionOps runtime: domain models, settings, triage, policy, planners, store, ledger.

Core modules here import neither ``graphs`` nor ``tools``; only the composition root
(``agent.runtime`` and the CLI built on it) wires them together.
"""

__all__: list[str] = []
