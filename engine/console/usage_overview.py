"""The overview's figures: requests, errors, tokens, cost and approximate latency percentiles over
the last hour / day / 30 days, per time bucket and per group (alias, key or provider).

Everything comes from the request rollup (engine/store/request_rollup.py) in one statement: rows of
the period's span (minutes for an hour, hours for a day, days for 30 days), summed per bucket and
group. The period is whole buckets ending with the one "now" is in, e.g. "last day" is the current
hour and the 23 before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import BigInteger, ColumnElement, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.console.key_names import MASTER_KEY_LABEL, key_labels
from engine.store.base import as_utc
from engine.store.request_rollup import LATENCY_BINS, SUMS, TTFT_BINS, request_rollup
from engine.usage.rollup import percentile

__all__ = ["GROUPINGS", "PERIODS", "Figures", "Group", "Overview", "Period", "read_overview"]


@dataclass(frozen=True, slots=True)
class Period:
    name: str  # as in the URL
    label: str
    span: str  # the rollup span of its buckets
    step: timedelta
    buckets: int

    def start(self, now: datetime) -> datetime:
        """The first moment of the period's first bucket."""
        moment = as_utc(now).replace(second=0, microsecond=0)
        if self.span in ("hour", "day"):
            moment = moment.replace(minute=0)
        if self.span == "day":
            moment = moment.replace(hour=0)
        return moment - self.step * (self.buckets - 1)


PERIODS: Final = {
    period.name: period
    for period in (
        Period("hour", "Last hour", "minute", timedelta(minutes=1), 60),
        Period("day", "Last day", "hour", timedelta(hours=1), 24),
        Period("30d", "Last 30 days", "day", timedelta(days=1), 30),
    )
}
GROUPINGS: Final = {"alias": "Alias", "key": "Key", "provider": "Provider"}
_GROUP_COLUMN = {"alias": "alias", "key": "key_id", "provider": "provider"}
_LATENCY = SUMS.index(LATENCY_BINS[0])
_TTFT = SUMS.index(TTFT_BINS[0])


@dataclass(slots=True)
class Figures:
    """Sums over some rollup rows, with their latency and TTFT histograms."""

    sums: list[Any] = field(default_factory=lambda: [0] * len(SUMS))

    def add(self, values: Sequence[Any]) -> None:
        sums = self.sums
        for index, value in enumerate(values):
            sums[index] += value

    @property
    def requests(self) -> int:
        return int(self.sums[0])

    @property
    def errors(self) -> int:
        return int(self.sums[1])

    @property
    def prompt_tokens(self) -> int:
        return int(self.sums[2])

    @property
    def completion_tokens(self) -> int:
        return int(self.sums[3])

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost(self) -> Decimal:
        return Decimal(self.sums[4])

    @property
    def streams(self) -> int:
        return int(self.sums[5])

    def latency(self, fraction: float) -> float | None:
        return percentile(self.sums[_LATENCY : _LATENCY + len(LATENCY_BINS)], fraction)

    def ttft(self, fraction: float) -> float | None:
        return percentile(self.sums[_TTFT : _TTFT + len(TTFT_BINS)], fraction)


@dataclass(slots=True)
class Group:
    label: str
    figures: Figures


@dataclass(slots=True)
class Overview:
    period: Period
    group_by: str
    start: datetime
    end: datetime
    buckets: list[datetime]
    series: list[Figures]  # one per bucket
    totals: Figures
    groups: list[Group]  # most requests first


def _summed() -> list[ColumnElement[Any]]:
    """Each column's SUM; the counts cast back to integers (PostgreSQL sums a BIGINT as NUMERIC)."""
    sums: list[ColumnElement[Any]] = []
    for name in SUMS:
        total = func.coalesce(func.sum(request_rollup.c[name]), 0)
        sums.append((total if name == "cost" else cast(total, BigInteger)).label(name))
    return sums


def _label(group_by: str, value: Any, keys: dict[int, str]) -> str:
    if group_by == "key":
        return MASTER_KEY_LABEL if value == 0 else keys.get(value, f"key #{value} (deleted)")
    if group_by == "provider" and value == "":
        return "(no deployment)"
    return str(value)


async def read_overview(
    sessions: async_sessionmaker[AsyncSession], period: Period, group_by: str, now: datetime
) -> Overview:
    start = period.start(now)
    column = request_rollup.c[_GROUP_COLUMN[group_by]]
    statement = (
        select(request_rollup.c.bucket_start, column, *_summed())
        .where(
            request_rollup.c.span == period.span,
            request_rollup.c.bucket_start >= start,
            request_rollup.c.bucket_start <= as_utc(now),
        )
        .group_by(request_rollup.c.bucket_start, column)
    )
    buckets = [start + period.step * index for index in range(period.buckets)]
    position = {bucket: index for index, bucket in enumerate(buckets)}
    series = [Figures() for _ in buckets]
    totals = Figures()
    by_group: dict[Any, Figures] = {}
    async with sessions() as session:
        for bucket_start, value, *values in await session.execute(statement):
            index = position.get(as_utc(bucket_start))
            if index is not None:
                series[index].add(values)
            totals.add(values)
            by_group.setdefault(value, Figures()).add(values)
        keys = {value for value in by_group if value} if group_by == "key" else set()
        labels = await key_labels(session, keys)
    groups = [Group(_label(group_by, value, labels), figures) for value, figures in by_group.items()]
    groups.sort(key=lambda group: (-group.figures.requests, group.label))
    return Overview(period, group_by, start, as_utc(now), buckets, series, totals, groups)
