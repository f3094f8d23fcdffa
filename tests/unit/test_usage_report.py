"""engine.usage.report on both databases: the same rows give the same report on SQLite and PostgreSQL.

The PostgreSQL run works in its own schema (`report_test`, created and dropped here; `public` belongs
to the migration tests) with the session time zone set far from UTC, so a day that followed the
session's zone instead of UTC would land rows on the wrong date.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from engine.store.api_key import ApiKeyRow
from engine.store.db import create_engine
from engine.store.models import Base
from engine.store.request_log import RequestLogRow
from engine.usage.report import LogFilter, UsageReport

POSTGRES_HOST, POSTGRES_PORT = "127.0.0.1", 5432
POSTGRES_URL = f"postgresql+asyncpg://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/test"
SCHEMA = "report_test"
T = TypeVar("T")


def _row(number: int, created_at: str, **fields: Any) -> dict[str, Any]:
    return {
        "request_id": f"req-{number}",
        "created_at": datetime.fromisoformat(created_at),
        "key_id": None,
        "alias": "chat",
        "operation": "chat",
        "prompt_tokens": None,
        "completion_tokens": None,
        "cost": None,
        "stream": False,
        "tokens_estimated": False,
        "latency_ms": 10.0,
        "status": 200,
        "attempts": 1,
        **fields,
    }


ROWS = [
    _row(1, "2026-03-01T00:00:00+00:00", key_id=1, prompt_tokens=5, cost=Decimal("123456.0000000001")),
    # 23:30 UTC is already the next day in Tokyo (the PostgreSQL session's zone below)
    _row(2, "2026-03-01T23:30:00+00:00", prompt_tokens=7, cost=Decimal("123456.0000000001"), status=502),
    _row(3, "2026-03-02T02:00:00+00:00", key_id=1, completion_tokens=3, latency_ms=30.0),
    _row(4, "2026-03-03T00:00:00+00:00", key_id=1, prompt_tokens=100),  # outside the window
]
WINDOW = LogFilter(start=datetime(2026, 3, 1, tzinfo=UTC), end=datetime(2026, 3, 3, tzinfo=UTC))


async def _fill(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
        await connection.execute(
            insert(ApiKeyRow),
            [{"id": 1, "key_hash": "a" * 64, "key_prefix": "sk-aaaaa", "key_alias": "team"}],
        )
        await connection.execute(insert(RequestLogRow), ROWS)


async def _sqlite(tmp_path: Path, check: Callable[[UsageReport], Awaitable[T]]) -> T:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'report.db'}")
    try:
        await _fill(engine)
        return await check(UsageReport(async_sessionmaker(engine, class_=AsyncSession)))
    finally:
        await engine.dispose()


def _postgres_reachable() -> bool:
    try:
        socket.create_connection((POSTGRES_HOST, POSTGRES_PORT), timeout=2).close()
    except OSError:
        return False
    return True


async def _postgres(check: Callable[[UsageReport], Awaitable[T]]) -> T:
    settings = {"search_path": SCHEMA, "timezone": "Asia/Tokyo"}
    engine = create_async_engine(POSTGRES_URL, connect_args={"server_settings": settings})
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            await connection.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        await _fill(engine)
        return await check(UsageReport(async_sessionmaker(engine, class_=AsyncSession)))
    finally:
        async with engine.begin() as connection:
            await connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        await engine.dispose()


async def _by_day(report: UsageReport) -> list[tuple[Any, ...]]:
    return [
        (
            totals.group,
            totals.requests,
            totals.errors,
            totals.prompt_tokens,
            totals.completion_tokens,
            totals.cost,
        )
        for totals in await report.usage(["day"], WINDOW)
    ]


BY_DAY = [
    ({"day": date(2026, 3, 1)}, 2, 1, 12, 0, Decimal("246912.0000000002")),
    ({"day": date(2026, 3, 2)}, 1, 0, 0, 3, Decimal(0)),
]


async def _by_key_and_pages(report: UsageReport) -> tuple[list[Any], list[str], list[str], int | None]:
    keys = [(totals.group, totals.requests) for totals in await report.usage(["key"], WINDOW)]
    first = await report.requests(LogFilter(), limit=3)
    rest = await report.requests(LogFilter(), limit=3, before_id=first[-1].id)
    return (
        keys,
        [row.request_id for row in first],
        [row.request_id for row in rest],
        await report.key_id("a" * 64),
    )


def _check_key_and_pages(found: tuple[list[Any], list[str], list[str], int | None]) -> None:
    keys, first, rest, key_id = found
    assert keys == [({"key_id": None, "key_alias": None}, 1), ({"key_id": 1, "key_alias": "team"}, 2)]
    assert (first, rest, key_id) == (["req-4", "req-3", "req-2"], ["req-1"], 1)


def test_sqlite_report(tmp_path: Path) -> None:
    assert asyncio.run(_sqlite(tmp_path, _by_day)) == BY_DAY
    _check_key_and_pages(asyncio.run(_sqlite(tmp_path / "again", _by_key_and_pages)))


@pytest.mark.postgres
def test_postgres_report_by_day() -> None:
    if not _postgres_reachable():
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_HOST}:{POSTGRES_PORT}")
    assert asyncio.run(_postgres(_by_day)) == BY_DAY
    _check_key_and_pages(asyncio.run(_postgres(_by_key_and_pages)))


def test_unknown_group_is_refused(tmp_path: Path) -> None:
    async def check(report: UsageReport) -> None:
        with pytest.raises(ValueError, match="group_by"):
            await report.usage(["team"], WINDOW)

    asyncio.run(_sqlite(tmp_path, check))
