"""Request-log rows for the overview's and the requests page's tests, written before the gateway
starts (never while it runs: closing a SQLite file in the gateway's process drops its locks).

`write_log` goes through the usage writer, so the rollup holds what the log holds, as in production.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from engine.store.api_key import ApiKeyRow
from engine.store.db import create_engine, session_factory
from engine.store.migrate import upgrade_to_head
from engine.usage.record import UsageRecord
from engine.usage.writer import SqlWriter

T = TypeVar("T")  # what a coroutine given to run_apart returns

__all__ = ["MILLION", "database_url", "key_row", "run_apart", "seed_million", "varied_log", "write_log"]


def database_url(tmp_path: Path) -> str:
    """The database `running_gateway(tmp_path, ...)` uses."""
    return f"sqlite+aiosqlite:///{tmp_path / 'turnout.db'}"


def run_apart(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(coroutine)` in a thread of its own: once Playwright's browser is up, this
    thread holds a running event loop, where asyncio.run refuses to start."""
    with ThreadPoolExecutor(1) as worker:
        return worker.submit(asyncio.run, coroutine).result()


def write_log(url: str, records: Sequence[UsageRecord], keys: Sequence[ApiKeyRow] = ()) -> None:
    """Migrate the database at `url`, add `keys`, and write `records` through the usage writer."""

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
        worker.submit(upgrade_to_head, url).result()  # runs an event loop of its own
    run_apart(run())


def key_row(key_id: int, alias: str | None, prefix: str) -> ApiKeyRow:
    return ApiKeyRow(id=key_id, key_hash=f"{key_id:064x}", key_prefix=prefix, key_alias=alias, models=[])


_ALIASES = ("chat-fast", "chat-smart", "embed", "local-chat", "reasoner")
_PROVIDERS = {
    "chat-fast": "groq",
    "chat-smart": "openai",
    "embed": "openai",
    "local-chat": "ollama",
    "reasoner": "anthropic",
}
_ERRORS = (
    (429, "rate_limit_error", "rate_limited"),
    (500, "api_error", "upstream_error"),
    (400, "invalid_request_error", "context_length_exceeded"),
    (499, "client_closed", "client_closed_request"),
    (503, "api_error", "no_deployment_available"),
)


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
    records.sort(key=lambda record: record.created_at)  # written in the order they arrived
    return records


MILLION = 1_000_000
PRE_ROLLUP = "982a4364d0d0"  # the revision before the request rollup's


def seed_million(url: str, end: datetime, span: timedelta, rows: int = MILLION) -> None:
    """`rows` request-log rows, evenly spread over `span` before `end`, written straight into SQLite
    at the revision before the rollup's: the gateway's start then migrates, filling the rollup from
    them as an upgrade of a busy installation would. 8 aliases on 4 providers, 20 keys and the master
    key (168 combinations, all present in every hour), 1 in 20 answered 500, half of them streams."""
    import sqlite3

    from alembic import command

    from engine.store.migrate import alembic_config

    command.upgrade(alembic_config(url), PRE_ROLLUP)
    path = url.split("///", 1)[1]
    step = span.total_seconds() / rows
    first = end.timestamp() - span.total_seconds()
    connection = sqlite3.connect(path)
    try:
        connection.execute(
            """
            INSERT INTO request_log (request_id, created_at, key_id, alias, operation, stream,
                deployment_id, provider, upstream_model, prompt_tokens, completion_tokens,
                reasoning_tokens, cached_tokens, tokens_estimated, cost, latency_ms, ttft_ms, status,
                error_type, error_code, attempts)
            WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :rows - 1)
            SELECT printf('million%025d', i),
                strftime('%Y-%m-%d %H:%M:%S', CAST(:first + i * :step AS INTEGER), 'unixepoch') || '.000000',
                NULLIF(i % 21, 0), 'alias-' || (i % 8), 'chat', i % 2, i % 8 + 1,
                CASE i % 4 WHEN 0 THEN 'openai' WHEN 1 THEN 'anthropic' WHEN 2 THEN 'ollama' ELSE 'groq' END,
                'model-' || (i % 8), 100 + i % 50, 20 + i % 30, NULL, NULL, 0, 0.0001 * (i % 7),
                100 + (i * 7919) % 5000, CASE WHEN i % 2 = 1 THEN 25 + (i * 7919) % 1250 END,
                CASE WHEN i % 20 = 0 THEN 500 ELSE 200 END,
                CASE WHEN i % 20 = 0 THEN 'api_error' END, NULL, 1
            FROM n
            """,
            {"rows": rows, "first": first, "step": step},
        )
        connection.commit()
    finally:
        connection.close()
