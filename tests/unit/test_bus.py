"""The change bus: what one replica publishes reaches the others (and not itself), through handler
failures and lost connections. Redis cases use a channel prefix of their own on the shared server."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis

from engine.replicas import LocalBus, RedisBus, create_bus
from tests.support.services import REDIS_URL

Change = tuple[str, dict[str, Any]]


@pytest.fixture
def prefix() -> str:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        pytest.skip("no Redis server at 127.0.0.1:6379 (start one to run the redis-marked tests)")
    return f"turnout-test:{uuid.uuid4().hex}:"  # channels only: nothing stored to clean up


def _recorder() -> tuple[asyncio.Queue[Change], Callable[[str, dict[str, Any]], Awaitable[None]]]:
    heard: asyncio.Queue[Change] = asyncio.Queue()

    async def handler(kind: str, data: dict[str, Any]) -> None:
        heard.put_nowait((kind, data))

    return heard, handler


async def _started(prefix: str) -> tuple[RedisBus, asyncio.Queue[Change]]:
    bus = RedisBus(REDIS_URL, prefix)
    heard, handler = _recorder()
    bus.subscribe(handler)
    await bus.start()
    return bus, heard


@pytest.mark.redis
def test_a_change_reaches_the_other_replica_and_not_its_own(prefix: str) -> None:
    async def scenario() -> None:
        (first, first_heard), (second, second_heard) = await _started(prefix), await _started(prefix)
        try:
            await first.publish("cooldown", {"deployment_id": 7, "seconds": 30.0})
            assert await asyncio.wait_for(second_heard.get(), 1) == (
                "cooldown",
                {"deployment_id": 7, "seconds": 30.0},
            )
            # messages on one channel arrive in order: had the first replica heard its own change,
            # it would come before this one
            await second.publish("keys", {})
            assert await asyncio.wait_for(first_heard.get(), 1) == ("keys", {})
            assert first_heard.empty() and second_heard.empty()
        finally:
            await first.close()
            await second.close()

    asyncio.run(scenario())


@pytest.mark.redis
def test_a_failing_handler_does_not_stop_later_changes(prefix: str) -> None:
    async def scenario() -> None:
        sender = RedisBus(REDIS_URL, prefix)
        receiver = RedisBus(REDIS_URL, prefix)
        failures = 0

        async def failing(kind: str, data: dict[str, Any]) -> None:
            nonlocal failures
            failures += 1
            raise RuntimeError("reload failed")

        heard, recording = _recorder()
        receiver.subscribe(failing)
        receiver.subscribe(recording)
        await receiver.start()
        try:
            await sender.publish("routes", {})
            await sender.publish("keys", {})
            assert await asyncio.wait_for(heard.get(), 1) == ("routes", {})
            assert await asyncio.wait_for(heard.get(), 1) == ("keys", {})
            assert failures == 2
        finally:
            await sender.close()
            await receiver.close()

    asyncio.run(scenario())


@pytest.mark.redis
def test_malformed_messages_are_skipped(prefix: str) -> None:
    async def scenario() -> None:
        sender = RedisBus(REDIS_URL, prefix)
        receiver, heard = await _started(prefix)
        raw = redis.asyncio.Redis.from_url(REDIS_URL)
        try:
            for junk in ("not json", "[1, 2]", '{"kind": "keys"}', '{"kind": 1, "data": {}, "origin": "x"}'):
                await raw.publish(receiver.channel, junk)
            await sender.publish("keys", {})
            assert await asyncio.wait_for(heard.get(), 1) == ("keys", {})
        finally:
            await raw.aclose()
            await sender.close()
            await receiver.close()

    asyncio.run(scenario())


@pytest.mark.redis
def test_the_subscriber_comes_back_after_losing_its_connection(prefix: str) -> None:
    async def scenario() -> None:
        sender = RedisBus(REDIS_URL, prefix)
        receiver, heard = await _started(prefix)
        admin = redis.asyncio.Redis.from_url(REDIS_URL)
        try:
            # what a Redis restart looks like from here: the server drops this replica's connection
            # (only ours, by its client name: other tests share the server)
            killed = await admin.client_kill_filter(_id=await _client_id(admin, receiver))
            assert killed == 1
            for _ in range(50):  # resubscribed within the first backoff (0.5 s) and a poll (1 s)
                await sender.publish("routes", {})
                try:
                    assert await asyncio.wait_for(heard.get(), 0.1) == ("routes", {})
                    break
                except TimeoutError:
                    continue
            else:
                pytest.fail("the subscriber did not come back")
        finally:
            await admin.aclose()
            await sender.close()
            await receiver.close()

    asyncio.run(scenario())


async def _client_id(admin: redis.asyncio.Redis, bus: RedisBus) -> str:
    for client in await admin.client_list(_type="pubsub"):
        if client.get("name") == f"turnout-bus-{bus.origin}":
            return str(client["id"])
    raise AssertionError("the bus's subscriber connection is not listed")


def test_a_single_process_bus_publishes_nothing() -> None:
    async def scenario() -> None:
        bus = create_bus(None, "turnout:")
        assert isinstance(bus, LocalBus)
        heard, handler = _recorder()
        bus.subscribe(handler)
        await bus.start()
        await bus.publish("keys", {})
        await asyncio.sleep(0)
        assert heard.empty()
        await bus.close()

    asyncio.run(scenario())


def test_a_redis_bus_starts_and_publishes_without_redis() -> None:
    async def scenario() -> None:
        bus = create_bus("redis://127.0.0.1:1/0", "turnout:")  # built without connecting
        assert isinstance(bus, RedisBus) and bus.channel == "turnout:changes"
        await asyncio.wait_for(bus.start(), 2)  # unreachable: the subscriber keeps trying in its task
        await bus.publish("keys", {})  # unreachable: logged and swallowed
        await bus.close()

    asyncio.run(scenario())
