"""The counters behind per-key limits and budgets, and what every backend of them answers.

A request is admitted, then released when its answer is complete (or its stream ends). Both are one
call each; a shared backend (Redis) sends all the calls made in one turn of the event loop in one
write, so requests that arrive or end at the same moment share a round trip. Windows are whole
wall-clock minutes (epoch seconds // 60), so every replica agrees on them. The budget counter of a key is
named by its period (the epoch second at which the period ends) and seeded, on first use, with the
spend SQL knew when the key ring was loaded.

A request of a key with a budget may `reserve` what it may cost when it is admitted: a budget is
reached when the spend plus the reservations of the key's requests in flight reach it, so requests
running at once cannot all pass it. Its release settles the reservation: it goes, the real cost is
added. A reservation lives as long as its request's ticket (a shared backend drops both once stale).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

__all__ = ["Counters", "CountersUnavailable", "KeyLimits", "Release", "Verdict"]


class CountersUnavailable(Exception):
    """The shared counters could not be reached; the limiter lets the request through and logs it."""


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """What one key may do; a None limit is not counted."""

    key_id: int
    rpm: int | None = None
    tpm: int | None = None
    parallel: int | None = None
    budget: Decimal | None = None
    budget_period: int = 0  # epoch second the period ends (0: the budget never resets)
    budget_seed: Decimal = Decimal(0)  # spend SQL knew for this period when the ring was loaded
    budget_ttl: int = 0  # seconds the period's counter must outlive (0: forever)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The counts after an admission (including the admitted request) and, when refused, which limit."""

    refused: str | None  # None, "rpm", "tpm", "parallel" or "budget"
    requests: int  # this minute
    tokens: int  # this minute
    inflight: int
    spend: Decimal  # this budget period
    reserved: Decimal = Decimal(0)  # set aside by the requests in flight (this one's not included)


@dataclass(frozen=True, slots=True)
class Release:
    """One request that ended: it used `tokens` and cost `cost`."""

    limits: KeyLimits
    ticket: str
    tokens: int
    cost: Decimal


class Counters(Protocol):
    async def admit(
        self, limits: KeyLimits, ticket: str, minute: int, reserve: Decimal = Decimal(0)
    ) -> Verdict:
        """Count the request `ticket` in and set `reserve` aside for it, unless a limit is already reached
        (then count nothing)."""
        ...

    async def release(self, limits: KeyLimits, ticket: str, minute: int, tokens: int, cost: Decimal) -> None:
        """The request `ticket` ended: it used `tokens` (added to `minute`) and cost `cost` (which
        replaces its reservation)."""
        ...

    async def release_many(self, releases: Sequence[Release], minute: int) -> None:
        """Several `release`s at once (one round trip for a shared backend)."""
        ...

    async def close(self) -> None: ...
