"""The change bus: a replica that changed shared state tells the others at once, so none of them waits
for its next polling reload. Polling stays the fallback: a message lost here is only a late reload.

Kinds sent by the gateway:
    "keys"      virtual keys changed (data: {})
    "routes"    providers, deployments, aliases, fallbacks or router settings changed in SQL (data: {})
    "cooldown"  a deployment was put in cooldown (data: {"deployment_id": int, "seconds": float})
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # redis is imported only when a replica runs with it
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

__all__ = ["ChangeBus", "Handler", "LocalBus", "RedisBus", "create_bus"]

log = logging.getLogger("turnout.replicas")

Handler = Callable[[str, dict[str, Any]], Awaitable[None]]

TIMEOUT = 0.5  # seconds: connecting, and publishing, must never hold a request up
BACKOFF_FIRST = 0.5  # seconds before resubscribing after an error, doubled up to BACKOFF_LAST
BACKOFF_LAST = 5.0
POLL = 1.0  # seconds the subscriber waits for a message before checking its connection again


class ChangeBus(Protocol):
    async def publish(self, kind: str, data: dict[str, Any]) -> None:
        """Tell the other replicas; never raises (they will see the change at their next reload)."""
        ...

    def subscribe(self, handler: Handler) -> None:
        """Call `handler(kind, data)` for every change another replica publishes."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class LocalBus:
    """One process: it has already applied its own changes, and there is no one else to hear."""

    async def publish(self, kind: str, data: dict[str, Any]) -> None:
        return None

    def subscribe(self, handler: Handler) -> None:
        return None

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisBus:
    """Changes as JSON {"kind", "data", "origin"} on the channel "{prefix}changes"; a replica ignores
    messages of its own origin, since it applied the change before publishing it."""

    def __init__(self, url: str, prefix: str) -> None:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.channel = f"{prefix}changes"
        self.origin = secrets.token_hex(8)
        self._handlers: list[Handler] = []
        self._task: asyncio.Task[None] | None = None
        # no retries inside redis-py: publishing gives up at once, subscribing retries in _listen
        options: dict[str, Any] = {"socket_connect_timeout": TIMEOUT, "retry": Retry(NoBackoff(), 0)}
        self._publisher: Redis = Redis.from_url(url, socket_timeout=TIMEOUT, **options)
        # the subscriber waits for messages, so its reads have no timeout (get_message bounds each wait)
        self._subscriber: Redis = Redis.from_url(
            url, socket_timeout=None, client_name=f"turnout-bus-{self.origin}", **options
        )

    async def publish(self, kind: str, data: dict[str, Any]) -> None:
        message = json.dumps({"kind": kind, "data": data, "origin": self.origin})
        try:
            await self._publisher.publish(self.channel, message)
        except Exception as error:  # the polling reload is the fallback
            log.warning("could not publish a %r change to the other replicas: %s", kind, error)

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    async def start(self) -> None:
        """Subscribe (so a change published after start() returns is heard) and listen in a task; when
        Redis is down the task keeps trying."""
        if self._task is not None:
            return
        pubsub = await self._subscribe()
        self._task = asyncio.create_task(self._listen(pubsub), name="turnout-change-bus")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._publisher.aclose()
        await self._subscriber.aclose()

    async def _subscribe(self) -> PubSub | None:
        pubsub = self._subscriber.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
        except Exception as error:
            log.warning("could not subscribe to the change bus %r: %s", self.channel, error)
            await _quietly_close(pubsub)
            return None
        return pubsub

    async def _listen(self, pubsub: PubSub | None) -> None:
        delay = BACKOFF_FIRST
        try:
            while True:
                if pubsub is None:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, BACKOFF_LAST)
                    pubsub = await self._subscribe()
                    continue
                try:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL)
                except Exception as error:  # Redis restarted or went away: resubscribe after a pause
                    log.warning("change bus connection lost, resubscribing: %s", error)
                    await _quietly_close(pubsub)
                    pubsub = None
                    continue
                delay = BACKOFF_FIRST
                if message is not None and message.get("type") == "message":
                    await self._dispatch(message["data"])
        finally:
            if pubsub is not None:
                await _quietly_close(pubsub)

    async def _dispatch(self, raw: bytes | str) -> None:
        try:
            message = json.loads(raw)
            kind, data, origin = message["kind"], message["data"], message["origin"]
            if not isinstance(kind, str) or not isinstance(data, dict):
                raise TypeError("kind must be a string and data an object")
        except (ValueError, TypeError, KeyError) as error:
            log.warning("ignoring a malformed change bus message %r: %s", raw, error)
            return
        if origin == self.origin:
            return
        for handler in list(self._handlers):
            try:
                await handler(kind, data)
            except Exception:  # one bad handler must not deafen this replica
                log.exception("change bus handler failed on a %r change", kind)


async def _quietly_close(pubsub: PubSub) -> None:
    with contextlib.suppress(Exception):
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py


def create_bus(redis_url: str | None, prefix: str) -> ChangeBus:
    """The bus for this deployment: Redis when replicas share one, else this process alone."""
    return RedisBus(redis_url, prefix) if redis_url else LocalBus()
