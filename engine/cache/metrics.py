"""The response cache's counters, shown by /metrics (engine.usage.metrics renders them):

    turnout_cache_hits_total{alias}        requests answered from the cache
    turnout_cache_misses_total{alias}      requests the cache could have answered and did not
    turnout_cache_stores_total{alias}      answers kept
    turnout_cache_failures_total{reason}   too_large: an answer over the entry limit, not kept;
                                           unavailable: the store (Redis) could not be asked

`alias` is always a configured alias: the cache is asked only after the alias was found.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

__all__ = ["CacheMetrics"]


class CacheMetrics:
    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.misses: dict[str, int] = {}
        self.stores: dict[str, int] = {}
        self.failures: dict[str, int] = {"too_large": 0, "unavailable": 0}

    def hit(self, alias: str) -> None:
        self.hits[alias] = self.hits.get(alias, 0) + 1

    def miss(self, alias: str) -> None:
        self.misses[alias] = self.misses.get(alias, 0) + 1

    def stored(self, alias: str) -> None:
        self.stores[alias] = self.stores.get(alias, 0) + 1

    def failed(self, reason: str) -> None:
        self.failures[reason] = self.failures.get(reason, 0) + 1

    def families(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily

        for name, documentation, counts in (
            ("turnout_cache_hits", "Requests answered from the response cache", self.hits),
            ("turnout_cache_misses", "Cacheable requests the response cache did not answer", self.misses),
            ("turnout_cache_stores", "Answers kept in the response cache", self.stores),
        ):
            family = CounterMetricFamily(name, documentation, labels=["alias"])
            for alias, count in counts.items():
                family.add_metric([alias], count)
            yield family
        failures = CounterMetricFamily(
            "turnout_cache_failures", "Answers not kept or lookups not made, by reason", labels=["reason"]
        )
        for reason, count in self.failures.items():
            failures.add_metric([reason], count)
        yield failures
