"""The store: our own tables (SQLAlchemy 2 Core) on SQLite or PostgreSQL, and the ledger.

``Store`` is the only way the runtime reads or writes them: one repository per
aggregate, and one unit of work (``Store.decision_tx``) through which every write of a
decision goes, appending its ledger entries in the same transaction.
"""

from decisionops.agent.store._autonomy import ClassState
from decisionops.agent.store._db import DecisionTx
from decisionops.agent.store._decisions import Claim
from decisionops.agent.store._engine import create_store_engine, current_revision, head_revision, upgrade
from decisionops.agent.store._executions import CallEnd, CallStart, FinishedCalls
from decisionops.agent.store._hand_plans import HandPlanRow
from decisionops.agent.store._holds import ActiveHolds
from decisionops.agent.store._prediction_views import OUTCOMES, PredictionView
from decisionops.agent.store._predictions import IngestResult
from decisionops.agent.store._rows import ApprovalRow, DecisionRow, ExecutionRow, HoldRow
from decisionops.agent.store._store import Store
from decisionops.agent.store.ledger import Event, LedgerEntry, VerifyReport

__all__ = [
    "OUTCOMES",
    "ActiveHolds",
    "ApprovalRow",
    "CallEnd",
    "CallStart",
    "Claim",
    "ClassState",
    "DecisionRow",
    "DecisionTx",
    "Event",
    "ExecutionRow",
    "FinishedCalls",
    "HandPlanRow",
    "HoldRow",
    "IngestResult",
    "LedgerEntry",
    "PredictionView",
    "Store",
    "VerifyReport",
    "create_store_engine",
    "current_revision",
    "head_revision",
    "upgrade",
]
