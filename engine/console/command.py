"""`turnout admin set-password | list | remove`: console users whose password hashes live in SQL.

The password is read from the terminal (twice) or, with `--password-stdin`, from one line of standard
input, never from the command line (it would stay in the shell's history and the process list).
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from typing import Any

from sqlalchemy import delete, select

from engine.console.passwords import MIN_PASSWORD_LENGTH, hash_password
from engine.settings import Settings
from engine.store.db import create_engine, session_factory
from engine.store.models import AdminUserRow, AuditRow

__all__ = ["run_admin"]


def _read_password(from_stdin: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New console password: ")
    if getpass.getpass("Again: ") != first:
        print("turnout: the two passwords differ", file=sys.stderr)
        return None
    return first


def run_admin(settings: Settings, command: str, options: dict[str, Any]) -> int:
    if settings.migrate_on_start:
        from engine.store.migrate import upgrade_to_head

        upgrade_to_head(settings.database_url)
    username = (options.get("user") or "admin").strip()
    if command == "set-password":
        if not username or len(username) > 100:
            print("turnout: a user name is 1 to 100 characters", file=sys.stderr)
            return 2
        password = _read_password(bool(options.get("password_stdin")))
        if password is None:
            return 2
        if len(password) < MIN_PASSWORD_LENGTH:
            print(
                f"turnout: a console password has at least {MIN_PASSWORD_LENGTH} characters", file=sys.stderr
            )
            return 2
        created = asyncio.run(_set_password(settings, username, hash_password(password)))
        print(f"{'created' if created else 'changed the password of'} console user {username!r}")
        return 0
    if command == "remove":
        removed = asyncio.run(_remove(settings, username))
        print(f"removed console user {username!r}" if removed else f"no console user {username!r}")
        return 0 if removed else 1
    for name in asyncio.run(_list(settings)):
        print(name)
    return 0


async def _set_password(settings: Settings, username: str, password_hash: str) -> bool:
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            row = await session.scalar(select(AdminUserRow).where(AdminUserRow.username == username))
            created = row is None
            if row is None:
                session.add(AdminUserRow(username=username, password_hash=password_hash))
            else:
                row.password_hash = password_hash  # sessions opened with the old password end
            session.add(
                AuditRow(actor="turnout admin", action="admin_user.set_password", target=f"user:{username}")
            )
        return created
    finally:
        await engine.dispose()


async def _remove(settings: Settings, username: str) -> bool:
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            result = await session.execute(delete(AdminUserRow).where(AdminUserRow.username == username))
            if result.rowcount:  # type: ignore[attr-defined]
                session.add(
                    AuditRow(actor="turnout admin", action="admin_user.remove", target=f"user:{username}")
                )
            return bool(result.rowcount)  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def _list(settings: Settings) -> list[str]:
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            return list(await session.scalars(select(AdminUserRow.username).order_by(AdminUserRow.username)))
    finally:
        await engine.dispose()
