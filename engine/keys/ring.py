"""The in-memory view of the active keys the request path reads: hash -> VirtualKey, swapped in whole.

Keys are `sk-` and 32 random URL-safe characters (`secrets.token_urlsafe(24)`). A presented key is hashed
(SHA-256) and looked up by its hash, then the hashes are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from engine.store.api_key import ApiKeyRow
from engine.store.base import as_utc

__all__ = ["KEY_PREFIX", "KeyRing", "VirtualKey", "hash_key", "new_key", "parse_duration", "period_end"]

KEY_PREFIX = "sk-"
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_duration(text: str) -> timedelta:
    """ "30s", "15m", "12h", "30d", "2w" as a timedelta; ValueError otherwise (past timedelta's range too)."""
    match = _DURATION.match(text)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"{text[:40]!r} is not a duration like 30s, 15m, 12h, 30d or 2w")
    try:
        return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    except OverflowError:
        raise ValueError(f"{text[:40]!r} is longer than any date can reach") from None


def period_end(ended: datetime, step: timedelta, now: datetime) -> datetime:
    """The end of the budget period `now` falls in, when periods of `step` follow one ending at `ended`."""
    return ended if now < ended else ended + step * ((now - ended) // step + 1)


def aware(moment: datetime | None) -> datetime | None:
    """A stored datetime as aware UTC (None stays None)."""
    return None if moment is None else as_utc(moment)


@dataclass(frozen=True, slots=True)
class VirtualKey:
    """One active key as requests see it (never the key itself)."""

    id: int
    key_hash: str
    key_prefix: str
    key_alias: str | None
    models: frozenset[str]  # empty: every alias
    privacy: str | None
    expires_at: datetime | None
    max_budget: Decimal | None
    budget_duration: str | None
    spend: Decimal  # in the current budget period, as SQL knew it at the last reload
    budget_reset_at: datetime | None
    rpm_limit: int | None
    tpm_limit: int | None
    max_parallel_requests: int | None
    # the response cache's space when the operator shares one between keys (metadata.cache_namespace);
    # None: the key's own (engine.cache.key)
    cache_namespace: str | None = None

    @classmethod
    def from_row(cls, row: ApiKeyRow) -> VirtualKey:
        return cls(
            id=row.id,
            key_hash=row.key_hash,
            key_prefix=row.key_prefix,
            key_alias=row.key_alias,
            models=frozenset(row.models),
            privacy=row.privacy,
            expires_at=aware(row.expires_at),
            max_budget=row.max_budget,
            budget_duration=row.budget_duration,
            spend=row.spend,
            budget_reset_at=aware(row.budget_reset_at),
            rpm_limit=row.rpm_limit,
            tpm_limit=row.tpm_limit,
            max_parallel_requests=row.max_parallel_requests,
            cache_namespace=_cache_namespace(row.key_metadata),
        )

    def allows(self, alias: str) -> bool:
        return not self.models or alias in self.models

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def _cache_namespace(metadata: object) -> str | None:
    found = metadata.get("cache_namespace") if isinstance(metadata, dict) else None
    return found if isinstance(found, str) and found else None


class KeyRing:
    """The active (not revoked) keys by hash. Expiry is checked per request, so no reload is needed."""

    def __init__(self, keys: Iterable[VirtualKey] = ()) -> None:
        self._by_hash = {key.key_hash: key for key in keys}

    def __len__(self) -> int:
        return len(self._by_hash)

    def find(self, presented: str) -> VirtualKey | None:
        digest = hash_key(presented)
        found = self._by_hash.get(digest)
        if found is None or not hmac.compare_digest(found.key_hash, digest):
            return None
        return found
