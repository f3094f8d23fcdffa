"""Where entries live: this process's memory (LocalStore) or one Redis for every replica (RedisStore).

Both keep encoded entries (engine.cache.entry) by key and forget them after `ttl` seconds; the entry
itself carries its expiry on the gateway's clock, which the cache checks on every read, so a store's
own expiry is housekeeping (and tests move the gateway's clock, not Redis').
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from engine.limits.redis_pipe import RedisPipe, ReplyError, command

__all__ = ["CacheStore", "CacheUnavailable", "LocalStore", "RedisStore"]

log = logging.getLogger("turnout.cache")


class CacheUnavailable(Exception):
    """The store could not be asked (Redis down or slow): a miss, and nothing is stored."""


class CacheStore(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, data: bytes, ttl: float) -> None: ...

    async def close(self) -> None: ...


class LocalStore:
    """A least-recently-used map bounded by entries and by bytes, whose entries expire."""

    def __init__(self, *, max_entries: int, max_bytes: int, clock: Callable[[], float] = time.time) -> None:
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()  # key -> (expires, data)
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        return self._bytes

    async def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return found[1]

    async def put(self, key: str, data: bytes, ttl: float) -> None:
        if len(data) > self._max_bytes:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (self._clock() + ttl, data)
        self._bytes += len(data)
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            self._drop(next(iter(self._entries)))  # the least recently used

    def _drop(self, key: str) -> None:
        _, data = self._entries.pop(key)
        self._bytes -= len(data)

    async def close(self) -> None:
        self._entries.clear()
        self._bytes = 0


CONNECT_TIMEOUT = 0.5  # seconds: a dead Redis must not hold a request up (as the limit counters)
OPERATION_TIMEOUT = 0.5
RETRY_AFTER = 5.0  # seconds without asking Redis again after it failed


class RedisStore:
    """Entries under `{prefix}cache:{key}`, set with an expiry, on one pipelined connection of its own."""

    def __init__(self, url: str, prefix: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._pipe = RedisPipe(url, connect_timeout=CONNECT_TIMEOUT, timeout=OPERATION_TIMEOUT)
        self._prefix = prefix + "cache:"
        self._clock = clock
        self._resting_until = 0.0

    async def get(self, key: str) -> bytes | None:
        found = await self._call(command("GET", self._prefix + key))
        return found if isinstance(found, bytes) else None

    async def put(self, key: str, data: bytes, ttl: float) -> None:
        await self._call(command("SET", self._prefix + key, data, "PX", max(1, round(ttl * 1000))))

    async def _call(self, payload: bytes) -> object:
        if self._clock() < self._resting_until:
            raise CacheUnavailable("Redis failed a moment ago")
        try:
            reply = await self._pipe.call(payload)
        except OSError as error:
            self._resting_until = self._clock() + RETRY_AFTER
            log.warning("response cache: Redis unavailable (%s); not asked for %g s", error, RETRY_AFTER)
            raise CacheUnavailable(str(error)) from None
        if isinstance(reply, ReplyError):
            log.warning("response cache: Redis refused a command: %s", reply)
            raise CacheUnavailable(str(reply))
        return reply

    async def close(self) -> None:
        await self._pipe.close()
