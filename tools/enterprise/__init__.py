"""The reference enterprise: SQLite-backed CRM, support, finance, ERP, maintenance,
operations and notification systems that the demo acts on and the tests inspect.

Public surface: ``Enterprise`` (create, seed, perform/read for tools, fault injection,
queries), the records it returns, and ``reference_world()`` (the deterministic master
data the seed and the sample predictions share). Tables are in
``tools.enterprise.schema``; the sample generator is ``tools.enterprise.samples``.
Tool semantics live in the tool modules (``tools.crm`` …), not here.
"""

from decisionops.tools.enterprise._catalog import World, reference_world
from decisionops.tools.enterprise._enterprise import Effect, EffectContext, Enterprise, Performed, utc_iso
from decisionops.tools.enterprise._faults import ANY_TOOL, Fault, FaultMode

__all__ = [
    "ANY_TOOL",
    "Effect",
    "EffectContext",
    "Enterprise",
    "Fault",
    "FaultMode",
    "Performed",
    "World",
    "reference_world",
    "utc_iso",
]
