"""The limiter: which limits a key has, budget periods, refusals, headers, and unreachable counters."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from engine.errors import RateLimited
from engine.keys.ring import VirtualKey
from engine.limits.admission import Limiter, key_limits
from engine.limits.counters import CountersUnavailable, KeyLimits, Verdict
from engine.limits.local import LocalCounters

NOW = datetime(2026, 11, 22, 12, 0, 30, tzinfo=UTC).timestamp()  # 30 s into a minute


def _key(**fields: object) -> VirtualKey:
    base = VirtualKey(
        id=7,
        key_hash="h",
        key_prefix="sk-abcde",
        key_alias=None,
        models=frozenset(),
        privacy=None,
        expires_at=None,
        max_budget=None,
        budget_duration=None,
        spend=Decimal(0),
        budget_reset_at=None,
        rpm_limit=None,
        tpm_limit=None,
        max_parallel_requests=None,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def test_a_key_without_limits_skips_the_counters() -> None:
    assert key_limits(_key(), NOW) is None


def test_a_budget_without_duration_is_seeded_with_the_spend_so_far() -> None:
    limits = key_limits(_key(max_budget=Decimal(5), spend=Decimal("1.5")), NOW)
    assert limits is not None
    assert (limits.budget, limits.budget_seed, limits.budget_period, limits.budget_ttl) == (
        5,
        Decimal("1.5"),
        0,
        0,
    )


def test_a_budget_period_in_progress_and_one_that_has_lapsed() -> None:
    ends = datetime.fromtimestamp(NOW, UTC) + timedelta(hours=1)
    current = key_limits(
        _key(max_budget=Decimal(5), budget_duration="1d", budget_reset_at=ends, spend=Decimal(2)), NOW
    )
    assert current is not None
    assert current.budget_period == int(ends.timestamp()) and current.budget_seed == 2
    assert current.budget_ttl == 3600 + 3600
    # the ring still holds a period that ended 2.5 days ago: the current period ends 0.5 days from now
    lapsed = key_limits(
        _key(
            max_budget=Decimal(5),
            budget_duration="1d",
            budget_reset_at=datetime.fromtimestamp(NOW, UTC) - timedelta(days=2.5),
            spend=Decimal(2),
        ),
        NOW,
    )
    assert lapsed is not None
    assert lapsed.budget_period == int(NOW + 0.5 * 86400) and lapsed.budget_seed == 0


def _limiter(counters: object = None) -> Limiter:
    return Limiter(counters or LocalCounters(), clock=lambda: NOW)  # type: ignore[arg-type]


def test_rpm_refusal_has_retry_after_and_headers() -> None:
    limiter = _limiter()
    key = _key(rpm_limit=1)

    async def run() -> None:
        admitted = await limiter.admit(key, "a")
        assert admitted is not None
        assert admitted.headers() == {
            "x-ratelimit-limit-requests": "1",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "30s",
        }
        with pytest.raises(RateLimited) as refused:
            await limiter.admit(key, "b")
        assert refused.value.status == 429 and refused.value.code == "rate_limit_exceeded"
        assert refused.value.headers["retry-after"] == "30"
        assert "1 requests for this minute" in refused.value.message

    asyncio.run(run())


def test_budget_refusal_names_spend_and_budget() -> None:
    limiter = _limiter()
    key = _key(max_budget=Decimal("0.5"), spend=Decimal("0.75"))

    async def run() -> None:
        with pytest.raises(RateLimited) as refused:
            await limiter.admit(key, "a")
        assert refused.value.code == "budget_exceeded"
        assert "spent 0.75 of its budget of 0.5" in refused.value.message
        assert "retry-after" not in refused.value.headers  # it never resets

    asyncio.run(run())


def test_a_reservation_is_at_most_the_budget_and_refuses_the_next_request_while_held() -> None:
    counters = LocalCounters()
    limiter = _limiter(counters)
    key = _key(max_budget=Decimal("0.5"), spend=Decimal("0.125"))

    async def run() -> None:
        first = await limiter.admit(key, "a", Decimal(1000))
        assert first is not None
        with pytest.raises(RateLimited) as refused:
            await limiter.admit(key, "b", Decimal("0.01"))
        assert refused.value.code == "budget_exceeded"
        assert refused.value.message == (
            "this API key has spent 0.125 of its budget of 0.5, and its requests in progress may spend "
            "0.5 more; retry when they end"
        )
        assert refused.value.headers["retry-after"] == "1"
        # settled: the real cost replaces the reservation
        await counters.release(first.limits, "a", int(NOW // 60), 10, Decimal("0.25"))
        second = await limiter.admit(key, "c", Decimal("0.01"))
        assert second is not None and second.verdict.spend == Decimal("0.375")

    asyncio.run(run())


def test_a_key_without_budget_reserves_nothing() -> None:
    counters = LocalCounters()
    limiter = _limiter(counters)
    key = _key(max_parallel_requests=5)

    async def run() -> None:
        for ticket in "ab":
            admitted = await limiter.admit(key, ticket, Decimal(1000))
            assert admitted is not None and admitted.verdict.reserved == 0

    asyncio.run(run())


class _Down:
    calls = 0

    async def admit(
        self, limits: KeyLimits, ticket: str, minute: int, reserve: Decimal = Decimal(0)
    ) -> Verdict:
        self.calls += 1
        raise CountersUnavailable("connection refused")

    async def release(self, limits: KeyLimits, ticket: str, minute: int, tokens: int, cost: Decimal) -> None:
        raise CountersUnavailable("connection refused")

    async def release_many(self, releases: object, minute: int) -> None:
        raise CountersUnavailable("connection refused")

    async def close(self) -> None:
        pass


def test_unreachable_counters_let_requests_through_and_are_skipped_for_a_while(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = _Down()
    limiter = _limiter(down)

    async def run() -> None:
        assert await limiter.admit(_key(rpm_limit=1), "a") is None
        assert await limiter.admit(_key(rpm_limit=1), "b") is None

    asyncio.run(run())
    assert down.calls == 1, "the second request did not wait on the dead counters"
    assert "unreachable" in caplog.text


class _Slow(LocalCounters):
    """Counters that take the ticket in, then keep the caller waiting for their answer (a round trip)."""

    def __init__(self) -> None:
        super().__init__()
        self.counted = asyncio.Event()

    async def admit(
        self, limits: KeyLimits, ticket: str, minute: int, reserve: Decimal = Decimal(0)
    ) -> Verdict:
        verdict = await super().admit(limits, ticket, minute, reserve)
        self.counted.set()
        await asyncio.Event().wait()
        return verdict


def test_a_request_cancelled_while_being_admitted_releases_its_ticket() -> None:
    """A client that leaves during the counters' round trip must not keep the key's parallel slot
    (with Redis, until its ticket went stale 15 minutes later)."""
    slow = _Slow()
    limiter = _limiter(slow)
    limits = key_limits(_key(max_parallel_requests=1), NOW)
    assert limits is not None

    async def run() -> Verdict:
        admitting = asyncio.create_task(limiter.admit(_key(max_parallel_requests=1), "left"))
        await slow.counted.wait()
        admitting.cancel()
        await asyncio.gather(admitting, return_exceptions=True)
        for _ in range(100):  # the release is batched: a turn or two of the loop
            if not slow._counts[limits.key_id].inflight:
                break
            await asyncio.sleep(0)
        return await LocalCounters.admit(slow, limits, "next", int(NOW // 60))

    verdict = asyncio.run(run())
    assert verdict.refused is None, "the cancelled request still holds the key's only slot"
