"""Async engine and session factory. SQLite gets foreign keys and WAL on every connection.

What the database holds is private (key hashes, encrypted provider credentials, stored prompts): no
SQL parameter reaches a log, and a SQLite database file is created readable by its owner only.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

__all__ = ["create_engine", "session_factory", "sqlite_path"]


def sqlite_path(database_url: str) -> Path | None:
    """The file behind a SQLite URL, or None for other databases and in-memory SQLite."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


def _create_owner_only(path: Path) -> None:
    """Create the database file 0600 before SQLite would create it 0644. SQLite gives its journal, WAL
    and shared-memory files the database file's mode. An existing file keeps the mode it has."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # empty: a new database
    except FileExistsError:
        pass


def create_engine(database_url: str) -> AsyncEngine:
    path = sqlite_path(database_url)
    if path is not None:
        _create_owner_only(path)
    # hide_parameters: a failed statement's error (logged with its traceback) and SQLAlchemy's own
    # statement logging show the SQL without its values
    engine = create_async_engine(database_url, hide_parameters=True)
    if make_url(database_url).get_backend_name() == "sqlite":
        # the SQLite driver logs every call with its statement and values at DEBUG
        logging.getLogger("aiosqlite").setLevel(logging.INFO)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: rows read in a session stay usable after commit (no lazy reloads).
    return async_sessionmaker(engine, expire_on_commit=False)
