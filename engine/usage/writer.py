"""The request log's SQL side: a batch of rows, their sums in the rollup the console's overview reads
(engine/usage/rollup.py) and their keys' spend in one transaction, and the rule that tells a database
refusing values from a database that cannot be reached."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.store.api_key import ApiKeyRow
from engine.store.positional import PositionalPlan
from engine.store.request_log import RequestLogRow
from engine.store.request_rollup import request_rollup
from engine.usage.record import UsageRecord
from engine.usage.rollup import COLUMNS, prune_rollup, rollup_sums, upsert_statement

__all__ = ["SqlWriter", "refused"]

log = logging.getLogger("turnout.usage")
_PRUNE_EVERY = 600.0  # seconds between prunings of the rollup's old minute and hour rows

# SQLSTATE classes of a statement refused for its values: 22 data exception (too long, bad encoding,
# out of range), 23 integrity constraint violation (a request id already stored)
_REFUSED_STATES = ("22", "23")


def refused(error: BaseException) -> bool:
    """Whether the database refused the values written (retrying them would fail again), rather than
    failing to be reached or to run the statement at all (a retry may succeed later)."""
    seen: BaseException | None = error
    for _ in range(4):  # the error, SQLAlchemy's wrapper, the DBAPI adapter's, the driver's
        if seen is None:
            return False
        if isinstance(seen, (DataError, IntegrityError)):
            return True
        state = getattr(seen, "sqlstate", None)
        if isinstance(state, str) and state[:2] in _REFUSED_STATES:
            return True
        # a driver that cannot convert a value before sending it (an int past 64 bits in SQLite, a
        # lone surrogate): raised as a plain Python error
        if isinstance(seen, (ValueError, TypeError, OverflowError)):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


class SqlWriter:
    """Writes request-log rows, adds them to the rollup and each row's cost to its key's spend, in one
    transaction: the rollup counts exactly the rows stored (a row set apart or dropped is summed only
    when and as it is stored)."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, prune_every: float = _PRUNE_EVERY
    ) -> None:
        self._sessions = sessions
        self._plans: _Plans | None = None
        self._prune_every = prune_every
        self._pruned_at: float | None = None  # monotonic seconds

    def refused(self, error: BaseException) -> bool:
        return refused(error)

    async def write(self, batch: list[UsageRecord], *, rows: bool = True) -> None:
        """The rows of `batch` and their rollup sums (unless `rows` is False) and their keys' spend, all
        or nothing."""
        spend: dict[int, Decimal] = defaultdict(Decimal)
        for record in batch:
            if record.key_id is not None and record.cost:
                spend[record.key_id] += record.cost
        async with self._sessions() as session, session.begin():
            connection = await session.connection()
            plans = self._plans
            if plans is None:
                plans = self._plans = _Plans(connection.dialect)
            if rows and plans.log.sql is not None:
                await connection.exec_driver_sql(plans.log.sql, plans.log.rows(batch, getattr))
            elif rows:
                await session.execute(insert(RequestLogRow), [record.row() for record in batch])
            if rows and batch:  # rows sorted by their key, then keys by id: one lock order on every replica
                sums = rollup_sums(batch)
                if plans.rollup.sql is not None:
                    await connection.exec_driver_sql(plans.rollup.sql, plans.rollup.tuples(sums.tuples()))
                else:
                    await session.execute(upsert_statement(connection.dialect), sums.rows())
            for key_id in sorted(spend):  # one order on every replica: no deadlock between them
                await session.execute(
                    update(ApiKeyRow)
                    .where(ApiKeyRow.id == key_id)
                    .values(spend=ApiKeyRow.spend + spend[key_id])
                )
        if rows and batch:
            await self._prune(max(record.created_at for record in batch))

    async def _prune(self, newest: datetime) -> None:
        """Now and then, the rollup's minute and hour rows no view reads any more, in a transaction of
        their own after the batch's: a failure here costs nothing but a later try."""
        now = time.monotonic()
        if self._pruned_at is not None and now - self._pruned_at < self._prune_every:
            return
        self._pruned_at = now
        try:
            async with self._sessions() as session, session.begin():
                await prune_rollup(session, newest)
        except Exception:
            log.warning("pruning the request rollup failed; trying again later", exc_info=True)

    async def stored(self, request_id: str) -> bool:
        """Whether the row of `request_id` is in the log (a batch whose commit went through unseen)."""
        async with self._sessions() as session:
            found = await session.scalar(
                select(RequestLogRow.id).where(RequestLogRow.request_id == request_id)
            )
        return found is not None


class _Plans:
    """The batch's two statements compiled once for the database in use (engine/store/positional.py)."""

    def __init__(self, dialect: Dialect) -> None:
        self.log = PositionalPlan(
            insert(RequestLogRow), RequestLogRow.__table__, dialect, UsageRecord.__slots__
        )
        self.rollup = PositionalPlan(upsert_statement(dialect), request_rollup, dialect, COLUMNS)
