"""The request log's writer: records are queued in memory and written in batches by a background task.

`add` makes a record storable (`bounds.fit`) and appends it: the request path never waits for SQL. A
batch is written every `flush_interval` seconds, or at once when `batch_size` rows wait, in one
transaction that also adds each key's cost to its spend. A failed write is one of two things:

- the database could not be reached or could not run the statement: the rows are kept (up to
  `buffer_limit`, oldest dropped first and counted) and retried with backoff;
- the database refused values in the batch: the batch is halved until the refused rows stand alone
  and the others are written with their spend. A refused row is tried once more without its text
  (`bounds.stripped`); refused again, only its spend is written and the row is dropped, counted and
  logged by its request id (never its content). One bad row never holds up the rows behind it.

`close` writes everything left: the gateway calls it at shutdown, after the server has finished the
requests in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from engine.usage.bounds import fit, stripped
from engine.usage.record import UsageRecord

__all__ = ["BUFFER_FULL", "REFUSED", "RowWriter", "UsageRecorder"]

log = logging.getLogger("turnout.usage")
_MAX_BACKOFF = 10.0
_CLOSE_DEADLINE = 15.0  # seconds close() keeps retrying a database that fails
# why rows were dropped (the `reason` label of turnout_usage_rows_dropped_total)
BUFFER_FULL = "buffer_full"  # the database failed for so long that the buffer overflowed
REFUSED = "refused"  # the database refused the row even without its text


class RowWriter(Protocol):
    """Where batches go (engine.usage.writer.SqlWriter; tests inject their own)."""

    def refused(self, error: BaseException) -> bool:
        """Whether `error` means the database refused the values (a retry would fail again)."""
        ...

    async def write(self, batch: list[UsageRecord], *, rows: bool = True) -> None:
        """The rows (unless `rows` is False) and their keys' spend, all or nothing."""
        ...

    async def stored(self, request_id: str) -> bool:
        """Whether the row of `request_id` is already written."""
        ...


class UsageRecorder:
    def __init__(
        self,
        writer: RowWriter,
        *,
        flush_interval: float = 0.5,
        batch_size: int = 500,
        buffer_limit: int = 100_000,
        on_dropped: Callable[[int, str], None] | None = None,
    ) -> None:
        self._writer = writer
        self._interval = flush_interval
        self._batch_size = batch_size
        self._limit = buffer_limit
        self._on_dropped = on_dropped
        self._pending: list[UsageRecord] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.written = 0

    def add(self, record: UsageRecord) -> None:
        """Queue `record` (made storable in place)."""
        pending = self._pending
        pending.append(fit(record))
        if len(pending) >= self._batch_size:
            self._wake.set()
        if len(pending) > self._limit:
            excess = len(pending) - self._limit
            del pending[:excess]
            log.error(
                "the request log is %d rows behind the database; dropped the oldest %d", self._limit, excess
            )
            self._dropped(excess, BUFFER_FULL)

    def _dropped(self, rows: int, reason: str) -> None:
        if self._on_dropped is not None:
            self._on_dropped(rows, reason)

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
        """Write the rows pending now; how many rows were written. Raises when the database fails
        (not when it refuses rows: those are set apart), with the rows not written still pending.

        Rows added while it writes wait for the next flush: going on with them would write back to
        back in small batches, each paying a transaction's fixed cost (on SQLite, ~1.5 ms of CPU per
        batch before ~20 us per row, on the 2-core machine; at c=1, 500 requests/s, batches of ~40
        rows every ~40 ms instead of one of ~250 per flush interval)."""
        written = 0
        try:
            async with self._lock:
                left = len(self._pending)
                while left > 0 and self._pending:
                    # taken out first, so rows added (or dropped by `add`) meanwhile do not shift under it
                    size = min(self._batch_size, left)
                    batch = self._pending[:size]
                    self._pending = self._pending[size:]
                    left -= size
                    written += await self._write_batch(batch)
        finally:
            self.written += written
        return written

    async def _write_batch(self, batch: list[UsageRecord]) -> int:
        """`batch`, halved around the rows the database refuses; how many rows were stored. When the
        database fails, the rows not yet written go back to the head of the queue."""
        parts = [batch]  # a stack: the part on top is written next
        written = 0
        try:
            while parts:
                part = parts[-1]
                try:
                    await self._writer.write(part)
                    written += len(part)
                except Exception as exc:
                    if not self._writer.refused(exc):
                        raise
                    if len(part) > 1:
                        middle = len(part) // 2
                        parts[-1:] = [part[middle:], part[:middle]]
                        continue
                    written += await self._set_apart(part[0])
                parts.pop()
        except BaseException:
            self._pending[:0] = [record for part in reversed(parts) for record in part]
            raise
        return written

    async def _set_apart(self, record: UsageRecord) -> int:
        """A row the database refused on its own; 1 if it is stored now, 0 if it was dropped."""
        if await self._writer.stored(record.request_id):
            return 1  # an earlier batch had committed though its answer never came back: not twice
        try:
            await self._writer.write([stripped(record)])
        except Exception as exc:
            if not self._writer.refused(exc):
                raise
        else:
            log.warning(
                "request %s: the database refused its row; stored without its text", record.request_id
            )
            return 1
        if record.key_id is not None and record.cost:
            try:
                await self._writer.write([record], rows=False)  # its key still pays
            except Exception as exc:
                if not self._writer.refused(exc):
                    raise
                log.error("request %s: its cost could not be added to its key's spend", record.request_id)
        log.error(
            "request %s: the database refused its row, even without its text; dropped", record.request_id
        )
        self._dropped(1, REFUSED)
        return 0

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
                        "the request log lost %d rows at shutdown: the database kept failing for %.0f s",
                        len(self._pending),
                        _CLOSE_DEADLINE,
                        exc_info=True,
                    )
                    return
                await asyncio.sleep(0.5)
