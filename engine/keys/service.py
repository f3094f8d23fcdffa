"""Issue, read, change and revoke keys in SQL, for the admin API and `turnout keys`.

Field checks happen before any write, so a bad request changes nothing. The request path never calls
this module: it reads the `KeyRing` the gateway reloads after each change (and on an interval).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.errors import InvalidRequest, NotFound
from engine.keys.ring import KeyRing, VirtualKey, aware, hash_key, new_key, parse_duration, period_end
from engine.store.alias import AliasRow
from engine.store.api_key import ApiKeyRow
from engine.store.base import utcnow

__all__ = [
    "KEY_PRIVACY",
    "MAX_BUDGET",
    "MAX_DURATION",
    "MAX_LIMIT",
    "KeyChanges",
    "KeyService",
    "add_key",
    "change_key",
    "key_by_id",
    "key_changes",
    "key_info",
]

KEY_PRIVACY = ("local", "private")
# what the columns hold on every database: a 32-bit INTEGER, a NUMERIC(20, 10), a date before year 9999
MAX_LIMIT = 2**31 - 1
MAX_BUDGET = Decimal(10**9)
MAX_DURATION = timedelta(days=36500)  # a hundred years: `duration` and `budget_duration`
_NAME_LENGTH = 200  # key_alias and alias names are VARCHAR(200)


def _name(value: Any) -> bool:
    """A name SQL can store and compare: 1 to 200 characters, no NUL (PostgreSQL refuses it in text)."""
    return isinstance(value, str) and 0 < len(value) <= _NAME_LENGTH and "\x00" not in value


def _models(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(_name(item) for item in value):
        raise InvalidRequest(f"{name} must be a list of model names (1 to 200 characters each)", param=name)
    return sorted(set(value))


def _budget(value: Any, name: str) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = (
            Decimal(str(value))
            if isinstance(value, (int, float, str)) and not isinstance(value, bool)
            else None
        )
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or not 0 <= amount <= MAX_BUDGET:
        raise InvalidRequest(f"{name} must be a number from 0 to {MAX_BUDGET}, or null", param=name)
    return amount


def _limit(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise InvalidRequest(f"{name} must be a whole number from 1 to {MAX_LIMIT}, or null", param=name)
    return value


def _duration(value: Any, name: str) -> str | None:
    """A duration as stored: its canonical spelling ("30d"; "0030 d" is the same), at most 100 years."""
    if value is None:
        return None
    try:
        length = parse_duration(value if isinstance(value, str) else repr(value))
    except ValueError as exc:
        raise InvalidRequest(f"{name}: {exc}", param=name) from None
    if length > MAX_DURATION:
        raise InvalidRequest(f"{name} must be at most {MAX_DURATION.days} days", param=name)
    number, unit = value.strip(), value.strip()[-1]
    return f"{int(number[:-1])}{unit}"


def _text(value: Any, name: str) -> str | None:
    if value is not None and not _name(value):
        raise InvalidRequest(f"{name} must be a string of 1 to 200 characters (no NUL), or null", param=name)
    text: str | None = value
    return text


def _metadata(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"{name} must be a JSON object", param=name)
    return value


def _privacy(value: Any, name: str) -> str | None:
    if value is not None and value not in KEY_PRIVACY:
        raise InvalidRequest(f"{name} must be one of {', '.join(KEY_PRIVACY)}, or null", param=name)
    level: str | None = value
    return level


# request field -> (column attribute, check); `duration` becomes expires_at
_FIELDS: dict[str, tuple[str, Callable[[Any, str], Any]]] = {
    "models": ("models", _models),
    "max_budget": ("max_budget", _budget),
    "budget_duration": ("budget_duration", _duration),
    "rpm_limit": ("rpm_limit", _limit),
    "tpm_limit": ("tpm_limit", _limit),
    "max_parallel_requests": ("max_parallel_requests", _limit),
    "duration": ("expires_at", _duration),
    "key_alias": ("key_alias", _text),
    "metadata": ("key_metadata", _metadata),
    "privacy": ("privacy", _privacy),
}


@dataclass(frozen=True)
class KeyChanges:
    """Checked column values to set on a key."""

    values: dict[str, Any]


def key_changes(body: dict[str, Any], *, ignore: Sequence[str] = ()) -> KeyChanges:
    """The columns a /key/generate or /key/update body sets; InvalidRequest naming the first bad field."""
    unknown = sorted(set(body) - set(_FIELDS) - set(ignore))
    if unknown:
        raise InvalidRequest(
            f"unknown field(s): {', '.join(unknown)}; a key takes {', '.join(_FIELDS)}", param=unknown[0]
        )
    values: dict[str, Any] = {}
    for field, (column, check) in _FIELDS.items():
        if field in body:
            value = check(body[field], field)
            if field == "duration":
                value = None if value is None else utcnow() + parse_duration(value)
            values[column] = value
    if "budget_duration" in values:  # a new period length starts a new period now
        duration = values["budget_duration"]
        values["budget_reset_at"] = None if duration is None else utcnow() + parse_duration(duration)
    return KeyChanges(values)


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _iso(moment: datetime | None) -> str | None:
    moment = aware(moment)
    return None if moment is None else moment.isoformat()


def key_info(row: ApiKeyRow) -> dict[str, Any]:
    """What the admin API shows of a key: never the key, never its hash."""
    return {
        "key_name": f"{row.key_prefix}...",
        "key_alias": row.key_alias,
        "models": list(row.models),
        "spend": _number(row.spend),
        "max_budget": _number(row.max_budget),
        "budget_duration": row.budget_duration,
        "budget_reset_at": _iso(row.budget_reset_at),
        "rpm_limit": row.rpm_limit,
        "tpm_limit": row.tpm_limit,
        "max_parallel_requests": row.max_parallel_requests,
        "privacy": row.privacy,
        "expires": _iso(row.expires_at),
        "metadata": row.key_metadata,
        "created_at": _iso(row.created_at),
        "revoked_at": _iso(row.revoked_at),
    }


class KeyService:
    """Key rows through the gateway's (or the CLI's) session factory, one short transaction each."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(self, changes: KeyChanges) -> tuple[str, ApiKeyRow]:
        """A new key (returned once, here) and its row."""
        async with self._sessions() as session, session.begin():
            return await add_key(session, changes)

    async def info(self, key: str) -> ApiKeyRow:
        async with self._sessions() as session:
            return await _by_key(session, key)

    async def update(self, key: str, changes: KeyChanges) -> ApiKeyRow:
        async with self._sessions() as session, session.begin():
            row = await _by_key(session, key)
            await change_key(session, row, changes)
        return row

    async def revoke(self, keys: Sequence[str]) -> list[ApiKeyRow]:
        """Revoke every key or, when one is unknown, none."""
        async with self._sessions() as session, session.begin():
            rows = [await _by_key(session, key, param="keys") for key in keys]
            for row in rows:
                row.revoked_at = row.revoked_at or utcnow()
        return rows

    async def revoke_prefix(self, key_or_prefix: str) -> ApiKeyRow:
        """The CLI's revoke: the whole key, or the 8-character prefix `list` shows when it is unique."""
        async with self._sessions() as session, session.begin():
            if len(key_or_prefix) > 8:
                row = await _by_key(session, key_or_prefix)
            else:
                found = list(await session.scalars(_active().where(ApiKeyRow.key_prefix == key_or_prefix)))
                if len(found) != 1:
                    what = "no active key has" if not found else f"{len(found)} active keys have"
                    raise NotFound(f"{what} the prefix {key_or_prefix!r}; give the whole key")
                row = found[0]
            row.revoked_at = row.revoked_at or utcnow()
        return row

    async def active(self) -> list[ApiKeyRow]:
        async with self._sessions() as session:
            return list(await session.scalars(_active().order_by(ApiKeyRow.id)))

    async def ring(self) -> KeyRing:
        await self.reset_budgets()
        return KeyRing(VirtualKey.from_row(row) for row in await self.active())

    async def reset_budgets(self) -> int:
        """Start a new budget period (spend 0) for every key whose period has ended; how many were reset.

        Each reset is a compare-and-set on `budget_reset_at`, so replicas racing to reset the same key
        reset it once."""
        now = utcnow()
        async with self._sessions() as session, session.begin():
            rows = list(
                await session.execute(
                    select(ApiKeyRow.id, ApiKeyRow.budget_duration, ApiKeyRow.budget_reset_at).where(
                        ApiKeyRow.revoked_at.is_(None), ApiKeyRow.budget_reset_at <= now
                    )
                )
            )
            for key_id, duration, reset_at in rows:
                ended = aware(reset_at)
                assert ended is not None
                ends = period_end(ended, parse_duration(duration), now) if duration else None
                await session.execute(
                    update(ApiKeyRow)
                    .where(ApiKeyRow.id == key_id, ApiKeyRow.budget_reset_at == reset_at)
                    .values(spend=Decimal(0), budget_reset_at=ends)
                )
        return len(rows)


async def add_key(session: AsyncSession, changes: KeyChanges) -> tuple[str, ApiKeyRow]:
    """A new key (returned once, here) and its row, added in the caller's transaction (the console
    records its audit row in the same one)."""
    key = new_key()
    row = ApiKeyRow(key_hash=hash_key(key), key_prefix=key[:8], models=[], key_metadata={})
    for column, value in changes.values.items():
        setattr(row, column, value)
    await _check_models(session, row.models)
    session.add(row)
    await session.flush()  # the row's id and created_at, for the caller
    return key, row


async def change_key(session: AsyncSession, row: ApiKeyRow, changes: KeyChanges) -> None:
    """Apply checked changes to a key that is not revoked, in the caller's transaction."""
    if row.revoked_at is not None:
        raise InvalidRequest("this key has been revoked; generate a new one", param="key")
    if "models" in changes.values:
        await _check_models(session, changes.values["models"])
    for column, value in changes.values.items():
        setattr(row, column, value)


async def key_by_id(session: AsyncSession, key_id: int) -> ApiKeyRow:
    """A key by its row id (the console names keys by id: it never holds the key itself)."""
    row = await session.get(ApiKeyRow, key_id)
    if row is None:
        raise NotFound("no such key", param="key", code="key_not_found")
    return row


def _active() -> Any:
    return select(ApiKeyRow).where(ApiKeyRow.revoked_at.is_(None))


async def _by_key(session: AsyncSession, key: str, *, param: str = "key") -> ApiKeyRow:
    if not isinstance(key, str) or not key:
        raise InvalidRequest(f"{param} must name a key (the sk-... string)", param=param)
    row = await session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == hash_key(key)))
    if row is None:
        raise NotFound("no such key", param=param, code="key_not_found")
    return row


async def _check_models(session: AsyncSession, models: Sequence[str]) -> None:
    if not models:
        return
    known = set(await session.scalars(select(AliasRow.name).where(AliasRow.name.in_(models))))
    unknown = [name for name in models if name not in known]
    if unknown:
        raise InvalidRequest(f"no model is configured as {', '.join(map(repr, unknown))}", param="models")
