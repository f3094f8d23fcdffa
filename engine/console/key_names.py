"""How the console names a virtual key: its alias for people and its display prefix, never more."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.store.api_key import ApiKeyRow

__all__ = ["MASTER_KEY_LABEL", "all_key_labels", "key_label", "key_labels"]

MASTER_KEY_LABEL = "master key"  # requests with no virtual key: the master key (or an open gateway)


def key_label(alias: str | None, prefix: str) -> str:
    """ "team-a (sk-abcde…)", or "sk-abcde…" for a key without an alias."""
    return f"{alias} ({prefix}…)" if alias else f"{prefix}…"


async def key_labels(session: AsyncSession, key_ids: Collection[int]) -> dict[int, str]:
    """The label of each of these keys that exists (revoked ones too: their requests still count)."""
    if not key_ids:
        return {}
    found = await session.execute(
        select(ApiKeyRow.id, ApiKeyRow.key_alias, ApiKeyRow.key_prefix).where(ApiKeyRow.id.in_(key_ids))
    )
    return {key_id: key_label(alias, prefix) for key_id, alias, prefix in found}


async def all_key_labels(session: AsyncSession) -> list[tuple[int, str]]:
    """Every key, newest first, with its label (a filter's choices)."""
    found = await session.execute(
        select(ApiKeyRow.id, ApiKeyRow.key_alias, ApiKeyRow.key_prefix).order_by(ApiKeyRow.id.desc())
    )
    return [(key_id, key_label(alias, prefix)) for key_id, alias, prefix in found]
