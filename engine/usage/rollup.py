"""Summing request-log rows into the rollup (engine/store/request_rollup.py), and reading percentiles
back out of its histograms.

The usage writer calls `rollup_sums` on each batch it writes and upserts the result in the batch's own
transaction, so the rollup holds exactly the rows the log holds; the migration that created the table
fills it from the log with the same functions.

Histogram bin `i` holds values from 2**(i/2) ms up to 2**((i+1)/2) ms (bin 0 also everything under
1 ms, the last bin everything above its start): a percentile read from it is within one half-octave,
and interpolating inside the bin usually brings it much closer. The console shows it with "≈".
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Protocol

from sqlalchemy import Connection, Insert, delete
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from engine.store.base import as_utc
from engine.store.request_rollup import BINS, SUMS, request_rollup

__all__ = [
    "COLUMNS",
    "KEPT",
    "LoggedRequest",
    "RollupSums",
    "bin_of",
    "percentile",
    "prune_rollup",
    "rollup_sums",
    "upsert_statement",
    "write_rollup",
]

# how long minute and hour rows are kept: the "last hour" and "last day" views read nothing older
KEPT: Final = {"minute": timedelta(hours=2), "hour": timedelta(days=2)}
_KEY = ("span", "bucket_start", "alias", "key_id", "provider")
COLUMNS: Final = (*_KEY, *SUMS)  # a rollup row's columns, as `rows` names them
_LATENCY = SUMS.index("latency_00")
_TTFT = SUMS.index("ttft_00")
_COST = SUMS.index("cost")


class LoggedRequest(Protocol):
    """What the rollup reads of a request: a UsageRecord or a request_log row."""

    @property
    def created_at(self) -> datetime: ...
    @property
    def alias(self) -> str: ...
    @property
    def key_id(self) -> int | None: ...
    @property
    def provider(self) -> str | None: ...
    @property
    def status(self) -> int: ...
    @property
    def prompt_tokens(self) -> int | None: ...
    @property
    def completion_tokens(self) -> int | None: ...
    @property
    def cost(self) -> Decimal | None: ...
    @property
    def latency_ms(self) -> float: ...
    @property
    def ttft_ms(self) -> float | None: ...


def bin_of(milliseconds: float) -> int:
    """The histogram bin of a duration (anything not a positive finite number goes in bin 0)."""
    if not milliseconds > 1.0:  # also NaN
        return 0
    if math.isinf(milliseconds):
        return BINS - 1
    return min(BINS - 1, int(math.log2(milliseconds) * 2))


class RollupSums:
    """Rollup rows being summed: requests are added one by one, then `rows()` gives the rows to upsert.
    Requests before `minutes_from` (`hours_from`) skip the minute (hour) rows: the migration's
    backfill fills those only for the recent past the overview reads them for."""

    def __init__(self, *, minutes_from: datetime | None = None, hours_from: datetime | None = None) -> None:
        self._sums: dict[tuple[Any, ...], list[Any]] = {}
        self._starts: dict[datetime, tuple[datetime, datetime]] = {}  # minute -> (hour, day)
        self._minutes_from = None if minutes_from is None else as_utc(minutes_from)
        self._hours_from = None if hours_from is None else as_utc(hours_from)

    def add(
        self,
        created_at: datetime,
        alias: str,
        key_id: int | None,
        provider: str | None,
        status: int,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        cost: Decimal | None,
        latency_ms: float,
        ttft_ms: float | None,
    ) -> None:
        if created_at.tzinfo is not UTC:  # records are UTC already; SQLite's rows are naive UTC
            created_at = as_utc(created_at)
        minute = created_at.replace(second=0, microsecond=0)
        starts = self._starts.get(minute)
        if starts is None:  # a batch's records share a few minutes: work those out once
            hour = minute.replace(minute=0)
            starts = self._starts[minute] = (hour, hour.replace(hour=0))
        hour, day = starts
        key_id = key_id or 0
        provider = provider or ""
        keys = [("day", day, alias, key_id, provider)]
        if self._hours_from is None or minute >= self._hours_from:
            keys.append(("hour", hour, alias, key_id, provider))
        if self._minutes_from is None or minute >= self._minutes_from:
            keys.append(("minute", minute, alias, key_id, provider))
        latency_bin = _LATENCY + bin_of(latency_ms)
        ttft_bin = None if ttft_ms is None else _TTFT + bin_of(ttft_ms)
        error = 1 if status >= 400 else 0
        prompt_tokens = prompt_tokens or 0
        completion_tokens = completion_tokens or 0
        sums = self._sums
        for key in keys:
            found = sums.get(key)
            if found is None:
                found = sums[key] = [0] * len(SUMS)
                found[_COST] = Decimal(0)
            found[0] += 1
            found[1] += error
            found[2] += prompt_tokens
            found[3] += completion_tokens
            if cost is not None:
                found[_COST] += cost
            found[latency_bin] += 1
            if ttft_bin is not None:
                found[5] += 1
                found[ttft_bin] += 1

    def rows(self) -> list[dict[str, Any]]:
        """The rows, sorted by their primary key: concurrent writers then lock rows in one order and
        never deadlock."""
        return [dict(zip(COLUMNS, row, strict=True)) for row in self.tuples()]

    def tuples(self) -> list[tuple[Any, ...]]:
        """The rows as `rows` sorts them, each with its values in the order of COLUMNS."""
        return [(*key, *values) for key, values in sorted(self._sums.items())]


def rollup_sums(requests: Iterable[LoggedRequest]) -> RollupSums:
    """What these requests add to the rollup (one row per span, bucket and group)."""
    sums = RollupSums()
    for request in requests:
        sums.add(
            request.created_at,
            request.alias,
            request.key_id,
            request.provider,
            request.status,
            request.prompt_tokens,
            request.completion_tokens,
            request.cost,
            request.latency_ms,
            request.ttft_ms,
        )
    return sums


def upsert_statement(dialect: Dialect) -> Insert:
    """INSERT of rollup rows that adds to a row already there (SQLite and PostgreSQL)."""
    return _upsert(dialect.name)


@functools.cache
def _upsert(dialect_name: str) -> Insert:
    # imported here: the PostgreSQL dialect costs ~4 MB, which a SQLite gateway never needs
    table = request_rollup.c
    if dialect_name == "postgresql":
        from sqlalchemy.dialects import postgresql

        on_postgresql = postgresql.insert(request_rollup)
        added = {name: table[name] + on_postgresql.excluded[name] for name in SUMS}
        return on_postgresql.on_conflict_do_update(index_elements=list(_KEY), set_=added)
    from sqlalchemy.dialects import sqlite

    on_sqlite = sqlite.insert(request_rollup)
    added = {name: table[name] + on_sqlite.excluded[name] for name in SUMS}
    return on_sqlite.on_conflict_do_update(index_elements=list(_KEY), set_=added)


def write_rollup(connection: Connection, sums: RollupSums) -> None:
    """Upsert what `sums` holds on a synchronous connection (the migration's backfill)."""
    rows = sums.rows()
    if rows:
        connection.execute(upsert_statement(connection.dialect), rows)


async def prune_rollup(session: AsyncSession, newest: datetime) -> None:
    """Delete the minute and hour rows older than what the overview reads (KEPT before `newest`, the
    newest request written: the log's own clock). Day rows stay: one per day and group."""
    for span, kept in KEPT.items():
        await session.execute(
            delete(request_rollup).where(
                request_rollup.c.span == span, request_rollup.c.bucket_start < as_utc(newest) - kept
            )
        )


def percentile(counts: Sequence[int], fraction: float) -> float | None:
    """The value below which `fraction` of a histogram's values lie, in ms (None for no values)."""
    total = sum(counts)
    if total == 0:
        return None
    target = fraction * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= target:
            low, high = math.exp2(index / 2), math.exp2((index + 1) / 2)
            if index == 0:
                return high * min(1.0, max(0.0, (target - seen) / count))
            share = min(1.0, max(0.0, (target - seen) / count))
            return low * math.pow(high / low, share)  # log-linear inside the bin
        seen += count
    return math.exp2((len(counts) - 1) / 2)
