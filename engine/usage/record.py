"""What one request did, as the usage recorder writes it and the metrics count it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

__all__ = ["UsageRecord"]


@dataclass(slots=True)
class UsageRecord:
    """One request that reached the pipeline; its fields are the columns of store/request_log.py."""

    request_id: str
    created_at: datetime
    operation: str
    alias: str
    key_id: int | None = None
    stream: bool = False
    deployment_id: int | None = None
    provider: str | None = None
    upstream_model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    cached_tokens: int | None = None
    tokens_estimated: bool = False
    cost: Decimal | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    status: int = 200
    error_type: str | None = None
    error_code: str | None = None
    attempts: int = 0
    cache_hit: bool = False  # answered by the response cache: no upstream call, no tokens, cost 0

    def row(self) -> dict[str, Any]:
        """The column values, for a Core executemany insert."""
        return {name: getattr(self, name) for name in self.__slots__}

    @property
    def total_tokens(self) -> int:
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)
