"""Where finished requests go: the request log (batched SQL) and the metrics (in memory)."""

from __future__ import annotations

from engine.usage.metrics import Metrics
from engine.usage.record import UsageRecord
from engine.usage.recorder import UsageRecorder

__all__ = ["GatewaySink"]


class GatewaySink:
    """The pipeline's UsageSink in a running gateway."""

    __slots__ = ("_metrics", "_recorder")

    def __init__(self, recorder: UsageRecorder, metrics: Metrics) -> None:
        self._recorder = recorder
        self._metrics = metrics

    def started(self) -> None:
        self._metrics.started()

    def finished(self, record: UsageRecord) -> None:
        self._metrics.finished()
        self._metrics.observe(record)
        self._recorder.add(record)

    def upstream_failed(self, provider: str, deployment_id: int, status: int, code: str | None) -> None:
        self._metrics.upstream_failed(provider, deployment_id, status, code)
