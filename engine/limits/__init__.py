"""Per-key limits: requests and tokens per minute, parallel requests, and spend budgets."""

from __future__ import annotations

from engine.limits.counters import Counters, CountersUnavailable, KeyLimits, Verdict
from engine.limits.local import LocalCounters

__all__ = ["Counters", "CountersUnavailable", "KeyLimits", "LocalCounters", "Verdict"]
