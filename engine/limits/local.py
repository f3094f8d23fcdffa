"""Counters in this process: exact for one replica; with several, each enforces limits on its own
traffic only (budgets still converge, through the spend SQL reports at each key-ring reload)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from engine.limits.counters import KeyLimits, Release, Verdict

__all__ = ["LocalCounters"]


@dataclass(slots=True)
class _KeyCounts:
    minute: int = 0
    requests: int = 0
    tokens: int = 0
    inflight: set[str] = field(default_factory=set)
    period: int = -1
    spend: Decimal = Decimal(0)
    held: dict[str, Decimal] = field(default_factory=dict)  # reservations of requests in flight, by ticket
    reserved: Decimal = Decimal(0)  # their sum


class LocalCounters:
    def __init__(self) -> None:
        self._counts: dict[int, _KeyCounts] = {}

    def _counts_for(self, limits: KeyLimits, minute: int) -> _KeyCounts:
        counts = self._counts.get(limits.key_id)
        if counts is None:
            counts = self._counts[limits.key_id] = _KeyCounts()
        if counts.minute != minute:
            counts.minute, counts.requests, counts.tokens = minute, 0, 0
        if counts.period != limits.budget_period:
            counts.period, counts.spend = limits.budget_period, Decimal(0)
        # SQL's spend includes what other replicas recorded; this process's own may not be there yet
        counts.spend = max(counts.spend, limits.budget_seed)
        return counts

    async def admit(
        self, limits: KeyLimits, ticket: str, minute: int, reserve: Decimal = Decimal(0)
    ) -> Verdict:
        counts = self._counts_for(limits, minute)
        reserved = counts.reserved
        refused = _refusal(
            limits, counts.requests, counts.tokens, len(counts.inflight), counts.spend + reserved
        )
        if refused is None:
            counts.requests += 1
            counts.inflight.add(ticket)
            if reserve:
                counts.held[ticket] = reserve
                counts.reserved += reserve
        return Verdict(refused, counts.requests, counts.tokens, len(counts.inflight), counts.spend, reserved)

    async def release(self, limits: KeyLimits, ticket: str, minute: int, tokens: int, cost: Decimal) -> None:
        counts = self._counts_for(limits, minute)
        counts.inflight.discard(ticket)
        held = counts.held.pop(ticket, None)
        if held is not None:
            counts.reserved -= held
        counts.tokens += tokens
        counts.spend += cost

    async def release_many(self, releases: Sequence[Release], minute: int) -> None:
        for release in releases:
            await self.release(release.limits, release.ticket, minute, release.tokens, release.cost)

    async def close(self) -> None:
        self._counts.clear()


def _refusal(limits: KeyLimits, requests: int, tokens: int, inflight: int, spent: Decimal) -> str | None:
    """The first limit already reached, in the order a client can act on (budget is the hardest).
    `spent` is the spend plus the reservations of the requests in flight."""
    if limits.budget is not None and spent >= limits.budget:
        return "budget"
    if limits.parallel is not None and inflight >= limits.parallel:
        return "parallel"
    if limits.rpm is not None and requests >= limits.rpm:
        return "rpm"
    if limits.tpm is not None and tokens >= limits.tpm:
        return "tpm"
    return None
