"""One row per request that reached the pipeline (answered or refused), written in batches by the
usage recorder (engine/usage/recorder.py), never on the request path."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Index, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base

__all__ = ["RequestLogRow"]

# BIGINT on PostgreSQL; SQLite only auto-increments an INTEGER primary key
_ROW_ID = BigInteger().with_variant(Integer(), "sqlite")


class RequestLogRow(Base):
    __tablename__ = "request_log"
    __table_args__ = (
        Index("ix_request_log_key_id_created_at", "key_id", "created_at"),
        Index("ix_request_log_alias_created_at", "alias", "created_at"),
        Index("ix_request_log_deployment_id_created_at", "deployment_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(_ROW_ID, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(32), unique=True)  # the x-turnout-request-id header
    created_at: Mapped[datetime] = mapped_column(index=True)  # when the request arrived
    key_id: Mapped[int | None]  # the virtual key; None for the master key or an open gateway
    alias: Mapped[str] = mapped_column(String(200))
    operation: Mapped[str] = mapped_column(String(20))  # chat, embeddings, speech, ...
    stream: Mapped[bool]
    deployment_id: Mapped[int | None]  # the deployment that answered (or was tried last)
    provider: Mapped[str | None] = mapped_column(String(100))
    upstream_model: Mapped[str | None] = mapped_column(String(200))
    prompt_tokens: Mapped[int | None]
    completion_tokens: Mapped[int | None]
    reasoning_tokens: Mapped[int | None]  # of completion_tokens
    cached_tokens: Mapped[int | None]  # of prompt_tokens
    tokens_estimated: Mapped[bool]  # counted by Turnout (characters / 4), not reported by the upstream
    cost: Mapped[Decimal | None]  # None: no price or no count is known
    latency_ms: Mapped[float]
    ttft_ms: Mapped[float | None]  # streams: until the first chunk reached the client
    status: Mapped[int]  # the HTTP status the client got (200 for a stream that broke after its start)
    error_type: Mapped[str | None] = mapped_column(String(100))
    error_code: Mapped[str | None] = mapped_column(String(100))
    attempts: Mapped[int]
    # answered by the response cache (engine/cache): no upstream call, tokens 0, cost 0
    cache_hit: Mapped[bool] = mapped_column(default=False, server_default=false())
