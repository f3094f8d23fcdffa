"""Stored exchanges: what a dialect with a `store` section keeps so a client can continue a conversation
by id (e.g. a `previous_response_id`) instead of resending it.

A row holds the whole canonical history of one exchange: the messages the gateway sent (earlier stored
turns included) and the canonical assistant message it got back, last. Continuing from it needs that
one row only, so a chain of N turns never reads N rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base, as_utc, utcnow

__all__ = ["ConversationStore", "StoredExchange"]


class StoredExchange(Base):
    __tablename__ = "stored_exchanges"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)  # the id the dialect gave its answer
    dialect: Mapped[str] = mapped_column(String(50))  # ids are looked up within the dialect that made them
    model: Mapped[str] = mapped_column(String(200))  # the alias the client asked for
    messages: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # canonical, the assistant answer last
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]  # None: kept until deleted


class ConversationStore:
    """Load and save exchanges through the gateway's session factory (one short session each)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def load(self, dialect: str, exchange_id: str) -> list[dict[str, Any]] | None:
        """The stored history under `exchange_id`, or None when unknown, expired or another dialect's."""
        async with self._sessions() as session:
            row = await session.get(StoredExchange, exchange_id)
        if row is None or row.dialect != dialect:
            return None
        if row.expires_at is not None and as_utc(row.expires_at) <= utcnow():
            return None
        return list(row.messages)

    async def save(self, dialect: str, exchange_id: str, model: str, messages: list[dict[str, Any]]) -> None:
        """Keep `messages` under `exchange_id`, replacing what an earlier save kept under it."""
        async with self._sessions() as session, session.begin():
            await session.merge(
                StoredExchange(id=exchange_id, dialect=dialect, model=model, messages=messages)
            )
