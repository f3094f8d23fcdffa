"""Alembic owns the schema: migrating to head gives exactly the models' metadata, on SQLite and PostgreSQL.

A start pays for Alembic only when a migration must run (engine.store.migrate): a database at head is
left alone, and an empty one is created from the models and stamped, which must give the very schema
the migrations give.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from engine.store.db import create_engine
from engine.store.migrate import alembic_config, run_migrations, upgrade_to_head
from engine.store.models import Base
from engine.store.schema import HEAD_REVISION, SchemaState
from tests.support.services import POSTGRES_URL


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _layout(connection: Connection) -> dict[str, Any]:
    """Everything the database says of each table: columns (by name: a migration appends a column
    where the models may declare it elsewhere), keys, indexes, constraints, and the version stamp."""
    inspector = inspect(connection)

    def named(items: list[Any]) -> list[Any]:
        return sorted(items, key=lambda item: str(item.get("name")))

    layout: dict[str, Any] = {
        table: {
            "columns": {
                column["name"]: (str(column["type"]), column["nullable"], column.get("default"))
                for column in inspector.get_columns(table)
            },
            "primary key": inspector.get_pk_constraint(table),
            "foreign keys": named(inspector.get_foreign_keys(table)),
            "indexes": named(inspector.get_indexes(table)),
            "unique": named(inspector.get_unique_constraints(table)),
            "checks": named(inspector.get_check_constraints(table)),
        }
        for table in sorted(inspector.get_table_names())
    }
    layout["stamp"] = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return layout


def _inspect(url: str, *looks: Any) -> list[Any]:
    async def main() -> list[Any]:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return [await connection.run_sync(look) for look in looks]
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _check(url: str) -> tuple[list[Any], set[str]]:
    diff, tables = _inspect(url, _diff, _tables)
    return diff, tables


def _never(url: str) -> None:
    raise AssertionError(f"Alembic ran on {url}")


def _reset(url: str) -> None:
    """Start from an empty database, so the test is repeatable whatever ran against it before.

    On PostgreSQL the whole `public` schema of the test database goes: tables another branch's
    migrations left there (the database is shared on this machine and in CI) would otherwise show up
    as an autogenerate difference.
    """

    async def main() -> None:
        engine = create_engine(url)
        try:
            async with engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    await connection.execute(text("DROP SCHEMA public CASCADE"))
                    await connection.execute(text("CREATE SCHEMA public"))
                    return
                await connection.run_sync(Base.metadata.drop_all)
                await connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        finally:
            await engine.dispose()

    asyncio.run(main())


EXPECTED = {
    "alembic_version", "providers", "aliases", "deployments", "capabilities", "costs", "router_settings",
    "fallbacks", "api_keys",
}  # fmt: skip
INITIAL = "69382d679281"
ROWS = (
    "INSERT INTO aliases VALUES (1, 'a', 'chat', NULL, 'config', '2026-01-01', '2026-01-01')",
    "INSERT INTO providers VALUES (1, 'p', 'openai', NULL, NULL, NULL, NULL, NULL, 'config', '2026-01-01', "
    "'2026-01-01')",
    "INSERT INTO deployments VALUES (1, 1, 1, 'm', 1.0, 0, '{}', '{\"rpm\": 60, \"tpm\": 1000}', NULL, '[]', "
    "'chat', 'config', 'k', '2026-01-01', '2026-01-01')",
    "INSERT INTO capabilities (id, deployment_id, extra) VALUES (1, 1, '{}')",
)


def test_sqlite_migrations_match_models(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'turnout.db'}"
    run_migrations(url)
    run_migrations(url)  # a second run is a no-op
    diff, tables = _check(url)
    assert diff == []
    assert tables >= EXPECTED


@pytest.mark.postgres
def test_postgres_migrations_match_models() -> None:
    _reset(POSTGRES_URL)
    run_migrations(POSTGRES_URL)
    diff, tables = _check(POSTGRES_URL)
    assert diff == []
    assert tables >= EXPECTED


def test_head_revision_is_the_newest_migration() -> None:
    scripts = ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite://"))
    assert scripts.get_heads() == [HEAD_REVISION]


def _created_is_migrated(url: str) -> None:
    """An empty database created from the models is the database the migrations build, stamped alike;
    at head, neither is touched again."""
    _reset(url)
    run_migrations(url)
    migrated = _inspect(url, _layout)[0]
    assert upgrade_to_head(url, migrate=_never) is SchemaState.CURRENT
    _reset(url)
    assert upgrade_to_head(url, migrate=_never) is SchemaState.EMPTY
    created, diff = _inspect(url, _layout, _diff)
    assert diff == []
    assert created == migrated
    assert created["stamp"] == [HEAD_REVISION]
    assert upgrade_to_head(url, migrate=_never) is SchemaState.CURRENT


def test_sqlite_created_schema_is_the_migrated_one(tmp_path: Path) -> None:
    _created_is_migrated(f"sqlite+aiosqlite:///{tmp_path / 'turnout.db'}")


@pytest.mark.postgres
def test_postgres_created_schema_is_the_migrated_one() -> None:
    _created_is_migrated(POSTGRES_URL)


def test_a_created_database_is_one_alembic_can_migrate(tmp_path: Path) -> None:
    """Its stamp is Alembic's own: migrations run down from it, and back up, to the same schema."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'turnout.db'}"
    upgrade_to_head(url, migrate=_never)
    command.downgrade(alembic_config(url), INITIAL)
    assert upgrade_to_head(url) is SchemaState.BEHIND
    assert _check(url)[0] == []
    assert upgrade_to_head(url, migrate=_never) is SchemaState.CURRENT


def test_a_database_behind_is_handed_to_migrate(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'turnout.db'}"
    command.upgrade(alembic_config(url), INITIAL)
    handed: list[str] = []
    assert upgrade_to_head(url, migrate=handed.append) is SchemaState.BEHIND
    assert handed == [url]


def test_tables_without_a_stamp_are_left_to_alembic(tmp_path: Path) -> None:
    """Tables another tool made are not taken for an empty database (Alembic refuses to guess too)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'turnout.db'}"
    _sql(url, "CREATE TABLE elsewhere (id INTEGER PRIMARY KEY)")
    handed: list[str] = []
    assert upgrade_to_head(url, migrate=handed.append) is SchemaState.BEHIND
    assert handed == [url]


def _sql(url: str, *statements: str) -> list[Any]:
    """Run the statements; the rows of the last."""

    async def main() -> list[Any]:
        engine = create_engine(url)
        try:
            async with engine.begin() as connection:
                rows: list[Any] = []
                for statement in statements:
                    result = await connection.execute(text(statement))
                    rows = list(result.all()) if result.returns_rows else []
                return rows
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _upgrade_keeps_rows(url: str) -> None:
    """Rows written under the initial schema survive the router-settings revision, both ways."""
    command.upgrade(alembic_config(url), INITIAL)
    _sql(url, *ROWS)
    assert upgrade_to_head(url) is SchemaState.BEHIND
    assert _sql(url, "SELECT rpm, tpm, max_parallel_requests FROM deployments") == [(60, 1000, None)]
    assert [json.loads(row[0]) if isinstance(row[0], str) else row[0]
            for row in _sql(url, "SELECT forced_params FROM deployments")] == [{}]  # fmt: skip
    # batch mode rebuilds tables on SQLite: the children of a rebuilt table must not be cascaded away
    assert _sql(url, "SELECT count(*) FROM capabilities") == [(1,)]
    command.downgrade(alembic_config(url), INITIAL)
    limits = _sql(url, "SELECT limits FROM deployments")[0][0]
    assert (json.loads(limits) if isinstance(limits, str) else limits) == {"rpm": 60, "tpm": 1000}
    assert _sql(url, "SELECT count(*) FROM capabilities") == [(1,)]
    upgrade_to_head(url)
    assert _check(url)[0] == []


def test_sqlite_upgrade_keeps_rows(tmp_path: Path) -> None:
    _upgrade_keeps_rows(f"sqlite+aiosqlite:///{tmp_path / 'turnout.db'}")


@pytest.mark.postgres
def test_postgres_upgrade_keeps_rows() -> None:
    _reset(POSTGRES_URL)
    try:
        _upgrade_keeps_rows(POSTGRES_URL)
    finally:
        # its rows carry explicit ids, which leave the id sequences behind: a gateway started on this
        # shared database next would collide with them, so leave it empty
        _reset(POSTGRES_URL)
