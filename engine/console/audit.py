"""Recording console changes in the audit log, in the caller's transaction (engine/store/audit.py).

`masked` replaces secrets in what is recorded: an audit row shows that a key changed, never the key.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from engine.store.models import AuditRow

__all__ = ["SECRET_FIELDS", "mask", "masked", "record"]

# field names whose values are secrets wherever they appear in a recorded row
SECRET_FIELDS = frozenset({"api_key", "key", "password", "master_key", "secret", "token"})


def mask(secret: str | None) -> str | None:
    """What the console shows of a secret: its length class and last four characters at most."""
    if not secret:
        return secret
    tail = secret[-4:] if len(secret) >= 16 else ""
    return f"••••{tail}"


def masked(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        name: mask(str(value)) if name in SECRET_FIELDS and value else value for name, value in row.items()
    }


def record(
    session: AsyncSession,
    actor: str,
    action: str,
    target: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Add the audit row to `session`; it is written when the caller's transaction commits."""
    session.add(
        AuditRow(
            actor=actor[:120],
            action=action[:60],
            target=target[:300],
            before=masked(before),
            after=masked(after),
        )
    )
