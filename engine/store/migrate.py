"""Bring a database to the newest schema, paying for Alembic only when a migration must run.

Synchronous: the CLI calls it before the server's event loop starts (Alembic starts a loop of its own).
At head already, it costs one or two queries; empty, the schema is created whole (engine.store.schema);
behind, `migrate` runs Alembic's migrations: `run_migrations` here, or a child process for a serving
process that keeps Alembic out of its memory (engine.serve).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from engine.settings import project_path
from engine.store.db import create_engine
from engine.store.schema import SchemaState, create_schema, schema_state

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["alembic_config", "run_migrations", "upgrade_to_head"]


def upgrade_to_head(database_url: str, *, migrate: Callable[[str], None] | None = None) -> SchemaState:
    """The database at head; what it was found to be (EMPTY: created now; BEHIND: migrated now)."""
    state = asyncio.run(_current_or_created(database_url))
    if state is SchemaState.BEHIND:
        (migrate or run_migrations)(database_url)
    return state


async def _current_or_created(database_url: str) -> SchemaState:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            state = await connection.run_sync(schema_state)
            if state is SchemaState.EMPTY:
                await connection.run_sync(create_schema)
            return state
    finally:
        await engine.dispose()


def alembic_config(database_url: str) -> Config:
    """Alembic's configuration for this project's migrations and `database_url`."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(project_path("migrations")))
    # ConfigParser interpolation would read "%" in a password as a reference.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def run_migrations(database_url: str) -> None:
    """Alembic's `upgrade head`, whatever the database holds (the one path for a database behind)."""
    from alembic import command

    command.upgrade(alembic_config(database_url), "head")
