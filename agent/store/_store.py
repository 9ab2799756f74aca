"""``Store``: our tables (SQLAlchemy 2 Core) on SQLite or PostgreSQL, as one repository
per aggregate over one ``Database``.

::

    store.predictions   accepting predictions, triage verdicts       (_predictions)
    store.decisions     decision rows, status transitions, leases   (_decisions)
    store.plans         plan versions and their steps               (_plans)
    store.approvals     approval requests and answers, proposals    (_approvals)
    store.executions    write-ahead records of tool calls           (_executions)
    store.holds         operator holds                              (_holds)
    store.ledger        the ledger's entries, search, archival      (_archive)
    store.outcomes      outcomes and the value report's reads       (_outcomes)
    store.llm           LLM calls, spend, the plan cache            (_llm)
    store.users         users and API tokens                        (_users)
    store.webhooks      webhook deliveries                          (_webhooks)
    store.chat          ops chat conversations                      (_chat)
    store.ops           retention and source state                  (_ops)
    store.notifications approver notification outbox                (_outbox)
    store.autonomy      earned autonomy: answered step classes, states  (_autonomy)

Every write of a decision goes through ``store.decision_tx`` (fence check, the writes,
the ledger entries, one commit); see ``_db``. Persistence only: no policy, no graph, no
tools.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from sqlalchemy import Connection

from decisionops.agent.store._approvals import ApprovalRepo
from decisionops.agent.store._archive import LedgerRepo
from decisionops.agent.store._autonomy import AutonomyRepo
from decisionops.agent.store._chat import ChatRepo
from decisionops.agent.store._db import Database, DecisionTx
from decisionops.agent.store._decisions import DecisionRepo
from decisionops.agent.store._engine import HEAD_REVISION, create_store_engine, current_revision, upgrade
from decisionops.agent.store._executions import ExecutionRepo
from decisionops.agent.store._hand_plans import HandPlanRepo
from decisionops.agent.store._holds import HoldRepo
from decisionops.agent.store._llm import LLMRepo
from decisionops.agent.store._notify import WAKE, Listener
from decisionops.agent.store._ops import OpsRepo
from decisionops.agent.store._outbox import NotificationRepo
from decisionops.agent.store._outcomes import OutcomeRepo
from decisionops.agent.store._plans import PlanRepo
from decisionops.agent.store._prediction_views import PredictionViewRepo
from decisionops.agent.store._predictions import PredictionRepo
from decisionops.agent.store._users import UserRepo
from decisionops.agent.store._webhooks import WebhookRepo

__all__ = ["Store"]


class Store:
    """Our tables. Construct with :meth:`open`, which migrates the schema to head."""

    def __init__(self, engine: object) -> None:
        self.db = Database(engine)  # type: ignore[arg-type]
        self.engine = self.db.engine
        self.predictions = PredictionRepo(self.db)
        self.prediction_views = PredictionViewRepo(self.db, self.predictions)
        self.decisions = DecisionRepo(self.db)
        self.plans = PlanRepo(self.db)
        self.hand_plans = HandPlanRepo(self.db)
        self.approvals = ApprovalRepo(self.db)
        self.executions = ExecutionRepo(self.db)
        self.holds = HoldRepo(self.db)
        self.ledger = LedgerRepo(self.db)
        self.outcomes = OutcomeRepo(self.db)
        self.llm = LLMRepo(self.db)
        self.users = UserRepo(self.db)
        self.webhooks = WebhookRepo(self.db)
        self.chat = ChatRepo(self.db)
        self.ops = OpsRepo(self.db)
        self.notifications = NotificationRepo(self.db)
        self.autonomy = AutonomyRepo(self.db)

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        engine = create_store_engine(url)
        if migrate and current_revision(engine) != HEAD_REVISION:
            upgrade(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def decision_tx(self, decision_id: str, *, fence: int | None, actor: str,
                    durable: bool = False) -> AbstractContextManager[DecisionTx]:
        """The unit of work of a decision (see ``_db.Database.decision_tx``)."""
        return self.db.decision_tx(decision_id, fence=fence, actor=actor, durable=durable)

    def listen(self, callback: Callable[[], None]) -> Listener | None:
        """Call ``callback`` whenever any process records an answer, releases a hold or
        stores predictions (PostgreSQL; None on SQLite, where the answering process wakes
        its own loop)."""
        return None if self.db.sqlite else Listener(self.engine, WAKE, callback)

    def exclusive(self, name: str) -> AbstractContextManager[bool]:
        """A cluster-wide section only one worker runs at a time (never waits)."""
        return self.db.exclusive(name)

    def transaction(self, *, durable: bool = False) -> AbstractContextManager[Connection]:
        return self.db.transaction(durable=durable)

    def reading(self) -> AbstractContextManager[Connection]:
        return self.db.reading()

