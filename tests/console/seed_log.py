"""Request-log rows for the overview's and the requests page's tests, written before the gateway
starts (never while it runs: closing a SQLite file in the gateway's process drops its locks).

`write_log` goes through the usage writer, so the rollup holds what the log holds, as in production.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from engine.store.api_key import ApiKeyRow
from engine.store.db import create_engine, session_factory
from engine.store.migrate import upgrade_to_head
from engine.usage.record import UsageRecord
from engine.usage.writer import SqlWriter

__all__ = ["database_url", "varied_log", "write_log"]


def database_url(tmp_path: Path) -> str:
    """The database `running_gateway(tmp_path, ...)` uses."""
    return f"sqlite+aiosqlite:///{tmp_path / 'turnout.db'}"


def write_log(url: str, records: Sequence[UsageRecord], keys: Sequence[ApiKeyRow] = ()) -> None:
    """Migrate the database at `url`, add `keys`, and write `records` through the usage writer."""
    upgrade_to_head(url)

    async def run() -> None:
        engine = create_engine(url)
        try:
            sessions = session_factory(engine)
            async with sessions() as session, session.begin():
                session.add_all(keys)
            writer = SqlWriter(sessions)
            for start in range(0, len(records), 500):
                await writer.write(list(records[start : start + 500]))
        finally:
            await engine.dispose()

    # in a thread: a Playwright test holds an event loop in its own thread already
    with ThreadPoolExecutor(1) as worker:
        worker.submit(asyncio.run, run()).result()


def key_row(key_id: int, alias: str | None, prefix: str) -> ApiKeyRow:
    return ApiKeyRow(id=key_id, key_hash=f"{key_id:064x}", key_prefix=prefix, key_alias=alias, models=[])


_ALIASES = ("chat-fast", "chat-smart", "embed", "local-chat", "reasoner")
_PROVIDERS = {"chat-fast": "groq", "chat-smart": "openai", "embed": "openai", "local-chat": "ollama", "reasoner": "anthropic"}
_ERRORS = ((429, "rate_limit_error", "rate_limited"), (500, "api_error", "upstream_error"), (400, "invalid_request_error", "context_length_exceeded"), (499, "client_closed", "client_closed_request"), (503, "api_error", "no_deployment_available"))


def varied_log(now: datetime, span: timedelta, count: int, *, seed: int = 7) -> list[UsageRecord]:
    """`count` realistic requests spread over `span` before `now` (busier lately, some errors and
    streams, several aliases, keys 1-3 and the master key): charts with something to show."""
    rnd = random.Random(seed)
    records = []
    for index in range(count):
        age = span * (rnd.random() ** 1.6)
        alias = rnd.choice(_ALIASES)
        stream = alias != "embed" and rnd.random() < 0.5
        latency = rnd.lognormvariate(6.6 if alias != "reasoner" else 8.0, 0.6)
        failed = rnd.random() < 0.06
        status, error_type, error_code = rnd.choice(_ERRORS) if failed else (200, None, None)
        prompt = rnd.randint(20, 2400)
        completion = 0 if failed or alias == "embed" else rnd.randint(5, 900)
        price = Decimal("0.0000005") if alias != "local-chat" else Decimal(0)
        records.append(
            UsageRecord(
                request_id=f"seed{seed:04d}{index:020d}",
                created_at=now - age,
                operation="embeddings" if alias == "embed" else "chat",
                alias=alias,
                key_id=rnd.choice((None, 1, 2, 3)),
                stream=stream,
                deployment_id=_ALIASES.index(alias) + 1,
                provider=_PROVIDERS[alias],
                upstream_model=f"{alias}-model",
                prompt_tokens=prompt,
                completion_tokens=completion,
                reasoning_tokens=completion // 3 if alias == "reasoner" else None,
                cached_tokens=prompt // 4 if rnd.random() < 0.2 else None,
                tokens_estimated=alias == "local-chat",
                cost=(price * (prompt + 3 * completion)).quantize(Decimal("0.0000000001")),
                latency_ms=latency,
                ttft_ms=latency * rnd.uniform(0.1, 0.4) if stream else None,
                status=status,
                error_type=error_type,
                error_code=error_code,
                attempts=2 if failed and rnd.random() < 0.5 else 1,
            )
        )
    return records
