"""The request log's writer: batches, spend in the same transaction, retries, a bounded buffer, and
rows the database refuses set apart so the rows behind them still go through."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from engine.store.api_key import ApiKeyRow
from engine.store.db import create_engine, session_factory
from engine.store.models import Base
from engine.store.request_log import RequestLogRow
from engine.usage.record import UsageRecord
from engine.usage.recorder import REFUSED, UsageRecorder
from engine.usage.writer import SqlWriter, refused
from tests.support.services import POSTGRES_URL

Sessions = async_sessionmaker[AsyncSession]


def _record(n: int, key_id: int | None = None, cost: str | None = None, **fields: object) -> UsageRecord:
    record = UsageRecord(
        request_id=f"r{n:031d}",
        created_at=datetime.now(UTC),
        operation="chat",
        alias="gpt-4",
        key_id=key_id,
        cost=Decimal(cost) if cost else None,
        latency_ms=1.0,
    )
    return replace(record, **fields)  # type: ignore[arg-type]


# Rows the test database refuses, as a database refuses what it cannot store: any row with status 418
# (so even its stripped form), and any with the alias "poison" (the stripped form has no alias).
_SQLITE_REFUSES = (
    "CREATE TRIGGER refuse BEFORE INSERT ON request_log WHEN NEW.status = 418 OR NEW.alias = 'poison' "
    "BEGIN SELECT RAISE(ABORT, 'refused'); END"
)
_POSTGRES_REFUSES = (
    "ALTER TABLE request_log ADD CONSTRAINT ck_refuse CHECK (status <> 418 AND alias <> 'poison')"
)

DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@asynccontextmanager
async def _database(kind: str, tmp_path: Path, *, refusing: bool = False) -> AsyncIterator[Sessions]:
    """A fresh request log with key 1, on SQLite or PostgreSQL (the test's own database)."""
    if kind == "sqlite":
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'log.db'}")
    else:
        engine = create_async_engine(POSTGRES_URL, hide_parameters=True)
        try:
            async with engine.begin() as connection:
                await connection.execute(text("DROP SCHEMA public CASCADE"))
                await connection.execute(text("CREATE SCHEMA public"))
        except OSError as exc:
            await engine.dispose()
            pytest.skip(f"PostgreSQL at {POSTGRES_URL} is unreachable: {exc}")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
        if refusing:
            await connection.execute(text(_SQLITE_REFUSES if kind == "sqlite" else _POSTGRES_REFUSES))
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        session.add(ApiKeyRow(id=1, key_hash="h" * 64, key_prefix="sk-abcde", models=[], key_metadata={}))
    try:
        yield sessions
    finally:
        await engine.dispose()


async def _rows(sessions: Sessions) -> dict[str, str]:
    """request_id -> alias of every row written."""
    async with sessions() as session:
        found = await session.execute(select(RequestLogRow.request_id, RequestLogRow.alias))
        return {request_id: alias for request_id, alias in found}


async def _spend(sessions: Sessions) -> Decimal:
    async with sessions() as session:
        spend = await session.scalar(select(ApiKeyRow.spend).where(ApiKeyRow.id == 1))
    assert spend is not None
    return spend


def test_batches_are_written_with_the_keys_spend(tmp_path: Path) -> None:
    async def run() -> None:
        async with _database("sqlite", tmp_path) as sessions:
            recorder = UsageRecorder(SqlWriter(sessions), flush_interval=60, batch_size=3)
            recorder.start()
            for n in range(7):
                recorder.add(_record(n, key_id=1, cost="0.0000001"))
            await recorder.close()  # the interval never came: close writes all 7, in batches of 3
            async with sessions() as session:
                assert await session.scalar(select(func.count()).select_from(RequestLogRow)) == 7
            assert await _spend(sessions) == Decimal("0.0000007")

    asyncio.run(run())


def test_a_failed_write_keeps_its_rows_and_the_buffer_is_bounded(tmp_path: Path) -> None:
    dropped: list[tuple[int, str]] = []

    async def run() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")  # no tables: writes fail
        recorder = UsageRecorder(
            SqlWriter(session_factory(engine)),
            batch_size=2,
            buffer_limit=5,
            on_dropped=lambda rows, reason: dropped.append((rows, reason)),
        )
        for n in range(4):
            recorder.add(_record(n))
        with pytest.raises(Exception, match="no such table"):
            await recorder.flush()
        assert recorder.pending == 4, "nothing was lost by the failed write (not a refusal: kept)"
        for n in range(4, 7):
            recorder.add(_record(n))
        assert recorder.pending == 5 and dropped == [(1, "buffer_full"), (1, "buffer_full")]
        async with engine.begin() as connection:  # the database comes back
            await connection.run_sync(Base.metadata.create_all)
        assert await recorder.flush() == 5
        await engine.dispose()

    asyncio.run(run())


@pytest.mark.parametrize("kind", DATABASES)
def test_a_refused_row_is_set_apart_and_every_other_row_and_spend_is_written(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dropped: list[tuple[int, str]] = []

    async def run() -> None:
        async with _database(kind, tmp_path, refusing=True) as sessions:
            recorder = UsageRecorder(
                SqlWriter(sessions),
                batch_size=10,
                on_dropped=lambda rows, reason: dropped.append((rows, reason)),
            )
            records = [_record(n, key_id=1, cost="0.1") for n in range(10)]
            records[3].alias = "poison"  # stored without its text
            records[6].status = 418  # refused in every form: dropped, its cost still spent
            for record in records:
                recorder.add(record)
            assert await recorder.flush() == 9
            rows = await _rows(sessions)
            assert set(rows) == {r.request_id for r in records} - {records[6].request_id}
            assert rows[records[3].request_id] == ""
            assert await _spend(sessions) == Decimal("1.0"), "every request's cost reached its key"
            assert recorder.pending == 0

    with caplog.at_level(logging.WARNING, logger="turnout.usage"):
        asyncio.run(run())
    assert dropped == [(1, REFUSED)]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "r0000000000000000000000000000003" in logged and "r0000000000000000000000000000006" in logged
    assert "poison" not in logged, "refused rows are logged by request id, never by their content"


@pytest.mark.parametrize("kind", DATABASES)
def test_a_batch_committed_unseen_is_not_written_twice(kind: str, tmp_path: Path) -> None:
    """A commit can succeed and its answer be lost with the connection: the retry meets its own rows
    (a unique request id) and must neither block on them nor add their cost again."""

    async def run() -> None:
        async with _database(kind, tmp_path) as sessions:
            writer = SqlWriter(sessions)
            records = [_record(n, key_id=1, cost="0.1") for n in range(5)]
            await writer.write(records[1:3])  # that commit went through
            recorder = UsageRecorder(writer)
            for record in records:
                recorder.add(record)
            assert await recorder.flush() == 5
            assert len(await _rows(sessions)) == 5
            assert await _spend(sessions) == Decimal("0.5")

    asyncio.run(run())


def test_the_writer_task_outlives_refused_rows_and_shutdown_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def run() -> None:
        async with _database("sqlite", tmp_path, refusing=True) as sessions:
            recorder = UsageRecorder(SqlWriter(sessions), flush_interval=0.01)
            recorder.start()
            for n in range(3):
                recorder.add(_record(n, status=418))
                recorder.add(_record(100 + n))
                deadline = time.monotonic() + 10
                while recorder.pending:  # the background task writes them: it is alive
                    assert time.monotonic() < deadline, "the writer task stopped writing"
                    await asyncio.sleep(0.01)
            for n in range(200, 205):
                recorder.add(_record(n))
            await recorder.close()
            assert len(await _rows(sessions)) == 8

    with caplog.at_level(logging.WARNING, logger="turnout.usage"):
        asyncio.run(run())
    assert not [r for r in caplog.records if "retrying" in r.getMessage() or "lost" in r.getMessage()]


@pytest.mark.postgres
def test_what_postgres_cannot_store_is_a_refusal_not_an_outage(tmp_path: Path) -> None:
    """Without `fit`, each of these values fails its INSERT: the writer tells those refusals from a
    database that cannot be reached (whose rows must be kept and retried)."""
    unstorable = {
        "long text": {"alias": "m" * 201},
        "NUL byte": {"alias": "a\x00b"},
        "lone surrogate": {"error_type": "a\ud800"},
        "not text": {"error_code": 5},
        "past 32 bits": {"prompt_tokens": 2**31},
        "past NUMERIC(20, 10)": {"cost": Decimal("1e10")},
    }

    async def run() -> None:
        async with _database("postgres", tmp_path) as sessions:
            writer = SqlWriter(sessions)
            for n, (what, fields) in enumerate(unstorable.items()):
                with pytest.raises(Exception) as caught:
                    await writer.write([_record(n, **fields)])
                assert refused(caught.value), what
        down = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")
        with pytest.raises(Exception) as caught:
            await SqlWriter(session_factory(down)).write([_record(0)])
        assert not refused(caught.value), "an unreachable database is not a refusal"
        await down.dispose()

    asyncio.run(run())


class _GatedWriter:
    """Writes nothing, and holds each write until the test lets it go."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.writing = asyncio.Event()
        self.go = asyncio.Event()

    def refused(self, error: BaseException) -> bool:
        return False

    async def write(self, batch: list[UsageRecord], *, rows: bool = True) -> None:
        self.batches.append(len(batch))
        self.writing.set()
        await self.go.wait()

    async def stored(self, request_id: str) -> bool:
        return False


def test_rows_added_during_a_flush_wait_for_the_next_one() -> None:
    """Written back to back, they would go in small batches, each paying a transaction's fixed cost."""

    async def run() -> None:
        writer = _GatedWriter()
        recorder = UsageRecorder(writer, flush_interval=60, batch_size=500)
        for n in range(3):
            recorder.add(_record(n))
        flushing = asyncio.create_task(recorder.flush())
        await writer.writing.wait()
        for n in range(3, 5):
            recorder.add(_record(n))
        writer.go.set()
        assert await flushing == 3
        assert recorder.pending == 2 and writer.batches == [3]
        assert await recorder.flush() == 2

    asyncio.run(run())
