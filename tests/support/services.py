"""Where the tests of the PostgreSQL + Redis mode find those servers.

The defaults are the servers every development machine and CI run (PostgreSQL at 127.0.0.1:5432 with
trust auth and a database `test`, Redis at 127.0.0.1:6379). `TURNOUT_TEST_POSTGRES_URL` and
`TURNOUT_TEST_REDIS_URL` point a run elsewhere, e.g. at a database of its own so that two runs on one
machine do not drop each other's tables.
"""

from __future__ import annotations

import os

__all__ = ["POSTGRES_URL", "REDIS_URL", "empty_postgres"]

POSTGRES_URL = os.environ.get(
    "TURNOUT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TURNOUT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def empty_postgres() -> bool:
    """Drop everything in the shared test database (its `public` schema); False when no server answers.

    Tests that use it create tables without migrations; what they leave would make the next user of
    the database (another test run's migration, `make bench-keys`) fail on tables that already exist."""
    import asyncio

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def run() -> None:
        engine = create_async_engine(POSTGRES_URL, connect_args={"timeout": 2})
        try:
            async with engine.begin() as connection:
                await connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                await connection.execute(text("CREATE SCHEMA public"))
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except (OSError, TimeoutError):  # no server here: nothing was left in it either
        return False
    return True
