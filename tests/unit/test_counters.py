"""One contract for every Counters backend: the in-process one and the Redis one shared by replicas.

Redis cases need the server at 127.0.0.1:6379 and skip, saying so, when it is not there. Each Redis case
works under its own key prefix and deletes its keys afterwards (other tests share the server).
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from decimal import Decimal

import pytest
import redis

from engine.keys.ring import VirtualKey
from engine.limits import Counters, CountersUnavailable, KeyLimits, LocalCounters
from engine.limits.admission import Limiter
from engine.limits.counters import Release
from engine.limits.redis_counters import RedisCounters
from tests.support.fake_redis import CLOSE, FakeRedis
from tests.support.services import REDIS_URL
from tests.unit.test_admission import _key

Open = Callable[[], AbstractAsyncContextManager[Counters]]  # counters living in the running loop


def _require_redis() -> None:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        pytest.skip("no Redis server at 127.0.0.1:6379 (start one to run the redis-marked tests)")


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    _require_redis()
    prefix = f"turnout-test:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _opener(counters: Callable[[], Counters]) -> Open:
    @asynccontextmanager
    async def open_counters() -> AsyncIterator[Counters]:
        opened = counters()
        try:
            yield opened
        finally:
            await opened.close()

    return open_counters


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
def open_counters(request: pytest.FixtureRequest) -> Open:
    if request.param == "local":
        return _opener(LocalCounters)
    prefix = request.getfixturevalue("redis_prefix")
    return _opener(lambda: RedisCounters(REDIS_URL, prefix))


def _run(open_counters: Open, scenario: Callable[[Counters], Awaitable[None]]) -> None:
    async def main() -> None:
        async with open_counters() as counters:
            await scenario(counters)

    asyncio.run(main())


def test_rpm_refuses_the_next_request_until_the_next_minute(open_counters: Open) -> None:
    limits = KeyLimits(key_id=1, rpm=2)

    async def scenario(counters: Counters) -> None:
        assert (await counters.admit(limits, "a", 100)).refused is None
        assert (await counters.admit(limits, "b", 100)).requests == 2
        refused = await counters.admit(limits, "c", 100)
        assert (refused.refused, refused.requests) == ("rpm", 2)
        fresh = await counters.admit(limits, "c", 101)
        assert (fresh.refused, fresh.requests) == (None, 1)

    _run(open_counters, scenario)


def test_tpm_counts_released_tokens(open_counters: Open) -> None:
    limits = KeyLimits(key_id=2, tpm=100)

    async def scenario(counters: Counters) -> None:
        await counters.admit(limits, "a", 100)
        await counters.release(limits, "a", 100, 60, Decimal(0))
        assert (await counters.admit(limits, "b", 100)).tokens == 60  # 60 < 100: still admitted
        await counters.release(limits, "b", 100, 50, Decimal(0))
        refused = await counters.admit(limits, "c", 100)
        assert (refused.refused, refused.tokens) == ("tpm", 110)
        fresh = await counters.admit(limits, "c", 101)
        assert (fresh.refused, fresh.tokens) == (None, 0)

    _run(open_counters, scenario)


def test_parallel_refuses_while_full_and_admits_after_a_release(open_counters: Open) -> None:
    limits = KeyLimits(key_id=3, parallel=2)

    async def scenario(counters: Counters) -> None:
        await counters.admit(limits, "a", 100)
        assert (await counters.admit(limits, "b", 100)).inflight == 2
        refused = await counters.admit(limits, "c", 100)
        assert (refused.refused, refused.inflight) == ("parallel", 2)
        await counters.release(limits, "a", 100, 0, Decimal(0))
        admitted = await counters.admit(limits, "c", 100)
        assert (admitted.refused, admitted.inflight) == (None, 2)

    _run(open_counters, scenario)


def test_a_refused_admission_counts_nothing(open_counters: Open) -> None:
    limits = KeyLimits(key_id=4, parallel=1)

    async def scenario(counters: Counters) -> None:
        await counters.admit(limits, "a", 100)
        for ticket in ("b", "c", "d"):
            assert (await counters.admit(limits, ticket, 100)).refused == "parallel"
        await counters.release(limits, "a", 100, 0, Decimal(0))
        admitted = await counters.admit(limits, "e", 100)
        assert (admitted.refused, admitted.requests, admitted.inflight) == (None, 2, 1)

    _run(open_counters, scenario)


def test_budget_is_seeded_added_to_and_refused_once_reached(open_counters: Open) -> None:
    period = KeyLimits(key_id=5, budget=Decimal("1.00"), budget_period=1000, budget_seed=Decimal("0.40"))

    async def scenario(counters: Counters) -> None:
        assert (await counters.admit(period, "a", 100)).spend == Decimal("0.40")
        await counters.release(period, "a", 100, 10, Decimal("0.35"))
        assert (await counters.admit(period, "b", 100)).spend == Decimal("0.75")
        await counters.release(period, "b", 100, 10, Decimal("0.25"))
        refused = await counters.admit(period, "c", 100)
        assert (refused.refused, refused.spend) == ("budget", Decimal("1.00"))
        # a new period starts from the spend SQL knows for it
        following = KeyLimits(key_id=5, budget=Decimal(1), budget_period=2000, budget_seed=Decimal("0.1"))
        admitted = await counters.admit(following, "c", 100)
        assert (admitted.refused, admitted.spend) == (None, Decimal("0.1"))

    _run(open_counters, scenario)


def test_a_higher_seed_raises_the_spend_and_a_lower_one_does_not_lower_it(open_counters: Open) -> None:
    def limits(seed: str) -> KeyLimits:
        return KeyLimits(key_id=6, budget=Decimal(2), budget_period=1000, budget_seed=Decimal(seed))

    async def scenario(counters: Counters) -> None:
        await counters.admit(limits("0.5"), "a", 100)
        await counters.release(limits("0.5"), "a", 100, 0, Decimal("0.5"))
        # other replicas recorded more: SQL's spend wins
        assert (await counters.admit(limits("1.5"), "b", 100)).spend == Decimal("1.5")
        await counters.release(limits("1.5"), "b", 100, 0, Decimal("0.25"))
        # a stale seed (loaded before those costs) does not undo them
        assert (await counters.admit(limits("0.5"), "c", 100)).spend == Decimal("1.75")
        await counters.release(limits("0.5"), "c", 100, 0, Decimal("0.25"))
        refused = await counters.admit(limits("0.5"), "d", 100)
        assert (refused.refused, refused.spend) == ("budget", Decimal("2"))  # over budget counts too

    _run(open_counters, scenario)


def test_spend_is_exact_after_many_small_costs(open_counters: Open) -> None:
    limits = KeyLimits(key_id=7, budget=Decimal(1))

    async def scenario(counters: Counters) -> None:
        for number in range(1000):
            await counters.release(limits, f"t{number}", 100, 1, Decimal("0.0000001"))
        assert (await counters.admit(limits, "last", 100)).spend == Decimal("0.0001")

    _run(open_counters, scenario)


# Redis only: what several replicas and a failing server add to the contract


@pytest.mark.redis
def test_replicas_share_their_counts(redis_prefix: str) -> None:
    limits = KeyLimits(key_id=8, rpm=3, parallel=5)

    async def scenario() -> None:
        first, second = RedisCounters(REDIS_URL, redis_prefix), RedisCounters(REDIS_URL, redis_prefix)
        try:
            await first.admit(limits, "a", 100)
            assert (await second.admit(limits, "b", 100)).requests == 2
            await second.release(limits, "a", 100, 40, Decimal("0.5"))  # released by another replica
            seen = await first.admit(limits, "c", 100)
            assert (seen.requests, seen.tokens, seen.inflight, seen.spend) == (3, 40, 2, Decimal("0.5"))
            assert (await second.admit(limits, "d", 100)).refused == "rpm"
        finally:
            await first.close()
            await second.close()

    asyncio.run(scenario())


@pytest.mark.redis
def test_stale_tickets_free_their_slot(redis_prefix: str) -> None:
    limits = KeyLimits(key_id=9, parallel=1)

    async def scenario() -> None:
        counters = RedisCounters(REDIS_URL, redis_prefix, stale_after=0.05)
        try:
            await counters.admit(limits, "orphan", 100)  # its replica dies before releasing it
            assert (await counters.admit(limits, "b", 100)).refused == "parallel"
            deadline = time.monotonic() + 5
            while (admitted := await counters.admit(limits, "b", 100)).refused is not None:
                assert time.monotonic() < deadline, "the stale ticket never freed its slot"
                await asyncio.sleep(0.01)
            assert admitted.inflight == 1
        finally:
            await counters.close()

    asyncio.run(scenario())


@pytest.mark.redis
def test_costs_round_half_up_to_nano_units(redis_prefix: str) -> None:
    limits = KeyLimits(key_id=10, budget_seed=Decimal("0.0000000004"))  # rounds down to 0

    async def scenario() -> None:
        counters = RedisCounters(REDIS_URL, redis_prefix)
        try:
            await counters.release(limits, "a", 100, 0, Decimal("0.0000000005"))  # rounds up
            await counters.release(limits, "b", 100, 0, Decimal("0.0000000014"))  # rounds down
            assert (await counters.admit(limits, "c", 100)).spend == Decimal("0.000000002")
        finally:
            await counters.close()

    asyncio.run(scenario())


def test_an_unreachable_redis_is_reported_quickly() -> None:
    limits = KeyLimits(key_id=11, rpm=1)

    async def scenario() -> None:
        counters = RedisCounters("redis://127.0.0.1:1/0", "turnout-test:")
        try:
            started = time.monotonic()
            with pytest.raises(CountersUnavailable):
                await counters.admit(limits, "a", 100)
            with pytest.raises(CountersUnavailable):
                await counters.release(limits, "a", 100, 1, Decimal(1))
            assert time.monotonic() - started < 2
        finally:
            await counters.close()

    asyncio.run(scenario())


def test_release_many_counts_every_release_once(open_counters: Open) -> None:
    limits = KeyLimits(key_id=9, tpm=1000, parallel=5, budget=Decimal(10))

    async def scenario(counters: Counters) -> None:
        for ticket in "abc":
            await counters.admit(limits, ticket, 100)
        releases = [Release(limits, ticket, 7, Decimal("0.001")) for ticket in "abc"]
        await counters.release_many(releases, 100)
        after = await counters.admit(limits, "d", 100)
        assert (after.tokens, after.inflight, after.spend) == (21, 1, Decimal("0.003"))

    _run(open_counters, scenario)


def test_reservations_hold_the_budget_until_settled_by_the_real_cost(open_counters: Open) -> None:
    limits = KeyLimits(key_id=12, budget=Decimal("1.00"), budget_seed=Decimal("0.25"))

    async def scenario(counters: Counters) -> None:
        first = await counters.admit(limits, "a", 100, Decimal("0.5"))
        assert (first.refused, first.spend, first.reserved) == (None, Decimal("0.25"), 0)
        # 0.25 spent + 0.5 set aside < 1: admitted, and sets its own aside
        second = await counters.admit(limits, "b", 100, Decimal("0.5"))
        assert (second.refused, second.reserved) == (None, Decimal("0.5"))
        refused = await counters.admit(limits, "c", 100, Decimal("0.01"))
        assert (refused.refused, refused.spend, refused.reserved) == ("budget", Decimal("0.25"), Decimal(1))
        # the first ends: it cost 0.125, not the 0.5 it set aside
        await counters.release(limits, "a", 100, 10, Decimal("0.125"))
        third = await counters.admit(limits, "c", 100, Decimal("0.01"))
        assert (third.refused, third.spend, third.reserved) == (None, Decimal("0.375"), Decimal("0.5"))
        await counters.release_many([Release(limits, "b", 10, Decimal("0.5"))], 100)
        await counters.release(limits, "c", 100, 10, Decimal("0.25"))
        settled = await counters.admit(limits, "d", 100)
        assert (settled.refused, settled.spend, settled.reserved) == ("budget", Decimal("1.125"), 0)

    _run(open_counters, scenario)


def test_a_failed_request_gives_its_reservation_back(open_counters: Open) -> None:
    limits = KeyLimits(key_id=13, budget=Decimal("1"))

    async def scenario(counters: Counters) -> None:
        await counters.admit(limits, "a", 100, Decimal("1"))
        assert (await counters.admit(limits, "b", 100)).refused == "budget"
        await counters.release(limits, "a", 100, 0, Decimal(0))
        admitted = await counters.admit(limits, "b", 100)
        assert (admitted.refused, admitted.spend, admitted.reserved) == (None, 0, 0)

    _run(open_counters, scenario)


@pytest.mark.redis
def test_a_stale_tickets_reservation_goes_with_it(redis_prefix: str) -> None:
    limits = KeyLimits(key_id=14, budget=Decimal("1"))

    async def scenario() -> None:
        counters = RedisCounters(REDIS_URL, redis_prefix, stale_after=0.05)
        try:
            await counters.admit(limits, "orphan", 100, Decimal("1"))  # its replica dies holding it
            deadline = time.monotonic() + 5
            while (verdict := await counters.admit(limits, "b", 100)).refused is not None:
                assert time.monotonic() < deadline, "the stale reservation was never dropped"
                await asyncio.sleep(0.01)
            assert (verdict.spend, verdict.reserved, verdict.inflight) == (0, 0, 1)
        finally:
            await counters.close()

    asyncio.run(scenario())


# Redis only: one round trip for what arrives together, and what a failed round trip does


@pytest.mark.redis
def test_admissions_arriving_together_share_one_round_trip(redis_prefix: str) -> None:
    limits = KeyLimits(key_id=15, rpm=100, parallel=32, budget=Decimal(10))

    async def scenario() -> None:
        counters = RedisCounters(REDIS_URL, redis_prefix)
        try:
            await counters.admit(limits, "first", 100, Decimal("0.5"))  # the connection is open
            writes = counters.pipe.traffic.writes
            verdicts = await asyncio.gather(
                *(counters.admit(limits, f"t{n}", 100, Decimal("0.25")) for n in range(32))
            )
            assert counters.pipe.traffic.writes - writes == 1
            admitted = [v for v in verdicts if v.refused is None]
            # each admission ran on its own, in order: 31 more fit beside the first, the 32nd is refused
            assert sorted(v.requests for v in admitted) == list(range(2, 33))
            assert sorted(v.inflight for v in admitted) == list(range(2, 33))
            assert [v.refused for v in verdicts[31:]] == ["parallel"]
            assert sorted(v.reserved for v in admitted) == [
                Decimal("0.5") + Decimal("0.25") * n for n in range(31)
            ]
            writes = counters.pipe.traffic.writes
            releases = [Release(limits, f"t{n}", 1, Decimal("0.001")) for n in range(31)]
            _, after = await asyncio.gather(
                counters.release_many(releases, 100), counters.admit(limits, "x", 100)
            )
            assert counters.pipe.traffic.writes - writes == 1
            assert (after.refused, after.inflight, after.tokens) == (None, 2, 31)
        finally:
            await counters.close()

    asyncio.run(scenario())


_ADMITTED = b"*6\r\n$0\r\n\r\n:1\r\n:0\r\n:1\r\n$1\r\n0\r\n:0\r\n"  # what the admit script answers


def test_a_failed_round_trip_fails_each_admission_in_it() -> None:
    limits = KeyLimits(key_id=16, rpm=10)

    async def scenario() -> None:
        async with FakeRedis(lambda sent: CLOSE) as fake:
            counters = RedisCounters(fake.url(), "t:")
            failed = await asyncio.gather(
                *(counters.admit(limits, f"t{n}", 100) for n in range(4)),
                counters.release(limits, "r", 100, 1, Decimal(0)),
                return_exceptions=True,
            )
            assert [type(error) for error in failed] == [CountersUnavailable] * 5
            await counters.close()

    asyncio.run(scenario())


def test_a_failed_round_trip_lets_each_request_through_once_warned(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with FakeRedis(lambda sent: CLOSE) as fake:
            limiter = Limiter(RedisCounters(fake.url(), "t:"))
            key = _limited_key()
            admitted = await asyncio.gather(*(limiter.admit(key, f"t{n}") for n in range(4)))
            assert admitted == [None] * 4
            assert await limiter.admit(key, "later") is None
            assert fake.connections == 1  # one round trip failed, then the counters are skipped a while
            await limiter.close()

    asyncio.run(scenario())
    assert caplog.text.count("unreachable") == 1


def test_a_script_redis_does_not_know_is_sent_whole() -> None:
    def answer(sent: list[bytes]) -> bytes:
        return b"-NOSCRIPT No matching script.\r\n" if sent[0] == b"EVALSHA" else _ADMITTED

    async def scenario() -> None:
        async with FakeRedis(answer) as fake:
            counters = RedisCounters(fake.url(), "t:")
            verdict = await counters.admit(KeyLimits(key_id=17, rpm=10), "a", 100)
            assert (verdict.refused, verdict.requests, verdict.inflight) == (None, 1, 1)
            assert [sent[0] for sent in fake.commands] == [b"EVALSHA", b"EVAL"]
            assert fake.commands[0][3:] == fake.commands[1][3:]  # the same keys and arguments
            await counters.close()

    asyncio.run(scenario())


def test_a_request_that_leaves_while_admitted_is_released_after_its_admission() -> None:
    """Its release and its admission go over one connection, so the release cannot overtake it (and
    leave the admitted ticket holding a parallel slot until it goes stale)."""

    async def scenario() -> None:
        async with FakeRedis(lambda sent: _ADMITTED if len(sent) > 12 else b":1\r\n") as fake:
            limiter = Limiter(RedisCounters(fake.url(), "t:"), clock=lambda: 6000.0)  # minute 100
            fake.held = True
            admitting = asyncio.ensure_future(limiter.admit(_limited_key(), "left"))
            await fake.wait_for(1)
            admitting.cancel()
            await fake.wait_for(2)
            fake.release()
            await limiter.close()
            admit, release = fake.commands
            assert (admit[3], release[4]) == (b"t:limit:7:req:100", b"t:limit:7:inflight")
            assert (len(admit), len(release)) == (17, 12) and admit[8] == release[7] == b"left"

    asyncio.run(scenario())


def _limited_key() -> VirtualKey:
    return _key(rpm_limit=10, max_parallel_requests=1)
