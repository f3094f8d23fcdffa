"""Alembic owns the schema: migrating to head gives exactly the models' metadata, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

from engine.store.db import create_engine
from engine.store.migrate import upgrade_to_head
from engine.store.models import Base

POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _check(url: str) -> tuple[list[Any], set[str]]:
    async def main() -> tuple[list[Any], set[str]]:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(_diff), await connection.run_sync(_tables)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _reset(url: str) -> None:
    """Drop Turnout's tables and the Alembic version table, so the test is repeatable."""

    async def main() -> None:
        engine = create_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(Base.metadata.drop_all)
                await connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        finally:
            await engine.dispose()

    asyncio.run(main())


EXPECTED = {"alembic_version", "providers", "aliases", "deployments", "capabilities", "costs"}


def test_sqlite_upgrade_to_head_matches_models(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'turnout.db'}"
    upgrade_to_head(url)
    upgrade_to_head(url)  # a second run is a no-op
    diff, tables = _check(url)
    assert diff == []
    assert tables >= EXPECTED


@pytest.mark.postgres
def test_postgres_upgrade_to_head_matches_models() -> None:
    _reset(POSTGRES_URL)
    upgrade_to_head(POSTGRES_URL)
    diff, tables = _check(POSTGRES_URL)
    assert diff == []
    assert tables >= EXPECTED
