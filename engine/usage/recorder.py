"""The request log's writer: records are queued in memory and written in batches by a background task.

`add` is a list append: the request path never waits for SQL. A batch is written every
`flush_interval` seconds, or at once when `batch_size` rows wait, in one transaction that also adds each
key's cost to its spend. A failed write keeps its rows (up to `buffer_limit`, oldest dropped first and
counted) and is retried with backoff. `close` writes everything left: the gateway calls it at shutdown,
after the server has finished the requests in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal

from sqlalchemy import insert, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.store.api_key import ApiKeyRow
from engine.store.request_log import RequestLogRow
from engine.usage.record import UsageRecord

__all__ = ["UsageRecorder"]

log = logging.getLogger("turnout.usage")
_MAX_BACKOFF = 10.0
_CLOSE_DEADLINE = 15.0  # seconds close() keeps retrying an unreachable database


class UsageRecorder:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        flush_interval: float = 0.5,
        batch_size: int = 500,
        buffer_limit: int = 100_000,
        on_dropped: Callable[[int], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._interval = flush_interval
        self._batch_size = batch_size
        self._limit = buffer_limit
        self._on_dropped = on_dropped
        self._pending: list[UsageRecord] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._plan: _InsertPlan | None = None
        self.written = 0

    def add(self, record: UsageRecord) -> None:
        pending = self._pending
        pending.append(record)
        if len(pending) >= self._batch_size:
            self._wake.set()
        if len(pending) > self._limit:
            excess = len(pending) - self._limit
            del pending[:excess]
            log.error(
                "the request log is %d rows behind the database; dropped the oldest %d", self._limit, excess
            )
            if self._on_dropped is not None:
                self._on_dropped(excess)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="turnout-usage")

    async def _run(self) -> None:
        backoff = self._interval
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
                backoff = self._interval
            except Exception:  # keep the rows and the task; the database may come back
                backoff = min(max(backoff * 2, 0.5), _MAX_BACKOFF)
                log.warning("writing the request log failed; retrying in %.1f s", backoff, exc_info=True)

    async def flush(self) -> int:
        """Write everything pending now; how many rows were written. Raises when the database does."""
        written = 0
        async with self._lock:
            while self._pending:
                # taken out first, so rows added (or dropped by `add`) meanwhile do not shift under it
                batch, self._pending = self._pending[: self._batch_size], self._pending[self._batch_size :]
                try:
                    await self._write(batch)
                except BaseException:
                    self._pending[:0] = batch
                    raise
                written += len(batch)
        self.written += written
        return written

    async def _write(self, batch: list[UsageRecord]) -> None:
        spend: dict[int, Decimal] = defaultdict(Decimal)
        for record in batch:
            if record.key_id is not None and record.cost:
                spend[record.key_id] += record.cost
        async with self._sessions() as session, session.begin():
            connection = await session.connection()
            if self._plan is None:
                self._plan = _InsertPlan(connection.dialect)
            if self._plan.sql is not None:
                await connection.exec_driver_sql(self._plan.sql, self._plan.rows(batch))
            else:
                await session.execute(insert(RequestLogRow), [record.row() for record in batch])
            for key_id in sorted(spend):  # one order on every replica: no deadlock between them
                await session.execute(
                    update(ApiKeyRow)
                    .where(ApiKeyRow.id == key_id)
                    .values(spend=ApiKeyRow.spend + spend[key_id])
                )

    async def close(self) -> None:
        """Stop the background task and write what is left (retrying for a while if the database fails)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        deadline = asyncio.get_running_loop().time() + _CLOSE_DEADLINE
        while self._pending:
            try:
                await self.flush()
            except Exception:
                if asyncio.get_running_loop().time() > deadline:
                    log.error(
                        "the request log lost %d rows at shutdown: the database is unreachable",
                        len(self._pending),
                        exc_info=True,
                    )
                    return
                await asyncio.sleep(0.5)


class _InsertPlan:
    """The request_log INSERT compiled once for the database in use, with each column's own bind
    processor from SQLAlchemy, so a batch goes to the driver's executemany as plain tuples.

    A quarter of the CPU of the ORM's bulk insert per row (~8 µs instead of ~35 µs on SQLite), which
    is the bulk of what recording costs a request. Named paramstyles fall back to the ORM path."""

    def __init__(self, dialect: Dialect) -> None:
        table = RequestLogRow.__table__
        compiled = insert(RequestLogRow).compile(dialect=dialect, column_keys=list(UsageRecord.__slots__))
        order = compiled.positiontup
        self.sql: str | None = str(compiled) if order else None
        columns = table.columns
        self._order = list(order or ())
        self._processors = [
            columns[name].type.dialect_impl(dialect).bind_processor(dialect) for name in self._order
        ]

    def rows(self, batch: list[UsageRecord]) -> list[tuple[object, ...]]:
        pairs = list(zip(self._order, self._processors, strict=True))
        rows = []
        for record in batch:
            values = []
            for name, process in pairs:
                value = getattr(record, name)
                values.append(value if process is None or value is None else process(value))
            rows.append(tuple(values))
        return rows
