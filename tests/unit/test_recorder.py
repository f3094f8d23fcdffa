"""The request log's writer: batches, spend in the same transaction, retries, and a bounded buffer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select

from engine.store.api_key import ApiKeyRow
from engine.store.db import create_engine, session_factory
from engine.store.models import Base
from engine.store.request_log import RequestLogRow
from engine.usage.record import UsageRecord
from engine.usage.recorder import UsageRecorder


def _record(n: int, key_id: int | None = None, cost: str | None = None) -> UsageRecord:
    return UsageRecord(
        request_id=f"r{n:031d}",
        created_at=datetime.now(UTC),
        operation="chat",
        alias="gpt-4",
        key_id=key_id,
        cost=Decimal(cost) if cost else None,
        latency_ms=1.0,
    )


def test_batches_are_written_with_the_keys_spend(tmp_path: Path) -> None:
    async def run() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'log.db'}")
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        sessions = session_factory(engine)
        async with sessions() as session, session.begin():
            session.add(ApiKeyRow(id=1, key_hash="h" * 64, key_prefix="sk-abcde", models=[], key_metadata={}))
        recorder = UsageRecorder(sessions, flush_interval=60, batch_size=3)
        recorder.start()
        for n in range(7):
            recorder.add(_record(n, key_id=1, cost="0.0000001"))
        await recorder.close()  # the interval never came: close writes all 7, in batches of 3
        async with sessions() as session:
            assert await session.scalar(select(func.count()).select_from(RequestLogRow)) == 7
            assert await session.scalar(select(ApiKeyRow.spend)) == Decimal("0.0000007")
        await engine.dispose()

    asyncio.run(run())


def test_a_failed_write_keeps_its_rows_and_the_buffer_is_bounded(tmp_path: Path) -> None:
    dropped: list[int] = []

    async def run() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")  # no tables: writes fail
        recorder = UsageRecorder(
            session_factory(engine), batch_size=2, buffer_limit=5, on_dropped=dropped.append
        )
        for n in range(4):
            recorder.add(_record(n))
        try:
            await recorder.flush()
        except Exception:
            pass
        assert recorder.pending == 4, "nothing was lost by the failed write"
        for n in range(4, 7):
            recorder.add(_record(n))
        assert recorder.pending == 5 and sum(dropped) == 2
        async with engine.begin() as connection:  # the database comes back
            await connection.run_sync(Base.metadata.create_all)
        assert await recorder.flush() == 5
        await engine.dispose()

    asyncio.run(run())
