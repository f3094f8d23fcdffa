"""Alembic environment: async engine, the URL from -x url=, the config, TURNOUT_DATABASE_URL or Settings."""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection, make_url

from engine.settings import Settings
from engine.store.db import create_engine
from engine.store.models import Base

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _database_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    return url or os.environ.get("TURNOUT_DATABASE_URL") or Settings().database_url


def _configure(connection: Connection | None, url: str) -> None:
    context.configure(
        connection=connection,
        url=None if connection is not None else url,
        target_metadata=target_metadata,
        render_as_batch=make_url(url).get_backend_name() == "sqlite",
        compare_type=True,
        literal_binds=connection is None,
    )


def _run_sync(connection: Connection) -> None:
    _configure(connection, str(connection.engine.url))
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(url: str) -> None:
    engine = create_engine(url)
    sqlite = make_url(url).get_backend_name() == "sqlite"
    try:
        async with engine.connect() as connection:
            if sqlite:
                # Batch mode rebuilds a table (copy, DROP, rename); with foreign keys on, the DROP would
                # cascade into the child rows. Off for the migration (outside any transaction, or SQLite
                # ignores it), checked afterwards.
                await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            await connection.run_sync(_run_sync)
            if sqlite:
                broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if broken:
                    raise RuntimeError(f"migration left rows with dangling foreign keys: {broken[:5]}")
            await connection.commit()
    finally:
        await engine.dispose()


def main() -> None:
    url = _database_url()
    if context.is_offline_mode():
        _configure(None, url)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(_run_online(url))


main()
