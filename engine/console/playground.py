"""What the playground reads besides the chat itself: the aliases it may offer, and what the request
log recorded of an answer (a stream's cost and the gateway's own timings are known only once it has
ended, so no response header can carry them)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.pipeline.costs import format_cost
from engine.probe.steps import CHAT_MODES
from engine.routing.table import Alias
from engine.store.models import RequestLogRow

__all__ = ["AliasGroup", "chat_aliases", "is_request_id", "logged_request"]

_REQUEST_ID = re.compile(r"[0-9a-f]{32}")  # engine/pipeline/metering.py: 16 random bytes, in hex


@dataclass(frozen=True, slots=True)
class AliasGroup:
    """The chat aliases of one mode, by name, as the alias picker groups them."""

    mode: str
    names: tuple[str, ...]


def chat_aliases(aliases: Mapping[str, Alias]) -> list[AliasGroup]:
    """The aliases a chat completion may name, grouped by their mode ("chat" first)."""
    by_mode: dict[str, list[str]] = {}
    for alias in aliases.values():
        if alias.mode in CHAT_MODES:
            by_mode.setdefault(alias.mode, []).append(alias.name)
    order = sorted(by_mode, key=lambda mode: (mode != "chat", mode))
    return [AliasGroup(mode, tuple(sorted(by_mode[mode]))) for mode in order]


def is_request_id(value: str) -> bool:
    return _REQUEST_ID.fullmatch(value) is not None


async def logged_request(
    sessions: async_sessionmaker[AsyncSession], request_id: str
) -> dict[str, Any] | None:
    """The request log's row of `request_id` as JSON-ready values; None until the recorder wrote it."""
    async with sessions() as session:
        row = await session.scalar(select(RequestLogRow).where(RequestLogRow.request_id == request_id))
    if row is None:
        return None
    return {
        "status": row.status,
        "attempts": row.attempts,
        "provider": row.provider,
        "upstream_model": row.upstream_model,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "reasoning_tokens": row.reasoning_tokens,
        "cached_tokens": row.cached_tokens,
        "tokens_estimated": row.tokens_estimated,
        "cost": None if row.cost is None else format_cost(row.cost),  # exact: a float would round it
        "latency_ms": row.latency_ms,
        "ttft_ms": row.ttft_ms,
        "error_type": row.error_type,
        "error_code": row.error_code,
    }
