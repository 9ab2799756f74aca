"""The store: our own tables (SQLAlchemy 2 Core) on SQLite or PostgreSQL, and the ledger.

``Store`` is the only way the runtime reads or writes them; every write that is a
transition appends its ledger entry in the same transaction.
"""

from agent.store._claims import Claim
from agent.store._engine import create_store_engine, current_revision, head_revision, upgrade
from agent.store._work import CallEnd, CallStart, FinishedCalls
from agent.store.ledger import Event, LedgerEntry, VerifyReport
from agent.store.repository import IngestResult, Store

__all__ = [
    "CallEnd",
    "CallStart",
    "Claim",
    "Event",
    "FinishedCalls",
    "IngestResult",
    "LedgerEntry",
    "Store",
    "VerifyReport",
    "create_store_engine",
    "current_revision",
    "head_revision",
    "upgrade",
]
