"""What became of the reloads: the version in force, when it was loaded, the failures and the last error.

Shown three ways: a log line at each reload (engine.reload.reloader), a `reload` detail in
/health/readiness, and these /metrics families:

    turnout_mappings_version                            gauge, 1 at start, +1 per reload swapped in
    turnout_mappings_reload_success_timestamp_seconds   gauge, when the version in force was loaded
    turnout_mappings_reload_failures_total              counter, changes refused (the last good serves)
    turnout_config_reload_success_timestamp_seconds     gauge, when the config file was last imported
    turnout_config_reload_failures_total                counter
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

__all__ = ["ReloadRecord", "ReloadStatus"]


@dataclass(slots=True)
class ReloadRecord:
    """One kind of file: the mapping folders, or the file imported at start (--config or the default set)."""

    loaded_at: float  # epoch seconds of the version in force
    version: int = 1  # 1 at start, one more for each reload swapped in
    failures: int = 0  # reloads refused since start
    error: str | None = None  # why the last attempt failed, while no later one succeeded

    def succeeded(self, now: float) -> None:
        self.version += 1
        self.loaded_at = now
        self.error = None

    def failed(self, error: str) -> None:
        self.failures += 1
        self.error = error

    def detail(self) -> dict[str, Any]:
        detail: dict[str, Any] = {"version": self.version, "loaded_at": round(self.loaded_at, 3)}
        if self.error is not None:
            detail["error"] = self.error
        detail["failures"] = self.failures
        return detail


class ReloadStatus:
    def __init__(self, clock: Callable[[], float]) -> None:
        now = clock()
        self.clock = clock
        self.mappings = ReloadRecord(now)
        self.config = ReloadRecord(now)

    def detail(self) -> dict[str, Any]:
        """The readiness detail: {"mappings": {...}, "config": {...}}, with `error` while one stands."""
        return {"mappings": self.mappings.detail(), "config": self.config.detail()}

    def families(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        yield GaugeMetricFamily(
            "turnout_mappings_version", "Version of the mappings in force (1 at start)", self.mappings.version
        )
        for name, record in (("mappings", self.mappings), ("config", self.config)):
            yield GaugeMetricFamily(
                f"turnout_{name}_reload_success_timestamp_seconds",
                f"When the {name} in force were loaded (epoch seconds)",
                record.loaded_at,
            )
            yield CounterMetricFamily(
                f"turnout_{name}_reload_failures",
                f"Changed {name} refused as invalid; the last good version kept serving",
                record.failures,
            )
