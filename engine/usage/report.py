"""Reads over the request log: spend and usage totals per group, the log itself page by page, and the
rows LiteLLM's /spend/logs shows. The same statements run on SQLite and PostgreSQL.

Times are UTC throughout: SQLite stores a datetime without its offset, so every bound is converted
to UTC before it is compared, and a day is the UTC day on both databases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import BigInteger, ColumnElement, Date, Label, Select, case, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from engine.store.api_key import ApiKeyRow
from engine.store.base import as_utc
from engine.store.request_log import RequestLogRow

__all__ = ["GROUPS", "LogFilter", "UsageReport", "UsageTotals"]

GROUPS: Final = ("key", "alias", "deployment", "day")

# costs are summed as whole units of 1e-10 (the column's scale): SQLite keeps NUMERIC as a float, and
# a float sum over many rows drifts in the last digits; an integer sum is exact on both databases
_COST_DIGITS = 10
_COST_SCALE = 10**_COST_DIGITS


class UtcDay(FunctionElement[date]):
    """The UTC calendar day of a timestamp column."""

    type = Date()
    inherit_cache = True


@compiles(UtcDay)
def _utc_day(element: UtcDay, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite's date() reads the stored text, which is already UTC wall time
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(UtcDay, "postgresql")
def _utc_day_postgresql(element: UtcDay, compiler: SQLCompiler, **kw: Any) -> str:
    # date(timestamptz) uses the session's TimeZone setting; pin it to UTC
    return f"date(timezone('UTC', {compiler.process(element.clauses, **kw)}))"


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Which rows of the request log to read; None means "any"."""

    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    key_id: int | None = None
    alias: str | None = None
    deployment_id: int | None = None
    status: int | None = None
    status_range: tuple[int, int] | None = None  # inclusive, e.g. (500, 599)
    without_key: bool = False  # only requests with no virtual key (the master key, an open gateway)
    errors_only: bool = False  # status >= 400
    request_id: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        row = RequestLogRow
        found: list[ColumnElement[bool]] = []
        if self.start is not None:
            found.append(row.created_at >= as_utc(self.start))
        if self.end is not None:
            found.append(row.created_at < as_utc(self.end))
        if self.key_id is not None:
            found.append(row.key_id == self.key_id)
        if self.alias is not None:
            found.append(row.alias == self.alias)
        if self.deployment_id is not None:
            found.append(row.deployment_id == self.deployment_id)
        if self.status is not None:
            found.append(row.status == self.status)
        if self.status_range is not None:
            found.append(row.status.between(*self.status_range))
        if self.without_key:
            found.append(row.key_id.is_(None))
        if self.errors_only:
            found.append(row.status >= 400)
        if self.request_id is not None:
            found.append(row.request_id == self.request_id)
        return found


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """One group of the usage report: the group's fields (e.g. {"day": date(...)}) and its totals."""

    group: dict[str, Any] = field(default_factory=dict)
    requests: int = 0
    errors: int = 0  # status >= 400
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    cost: Decimal = Decimal(0)  # unpriced requests add nothing
    latency_ms_avg: float | None = None


_GROUP_COLUMNS: dict[str, tuple[Label[Any], ...]] = {
    "key": (RequestLogRow.key_id.label("key_id"), ApiKeyRow.key_alias.label("key_alias")),
    "alias": (RequestLogRow.alias.label("alias"),),
    "deployment": (
        RequestLogRow.deployment_id.label("deployment_id"),
        RequestLogRow.provider.label("provider"),
        RequestLogRow.upstream_model.label("upstream_model"),
    ),
    "day": (UtcDay(RequestLogRow.created_at).label("day"),),
}


def _total(column: Any, name: str) -> ColumnElement[Any]:
    return func.coalesce(func.sum(column), 0).label(name)


_COST_UNITS = cast(func.round(RequestLogRow.cost * literal(_COST_SCALE, BigInteger)), BigInteger)
_TOTALS: tuple[ColumnElement[Any], ...] = (
    func.count().label("requests"),
    _total(case((RequestLogRow.status >= 400, 1), else_=0), "errors"),
    _total(RequestLogRow.prompt_tokens, "prompt_tokens"),
    _total(RequestLogRow.completion_tokens, "completion_tokens"),
    _total(RequestLogRow.reasoning_tokens, "reasoning_tokens"),
    _total(RequestLogRow.cached_tokens, "cached_tokens"),
    _total(_COST_UNITS, "cost_units"),
    func.avg(RequestLogRow.latency_ms).label("latency_ms_avg"),
)


def _usage_statement(group_by: Sequence[str], where: LogFilter) -> Select[Any]:
    """Totals per group, sorted by the group fields in the order asked (no key, i.e. the master key,
    and no deployment come first on both databases)."""
    columns = [column for name in group_by for column in _GROUP_COLUMNS[name]]
    statement = select(*columns, *_TOTALS).select_from(RequestLogRow)
    if "key" in group_by:
        statement = statement.outerjoin(ApiKeyRow, ApiKeyRow.id == RequestLogRow.key_id)
    return (
        statement.where(*where.conditions())
        .group_by(*columns)
        .order_by(*(column.nulls_first() for column in columns))
    )


def _totals(row: Any, names: Sequence[str]) -> UsageTotals:
    values = row._mapping
    average = values["latency_ms_avg"]
    return UsageTotals(
        group={name: values[name] for name in names},
        requests=int(values["requests"]),
        errors=int(values["errors"]),
        prompt_tokens=int(values["prompt_tokens"]),
        completion_tokens=int(values["completion_tokens"]),
        reasoning_tokens=int(values["reasoning_tokens"]),
        cached_tokens=int(values["cached_tokens"]),
        cost=Decimal(values["cost_units"]).scaleb(-_COST_DIGITS),
        latency_ms_avg=None if average is None else float(average),
    )


class UsageReport:
    """The report queries, each in its own short session."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def usage(self, group_by: Sequence[str], where: LogFilter) -> list[UsageTotals]:
        unknown = [name for name in group_by if name not in GROUPS]
        if unknown or not group_by:
            raise ValueError(f"group_by must name some of {', '.join(GROUPS)}; got {list(group_by)}")
        names = [column.name for name in group_by for column in _GROUP_COLUMNS[name]]
        async with self._sessions() as session:
            result = await session.execute(_usage_statement(group_by, where))
            return [_totals(row, names) for row in result]

    async def requests(
        self, where: LogFilter, *, limit: int, before_id: int | None = None
    ) -> list[RequestLogRow]:
        """Newest (highest id) first; `before_id` is the keyset cursor: only rows with a lower id."""
        statement = select(RequestLogRow).where(*where.conditions())
        if before_id is not None:
            statement = statement.where(RequestLogRow.id < before_id)
        statement = statement.order_by(RequestLogRow.id.desc()).limit(limit)
        async with self._sessions() as session:
            return list(await session.scalars(statement))

    async def requests_with_key_hash(
        self, where: LogFilter, *, limit: int
    ) -> list[tuple[RequestLogRow, str | None]]:
        """Newest first, each with its key's SHA-256 (None for the master key or an open gateway)."""
        statement = (
            select(RequestLogRow, ApiKeyRow.key_hash)
            .outerjoin(ApiKeyRow, ApiKeyRow.id == RequestLogRow.key_id)
            .where(*where.conditions())
            .order_by(RequestLogRow.id.desc())
            .limit(limit)
        )
        async with self._sessions() as session:
            return [(row, key_hash) for row, key_hash in await session.execute(statement)]

    async def key_id(self, key_hash: str) -> int | None:
        """The id of the key with this SHA-256, revoked or not (its past requests still count)."""
        async with self._sessions() as session:
            found: int | None = await session.scalar(
                select(ApiKeyRow.id).where(ApiKeyRow.key_hash == key_hash)
            )
            return found
