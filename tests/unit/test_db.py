"""The engine every Turnout process opens: SQL errors, which are logged with their traceback, never
carry the statement's values."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from engine.store.api_key import ApiKeyRow
from engine.store.db import create_engine, session_factory
from engine.store.models import Base


def test_a_failed_statement_does_not_show_its_values(tmp_path: Path) -> None:
    secret_hash = "5e" * 32

    async def run() -> str:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        sessions = session_factory(engine)
        try:
            for _ in range(2):  # the second insert breaks the unique key hash
                async with sessions() as session, session.begin():
                    session.add(
                        ApiKeyRow(key_hash=secret_hash, key_prefix="sk-abcde", models=[], key_metadata={})
                    )
        except IntegrityError as exc:
            return str(exc)
        finally:
            await engine.dispose()
        pytest.fail("the duplicate was accepted")

    message = asyncio.run(run())
    assert "UNIQUE constraint failed" in message
    assert secret_hash not in message
