"""Where the tests of the PostgreSQL + Redis mode find those servers.

The defaults are the servers every development machine and CI run (PostgreSQL at 127.0.0.1:5432 with
trust auth and a database `test`, Redis at 127.0.0.1:6379). `TURNOUT_TEST_POSTGRES_URL` and
`TURNOUT_TEST_REDIS_URL` point a run elsewhere, e.g. at a database of its own so that two runs on one
machine do not drop each other's tables.
"""

from __future__ import annotations

import os

__all__ = ["POSTGRES_URL", "REDIS_URL"]

POSTGRES_URL = os.environ.get(
    "TURNOUT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TURNOUT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
