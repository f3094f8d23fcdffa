"""The request log summed per minute, hour and day, per (alias, key, provider): what the console's
overview reads, so that its charts cost the same on a log of a thousand rows or of a billion.

Each row holds sums (requests, errors, tokens, cost) and two log-scale histograms, latency and time to
first token, one column per bin (engine/usage/rollup.py says where each bin starts). Every column is
a plain sum, so a batch merges into a row with an upsert (`column = column + excluded.column`) on
SQLite and PostgreSQL alike, and the totals or percentiles of any set of rows are column SUMs.

`key_id` 0 is "no key" (the master key or an open gateway) and `provider` "" is "no deployment": the
primary key cannot hold NULL, and a NULL would never match an upsert's conflict target anyway.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import BigInteger, Column, DateTime, Integer, Numeric, PrimaryKeyConstraint, String, Table

from engine.store.base import Base

__all__ = ["BINS", "LATENCY_BINS", "SPANS", "SUMS", "TTFT_BINS", "request_rollup"]

SPANS: Final = ("minute", "hour", "day")
BINS: Final = 40  # half-octave bins from 1 ms: the last one starts at 2**19.5 ms (about 12 minutes)
LATENCY_BINS: Final = tuple(f"latency_{index:02d}" for index in range(BINS))
TTFT_BINS: Final = tuple(f"ttft_{index:02d}" for index in range(BINS))
# the summed columns, in the order the writer and the migration's backfill fill them
SUMS: Final = (
    "requests",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "streams",
    *LATENCY_BINS,
    *TTFT_BINS,
)

_COUNT = BigInteger().with_variant(Integer(), "sqlite")  # SQLite's INTEGER is 64 bits already

request_rollup = Table(
    "request_rollup",
    Base.metadata,
    Column("span", String(6), nullable=False),  # one of SPANS
    Column("bucket_start", DateTime(timezone=True), nullable=False),  # UTC, the span's first moment
    Column("alias", String(200), nullable=False),
    Column("key_id", Integer, nullable=False),  # 0: no key
    Column("provider", String(100), nullable=False),  # "": no deployment
    Column("requests", _COUNT, nullable=False),
    Column("errors", _COUNT, nullable=False),  # status >= 400
    Column("prompt_tokens", _COUNT, nullable=False),
    Column("completion_tokens", _COUNT, nullable=False),
    Column("cost", Numeric(30, 10), nullable=False),  # unpriced requests add nothing
    Column("streams", _COUNT, nullable=False),  # requests with a time to first token
    *(Column(name, _COUNT, nullable=False) for name in LATENCY_BINS),
    *(Column(name, _COUNT, nullable=False) for name in TTFT_BINS),
    PrimaryKeyConstraint("span", "bucket_start", "alias", "key_id", "provider"),
)
