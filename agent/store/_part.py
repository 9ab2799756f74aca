"""``StorePart``: what the parts of ``Store`` (the ``*Records`` mixins) use of the whole.
``Store`` defines these; the declarations here only give each part their signatures,
and come last in ``Store``'s method resolution order."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine

from agent.store.ledger import Event, LedgerEntry

if TYPE_CHECKING:
    from agent.models import Plan

__all__ = ["StorePart"]


class StorePart:
    engine: Engine

    def transaction(self, *, durable: bool = False) -> AbstractContextManager[Connection]:
        raise NotImplementedError  # pragma: no cover

    def reading(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError  # pragma: no cover

    def record(self, conn: Connection, events: Iterable[Event], at: datetime | None = None
               ) -> list[LedgerEntry]:
        raise NotImplementedError  # pragma: no cover

    def check_fence(self, conn: Connection, decision_id: str, fence: int | None) -> None:
        raise NotImplementedError  # pragma: no cover

    def store_plan(self, conn: Connection, plan: Plan, *, verdict: str,
                   problems: Sequence[str] = (), actor: str, supersede_previous: bool = False,
                   record: dict[str, Any] | None = None, now: datetime) -> list[Event]:
        raise NotImplementedError  # pragma: no cover
