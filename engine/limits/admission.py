"""Per-key limits on the request path: admit before the upstream call, release when the answer is done.

A key with no rpm, tpm, parallel or budget limit skips the counters entirely. Refusals are 429s with
`retry-after`; every answer to a limited key carries OpenAI's `x-ratelimit-*` headers. A request of a
key with a budget sets aside what it may cost (the caller's estimate, at most the budget) until its
release settles it with the real cost, so requests running at once cannot all spend past the budget.
When the shared counters are unreachable the request goes through (a gateway that stops serving
because its rate limiter is down does more harm than one that briefly does not limit) and a warning
is logged.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from engine.errors import RateLimited
from engine.keys.ring import VirtualKey, parse_duration, period_end
from engine.limits.counters import Counters, CountersUnavailable, KeyLimits, Release, Verdict

__all__ = ["Admission", "Limiter", "key_limits"]

log = logging.getLogger("turnout.limits")
_WARN_EVERY = 10.0  # seconds between warnings about unreachable counters
_KEEP_AFTER_PERIOD = 3600  # seconds a period's spend counter outlives the period (late releases)
# after the counters failed, requests skip them this long: a Redis that hangs (rather than refusing
# connections) would otherwise cost every request the client's whole timeout
_SKIP_AFTER_FAILURE = 5.0
_NOTHING = Decimal(0)


def key_limits(key: VirtualKey, now: float) -> KeyLimits | None:
    """What the counters must enforce for `key` at `now` (epoch seconds); None when nothing is limited."""
    if (
        key.rpm_limit is None
        and key.tpm_limit is None
        and key.max_parallel_requests is None
        and key.max_budget is None
    ):
        return None
    period, seed, ttl = 0, key.spend, 0
    if key.max_budget is not None and key.budget_duration and key.budget_reset_at is not None:
        ended = key.budget_reset_at
        ends = period_end(ended, parse_duration(key.budget_duration), datetime.fromtimestamp(now, UTC))
        if ends != ended:  # the ring has not been reloaded since its period ended: a new one has begun
            seed = Decimal(0)
        period, ttl = int(ends.timestamp()), int(ends.timestamp() - now) + _KEEP_AFTER_PERIOD
    return KeyLimits(
        key_id=key.id,
        rpm=key.rpm_limit,
        tpm=key.tpm_limit,
        parallel=key.max_parallel_requests,
        budget=key.max_budget,
        budget_period=period,
        budget_seed=seed,
        budget_ttl=ttl,
    )


@dataclass(slots=True)
class Admission:
    """One admitted request of a limited key; `release` it exactly once."""

    limiter: Limiter
    limits: KeyLimits
    ticket: str
    verdict: Verdict
    now: float

    def headers(self) -> dict[str, str]:
        """OpenAI's rate-limit headers for the limits this key has."""
        limits, verdict = self.limits, self.verdict
        reset = f"{_to_next_minute(self.now)}s"
        headers: dict[str, str] = {}
        if limits.rpm is not None:
            headers["x-ratelimit-limit-requests"] = str(limits.rpm)
            headers["x-ratelimit-remaining-requests"] = str(max(0, limits.rpm - verdict.requests))
            headers["x-ratelimit-reset-requests"] = reset
        if limits.tpm is not None:
            headers["x-ratelimit-limit-tokens"] = str(limits.tpm)
            headers["x-ratelimit-remaining-tokens"] = str(max(0, limits.tpm - verdict.tokens))
            headers["x-ratelimit-reset-tokens"] = reset
        return headers

    def release(self, tokens: int, cost: Decimal | None) -> None:
        """Count the request out, its `cost` replacing what it set aside (soon, batched with others
        that end meanwhile)."""
        self.limiter.release_soon(self, tokens, cost or Decimal(0))


class Limiter:
    def __init__(self, counters: Counters, *, clock: Callable[[], float] = time.time) -> None:
        self.counters = counters
        self._clock = clock
        self._warned = 0.0
        self._skip_until = 0.0  # monotonic time until which the counters are not asked
        self._pending: list[Release] = []
        self._flusher: asyncio.Task[None] | None = None

    async def admit(self, key: VirtualKey, ticket: str, reserve: Decimal = _NOTHING) -> Admission | None:
        """Count the request in, setting `reserve` aside against the key's budget, or raise RateLimited;
        None when the key has no limits (or the counters are unreachable)."""
        now = self._clock()
        limits = key_limits(key, now)
        if limits is None or time.monotonic() < self._skip_until:
            return None
        # more than the whole budget holds others back no better, and keeps the counters' sums small
        reserve = _NOTHING if limits.budget is None else min(reserve, limits.budget)
        try:
            verdict = await self.counters.admit(limits, ticket, int(now // 60), reserve)
        except CountersUnavailable as exc:
            self._skip_until = time.monotonic() + _SKIP_AFTER_FAILURE
            self._warn(f"rate-limit counters unreachable, requests let through unlimited: {exc}")
            return None
        except asyncio.CancelledError:  # the client left meanwhile: its ticket may be counted in already
            self._queue(Release(limits, ticket, 0, Decimal(0)))
            raise
        admission = Admission(self, limits, ticket, verdict, now)
        if verdict.refused is not None:
            raise _refusal(verdict, limits, now, admission.headers())
        return admission

    def release_soon(self, admission: Admission, tokens: int, cost: Decimal) -> None:
        """Queue a release; the releases of requests that end at once go to the counters in one call,
        off the response path (with Redis: one pipelined round trip for all of them)."""
        self._queue(Release(admission.limits, admission.ticket, tokens, cost))

    def _queue(self, release: Release) -> None:
        self._pending.append(release)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the requests ending in this turn of the loop join the batch
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self.counters.release_many(batch, int(self._clock() // 60))
            except CountersUnavailable as exc:
                self._warn(
                    f"rate-limit counters unreachable, {len(batch)} requests' usage not counted: {exc}"
                )

    async def close(self) -> None:
        if self._pending:
            await self._flush()
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self.counters.close()

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._warned >= _WARN_EVERY:
            self._warned = now
            log.warning(message)


def _to_next_minute(now: float) -> int:
    return max(1, math.ceil(60 - now % 60))


def _refusal(verdict: Verdict, limits: KeyLimits, now: float, headers: dict[str, str]) -> RateLimited:
    wait = _to_next_minute(now)
    if verdict.refused == "budget":
        message = f"this API key has spent {_money(verdict.spend)} of its budget of {_money(limits.budget)}"
        if limits.budget is not None and verdict.spend < limits.budget:  # the rest is set aside
            message += (
                f", and its requests in progress may spend {_money(verdict.reserved)} more; "
                "retry when they end"
            )
            headers["retry-after"] = "1"
            return RateLimited(message, code="budget_exceeded", headers=headers)
        if limits.budget_period:
            wait = max(1, math.ceil(limits.budget_period - now))
            resets = datetime.fromtimestamp(limits.budget_period, UTC).isoformat()
            message += f"; the budget resets at {resets}"
            headers["retry-after"] = str(wait)
        return RateLimited(message, code="budget_exceeded", headers=headers)
    if verdict.refused == "parallel":
        message = (
            f"this API key already has {verdict.inflight} requests in progress, its limit; "
            "retry when one ends"
        )
        wait = 1
    elif verdict.refused == "rpm":
        message = f"this API key has made its {limits.rpm} requests for this minute; retry in {wait} s"
    else:
        message = f"this API key has used its {limits.tpm} tokens for this minute; retry in {wait} s"
    headers["retry-after"] = str(wait)
    return RateLimited(message, headers=headers)


def _money(amount: Decimal | None) -> str:
    text = f"{amount or 0:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
