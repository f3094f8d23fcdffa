"""The request log on PostgreSQL, where a value the database cannot store fails its whole INSERT.

A client's model name is written into the row. One over the column's 200 characters, or with a NUL
byte (PostgreSQL text cannot hold one), used to fail its batch again and again: every later row and
spend update waited behind it, and shutdown blamed an "unreachable" database. Now what is recorded is
bounded and cleaned, and a row the database still refuses is set apart so the others go through.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.e2e.conftest import OPENAI, golden_json, two_backend_config
from tests.fakes import FakeUpstream
from tests.support import running_gateway
from tests.support.services import POSTGRES_URL

pytestmark = pytest.mark.postgres

MASTER = "sk-pg-master"
ADMIN = {"authorization": f"Bearer {MASTER}"}
PRICES = {"input_cost_per_token": 0.000002, "output_cost_per_token": 0.000008}
ANSWER_COST = Decimal("0.000104")  # the golden answer: 16 x 0.000002 + 9 x 0.000008
HI: list[Any] = [{"role": "user", "content": "Hi"}]
LONG = "m" * 300
NUL = "bad\x00model"


def _sql(statement: str, **params: Any) -> list[Any]:
    async def run() -> list[Any]:
        engine = create_async_engine(POSTGRES_URL)
        try:
            async with engine.begin() as connection:
                result = await connection.execute(text(statement), params)
                return list(result) if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _within(seconds: float, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the request log did not catch up"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture
def fresh_database() -> None:
    try:
        _sql("SELECT 1")
    except Exception as exc:
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is unreachable: {exc}")
    _sql("DROP SCHEMA public CASCADE")  # the test database is shared: start from nothing
    _sql("CREATE SCHEMA public")


@pytest.mark.usefixtures("fresh_database")
def test_unstorable_model_names_do_not_stop_the_log(
    fake: FakeUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = two_backend_config(fake.url, general_settings={"master_key": MASTER})
    for entry in config["model_list"]:
        entry["model_info"] = dict(PRICES)
    fake.add("POST", OPENAI.path, json=golden_json("openai", "simple.response.json"))
    caplog.set_level(logging.WARNING, logger="turnout.usage")
    with (
        running_gateway(
            tmp_path, config, database_url=POSTGRES_URL, usage_flush_interval=0.05, key_refresh_interval=0
        ) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        created = http.post("/key/generate", json={"models": [OPENAI.alias]}, headers=ADMIN)
        assert created.status_code == 200, created.text
        virtual = {"authorization": f"Bearer {created.json()['key']}"}

        def chat(model: str, headers: dict[str, str]) -> httpx.Response:
            body = {"model": model, "messages": HI}
            return http.post("/v1/chat/completions", json=body, headers=headers)

        ids = []
        for model, headers, status in [
            (LONG, ADMIN, 404),  # not configured
            (NUL, ADMIN, 404),
            (LONG, virtual, 403),  # refused before the alias is looked up: the key may not use it
            (NUL, virtual, 403),
            *[(OPENAI.alias, virtual, 200)] * 3,
        ]:
            response = chat(model, headers)
            assert response.status_code == status, response.text
            ids.append(response.headers["x-turnout-request-id"])

        def all_logged() -> bool:
            rows = _sql("SELECT request_id FROM request_log WHERE request_id = ANY(:ids)", ids=ids)
            return len(rows) == len(ids)

        _within(10, all_logged)
        aliases = dict(_sql("SELECT request_id, alias FROM request_log"))
        assert aliases[ids[0]] == LONG[:200], "cut to the column's length"
        assert "\x00" not in aliases[ids[1]] and aliases[ids[1]].startswith("bad")
        ((spend,),) = _sql("SELECT spend FROM api_keys")
        assert spend == 3 * ANSWER_COST
    assert not [r for r in caplog.records if r.name == "turnout.usage"], "nothing was lost or retried"
