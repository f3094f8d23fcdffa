"""Stored exchanges: what a dialect with a `store` section keeps so a client can continue a conversation
by id (e.g. a `previous_response_id`) instead of resending it.

A row holds the whole canonical history of one exchange: the messages the gateway sent (earlier stored
turns included) and the canonical assistant message it got back, last. Continuing from it needs that
one row only, so a chain of N turns never reads N rows.

Each row belongs to the key that made it: a virtual key by its id, or the gateway's own space (None)
for the master key and for every caller of a gateway without one. Only its owner can load it; for
anyone else it does not exist, exactly as an unknown id, so the answer is no oracle of which ids are
stored. A row lives `ttl` seconds from its save (each turn is a new row, with its own lifetime), is
refused from then on, and is deleted by `purge`, which runs off the request path. A revoked key's rows
can no longer be loaded by anyone (the key is refused before) and go at the next purge too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, String, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.api_key import ApiKeyRow
from engine.store.base import Base, as_utc

__all__ = ["ConversationStore", "StoredExchange"]


class StoredExchange(Base):
    __tablename__ = "stored_exchanges"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)  # the id the dialect gave its answer
    dialect: Mapped[str] = mapped_column(String(50))  # ids are looked up within the dialect that made them
    # the virtual key that made it, the only one that may continue it; None: the gateway's own space
    # (the master key, or any caller when no master key is set)
    key_id: Mapped[int | None] = mapped_column(index=True)
    model: Mapped[str] = mapped_column(String(200))  # the alias the client asked for
    messages: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # canonical, the assistant answer last
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)  # refused from then on, then purged


class ConversationStore:
    """Load and save exchanges through the gateway's session factory (one short session each).

    `ttl` is how long a saved exchange lives, in seconds; `clock` gives the time in epoch seconds."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        ttl: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._ttl = timedelta(seconds=ttl)
        self._clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def load(self, dialect: str, exchange_id: str, owner: int | None) -> list[dict[str, Any]] | None:
        """The stored history under `exchange_id`, or None when unknown, expired, another dialect's or
        another owner's (all alike to the caller)."""
        async with self._sessions() as session:
            row = await session.get(StoredExchange, exchange_id)
        if row is None or row.dialect != dialect or row.key_id != owner:
            return None
        if as_utc(row.expires_at) <= self._now():
            return None
        return list(row.messages)

    async def save(
        self, dialect: str, exchange_id: str, owner: int | None, model: str, messages: list[dict[str, Any]]
    ) -> None:
        """Keep `messages` under `exchange_id` for `owner`, replacing what an earlier save kept under it."""
        now = self._now()
        row = StoredExchange(
            id=exchange_id,
            dialect=dialect,
            key_id=owner,
            model=model,
            messages=messages,
            created_at=now,
            expires_at=now + self._ttl,
        )
        async with self._sessions() as session, session.begin():
            await session.merge(row)

    async def purge(self) -> int:
        """Delete the expired rows and those of revoked keys; how many went."""
        revoked = select(ApiKeyRow.id).where(ApiKeyRow.revoked_at.is_not(None))
        statement = (
            delete(StoredExchange)
            .where(or_(StoredExchange.expires_at <= self._now(), StoredExchange.key_id.in_(revoked)))
            .execution_options(synchronize_session=False)
        )
        async with self._sessions() as session, session.begin():
            result = await session.execute(statement)
        return int(getattr(result, "rowcount", 0) or 0)
