"""Bad input to the admin API (/key/*) and the reports (/turnout/usage, /turnout/requests, /spend/logs):
each is a 400 naming the field, never a 500, on SQLite and on PostgreSQL (which refuses more: 32-bit
INTEGER columns, NUMERIC(20, 10), no NUL in text).

Found by fuzzing (issue 10, item 8): `duration: "3000000d"`, integers past 64 bits and dates at the
calendar's edge were 500s.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import OPENAI, assert_error, golden_json, two_backend_config
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway
from tests.support.services import POSTGRES_URL, empty_postgres

MASTER = "sk-admin-input-master"


def _reset_postgres() -> None:
    if not empty_postgres():  # the test database is shared: start from nothing
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is unreachable")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def gateway(
    request: pytest.FixtureRequest, fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayServer]:
    settings: dict[str, Any] = {"master_key": MASTER}
    if request.param == "postgres":
        _reset_postgres()  # the test database is shared: start from nothing
        settings["database_url"] = POSTGRES_URL
    tmp: Path = tmp_path_factory.mktemp("admin-input")
    with running_gateway(tmp, two_backend_config(fake.url), **settings) as server:
        yield server


@pytest.fixture
def http(gateway: GatewayServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=gateway.url, timeout=10, headers={"authorization": f"Bearer {MASTER}"}
    ) as client:
        yield client


@pytest.fixture
def key(http: httpx.Client) -> str:
    created = http.post("/key/generate", json={"key_alias": "fuzzed"})
    assert created.status_code == 200, created.text
    value: str = created.json()["key"]
    return value


BAD_FIELDS = [
    ("duration", "3000000d"),
    ("duration", "99999999999999999999999w"),
    ("duration", "1" * 5000 + "s"),
    ("budget_duration", "36501d"),
    ("rpm_limit", 10**30),
    ("tpm_limit", 2**31),
    ("max_parallel_requests", 2**64),
    ("max_budget", 10**400),
    ("max_budget", 1e300),
    ("max_budget", "1e99999"),
    ("key_alias", "team\x00a"),
    ("models", ["gpt\x00"]),
    ("models", ["m" * 201]),
]


@pytest.mark.parametrize(("field", "value"), BAD_FIELDS)
def test_generate_refuses_values_no_column_holds(http: httpx.Client, field: str, value: Any) -> None:
    error = assert_error(http.post("/key/generate", json={field: value}), 400, type="invalid_request_error")
    assert error["param"] == field


@pytest.mark.parametrize(("field", "value"), BAD_FIELDS)
def test_update_refuses_them_too_and_changes_nothing(
    http: httpx.Client, key: str, field: str, value: Any
) -> None:
    assert_error(http.post("/key/update", json={"key": key, field: value}), 400)
    info = http.get("/key/info", params={"key": key}).json()["info"]
    assert info["key_alias"] == "fuzzed" and info["expires"] is None and info["rpm_limit"] is None


def test_the_longest_values_allowed_are_stored(http: httpx.Client, fake: FakeUpstream) -> None:
    fields = {
        "duration": "36500d",
        "budget_duration": "0005200w",  # stored as "5200w": what fits the column
        "rpm_limit": 2**31 - 1,
        "max_budget": 10**9,
        "key_alias": "a" * 200,
        "metadata": {"note": "nul \x00 inside JSON is fine", "big": 10**30},
    }
    created = http.post("/key/generate", json=fields)
    assert created.status_code == 200, created.text
    info = created.json()
    assert info["budget_duration"] == "5200w" and info["rpm_limit"] == 2**31 - 1
    lasts = datetime.fromisoformat(info["expires"]) - datetime.fromisoformat(info["created_at"])
    assert abs(lasts - timedelta(days=36500)) < timedelta(minutes=1)
    # and the key still works on the request path (its budget period arithmetic included)
    fake.add("POST", OPENAI.path, json=golden_json("openai", "simple.response.json"))
    answer = httpx.post(
        http.base_url.join("/v1/chat/completions"),
        json={"model": OPENAI.alias, "messages": [{"role": "user", "content": "Hi"}]},
        headers={"authorization": f"Bearer {info['key']}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("route", "query", "param"),
    [
        ("/turnout/usage", {"key_id": "99999999999999999999999"}, "key_id"),
        ("/turnout/usage", {"deployment_id": str(-(2**40))}, "deployment_id"),
        ("/turnout/usage", {"alias": "gpt\x00"}, "alias"),
        ("/turnout/usage", {"end": "9999-12-31"}, "end"),
        ("/turnout/usage", {"end": "0001-01-01"}, "end"),
        ("/turnout/usage", {"start": "0001-01-01T00:00:00+01:00"}, "start"),
        ("/turnout/requests", {"key_id": str(2**31)}, "key_id"),
        ("/turnout/requests", {"status": "1" * 5000}, "status"),
        ("/turnout/requests", {"limit": "1e400"}, "limit"),
        ("/turnout/requests", {"cursor": "aWQ6OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk"}, "cursor"),  # id:9999...
        ("/turnout/requests", {"alias": "\x00"}, "alias"),
        ("/spend/logs", {"request_id": "r\x00"}, "request_id"),
        ("/spend/logs", {"end_date": "9999-12-31"}, "end_date"),
    ],
)
def test_report_queries_out_of_range_are_400s(
    http: httpx.Client, route: str, query: dict[str, str], param: str
) -> None:
    error = assert_error(http.get(route, params=query), 400, type="invalid_request_error")
    assert error["param"] == param


def test_reports_still_answer_at_the_edges(http: httpx.Client) -> None:
    for route, query in [
        ("/turnout/usage", {"key_id": str(2**31 - 1), "start": "0001-01-01", "end": "9999-12-30"}),
        ("/turnout/requests", {"deployment_id": str(-(2**31)), "limit": "1000"}),
        ("/spend/logs", {"start_date": "2026-01-01", "end_date": "2026-01-02"}),
    ]:
        assert http.get(route, params=query).status_code == 200
