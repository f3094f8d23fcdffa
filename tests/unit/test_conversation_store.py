"""The conversation store on SQLite: owners, expiry on an injected clock, and the purge."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from engine.keys import KeyService
from engine.keys.service import key_changes
from engine.store.base import as_utc
from engine.store.conversation import ConversationStore, StoredExchange
from engine.store.db import create_engine, session_factory
from engine.store.models import Base
from tests.support import FakeClock

TTL = 3600.0
HISTORY: list[dict[str, Any]] = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]

Scenario = Callable[[ConversationStore, KeyService, Any], Awaitable[None]]


def _run(tmp_path: Path, clock: FakeClock, scenario: Scenario) -> None:
    async def main() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
        try:
            async with engine.begin() as connection:
                await connection.run_sync(Base.metadata.create_all)
            sessions = session_factory(engine)
            await scenario(ConversationStore(sessions, ttl=TTL, clock=clock), KeyService(sessions), sessions)
        finally:
            await engine.dispose()

    asyncio.run(main())


def test_a_save_records_its_owner_and_when_it_expires(tmp_path: Path) -> None:
    clock = FakeClock()

    async def scenario(store: ConversationStore, _keys: KeyService, sessions: Any) -> None:
        await store.save("responses", "resp_1", 7, "gpt-4", HISTORY)
        async with sessions() as session:
            row = await session.get(StoredExchange, "resp_1")
        assert row.key_id == 7
        assert as_utc(row.created_at) == datetime.fromtimestamp(clock(), UTC)
        assert as_utc(row.expires_at).timestamp() == clock() + TTL

    _run(tmp_path, clock, scenario)


def test_only_the_owner_loads_and_only_until_it_expires(tmp_path: Path) -> None:
    clock = FakeClock()

    async def scenario(store: ConversationStore, _keys: KeyService, _sessions: Any) -> None:
        await store.save("responses", "resp_key", 7, "gpt-4", HISTORY)
        await store.save("responses", "resp_own", None, "gpt-4", HISTORY)
        assert await store.load("responses", "resp_key", 7) == HISTORY
        assert await store.load("responses", "resp_key", 8) is None
        assert await store.load("responses", "resp_key", None) is None  # the gateway's own space is apart
        assert await store.load("responses", "resp_own", None) == HISTORY
        assert await store.load("responses", "resp_own", 7) is None
        assert await store.load("anthropic", "resp_key", 7) is None
        clock.advance(TTL - 1)
        assert await store.load("responses", "resp_key", 7) == HISTORY
        clock.advance(1)
        assert await store.load("responses", "resp_key", 7) is None

    _run(tmp_path, clock, scenario)


def test_the_purge_deletes_expired_rows_and_those_of_revoked_keys(tmp_path: Path) -> None:
    clock = FakeClock()

    async def scenario(store: ConversationStore, keys: KeyService, sessions: Any) -> None:
        revoked_key, revoked = await keys.create(key_changes({}))
        _, kept = await keys.create(key_changes({}))
        await store.save("responses", "old", kept.id, "gpt-4", HISTORY)
        clock.advance(TTL / 2)
        await store.save("responses", "new", kept.id, "gpt-4", HISTORY)
        await store.save("responses", "own", None, "gpt-4", HISTORY)
        await store.save("responses", "of_revoked", revoked.id, "gpt-4", HISTORY)
        assert await store.purge() == 0
        await keys.revoke([revoked_key])
        clock.advance(TTL / 2)  # "old" has just expired
        assert await store.purge() == 2
        async with sessions() as session:
            left = await session.scalars(select(StoredExchange.id).order_by(StoredExchange.id))
            assert list(left) == ["new", "own"]
        clock.advance(TTL)
        assert await store.purge() == 2
        async with sessions() as session:
            assert await session.scalar(select(func.count()).select_from(StoredExchange)) == 0

    _run(tmp_path, clock, scenario)
