"""Who may open the console: the master key, the environment's admin user (`TURNOUT_ADMIN_PASSWORD`),
or an admin user stored in SQL (`turnout admin set-password`). A virtual key never may.

A session keeps a fingerprint of the credential that opened it; `still_valid` compares it with the
credential now configured, so changing the master key or a password ends the sessions it opened.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import TYPE_CHECKING

from sqlalchemy import select

from engine.console.passwords import verify_password
from engine.console.session import ConsoleSession, Signer
from engine.settings import Settings
from engine.store.models import AdminUserRow

if TYPE_CHECKING:
    from engine.gateway import Gateway

__all__ = ["MASTER_ACTOR", "SignIn", "check_sign_in", "sign_in_possible", "still_valid"]

MASTER_ACTOR = "master key"
_USER_PREFIX = "user:"
# verified when the user is unknown, so a wrong name costs the same time as a wrong password
_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


class SignIn:
    __slots__ = ("actor", "credential")

    def __init__(self, actor: str, credential: str) -> None:
        self.actor = actor
        self.credential = credential


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def sign_in_possible(settings: Settings) -> bool:
    """False when nothing could open the console yet (no master key, no password from the environment;
    users stored in SQL are checked at sign-in)."""
    return bool(settings.master_key or settings.admin_password)


async def _stored_hash(gateway: Gateway, username: str) -> str | None:
    async with gateway.sessions() as session:
        return await session.scalar(
            select(AdminUserRow.password_hash).where(AdminUserRow.username == username)
        )


async def check_sign_in(gateway: Gateway, username: str, secret: str) -> SignIn | None:
    """The session's actor and credential when `secret` opens the console, else None."""
    settings: Settings = gateway.settings
    if not secret or len(secret) > 1024 or len(username) > 100:
        return None
    if not username:
        master = settings.master_key
        if master and _same(secret, master):
            return SignIn(MASTER_ACTOR, "master:" + master)
        return None
    if settings.admin_password and _same(username, settings.admin_user):
        if _same(secret, settings.admin_password):
            return SignIn(_USER_PREFIX + username, f"env:{username}:{settings.admin_password}")
        return None
    stored = await _stored_hash(gateway, username)
    # scrypt takes ~50 ms of CPU: in a thread, so the event loop goes on serving requests meanwhile
    matched = await asyncio.to_thread(verify_password, secret, stored or _DUMMY_HASH)
    if matched and stored is not None:
        return SignIn(_USER_PREFIX + username, f"sql:{username}:{stored}")
    return None


async def still_valid(gateway: Gateway, signer: Signer, session: ConsoleSession) -> bool:
    """Whether the credential that opened `session` is still the one configured."""
    settings: Settings = gateway.settings
    if session.actor == MASTER_ACTOR:
        return bool(settings.master_key) and _same(
            session.credential, signer.fingerprint("master:" + str(settings.master_key))
        )
    username = session.actor.removeprefix(_USER_PREFIX)
    if settings.admin_password and _same(username, settings.admin_user):
        expected = f"env:{username}:{settings.admin_password}"
        return _same(session.credential, signer.fingerprint(expected))
    stored = await _stored_hash(gateway, username)
    return stored is not None and _same(session.credential, signer.fingerprint(f"sql:{username}:{stored}"))
