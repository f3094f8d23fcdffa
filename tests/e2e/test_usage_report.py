"""The reporting API over HTTP: rows are written straight into the gateway's SQLite file (as the usage
recorder would write them), then read back through /turnout/usage, /turnout/requests and /spend/logs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, insert

from engine.keys.ring import hash_key
from engine.store.api_key import ApiKeyRow
from engine.store.request_log import RequestLogRow
from tests.e2e.conftest import assert_error, two_backend_config
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway

MASTER = "sk-master"
ADMIN = {"authorization": f"Bearer {MASTER}"}
TEAM_KEY = "sk-team-a-0123456789abcdefghijklmnop"  # key 1, alias "team-a"
OTHER_KEY = "sk-other-0123456789abcdefghijklmnopq"  # key 2, no alias
BULK = 1100  # more than /spend/logs' cap of 1000
BULK_DAY = datetime(2026, 2, 1, tzinfo=UTC)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _row(number: int, created_at: datetime, alias: str, **fields: Any) -> dict[str, Any]:
    return {
        "request_id": f"req-{number}",
        "created_at": created_at,
        "key_id": None,
        "alias": alias,
        "operation": "chat",
        "stream": False,
        "deployment_id": None,
        "provider": None,
        "upstream_model": None,
        "prompt_tokens": None,
        "completion_tokens": None,
        "reasoning_tokens": None,
        "cached_tokens": None,
        "tokens_estimated": False,
        "cost": None,
        "latency_ms": 0.0,
        "ttft_ms": None,
        "status": 200,
        "error_type": None,
        "error_code": None,
        "attempts": 1,
        "cache_hit": False,
        **fields,
    }


ONE = {"deployment_id": 1, "provider": "p1", "upstream_model": "m1"}
TWO = {"deployment_id": 2, "provider": "p2", "upstream_model": "m2"}
ROWS = [
    _row(1, _at("2026-01-04T23:59:59.999999"), "chat", key_id=1, prompt_tokens=1000, cost=Decimal(5), **ONE),
    _row(2, _at("2026-01-05T10:00:00"), "chat", key_id=1, prompt_tokens=10, completion_tokens=5,
         reasoning_tokens=2, cached_tokens=1, cost=Decimal("0.00012"), latency_ms=100.0, **ONE),
    _row(3, _at("2026-01-05T23:59:59.500000"), "chat", prompt_tokens=20, completion_tokens=10,
         cost=Decimal("0.1"), latency_ms=300.0, ttft_ms=40.0, stream=True, **TWO),
    _row(4, _at("2026-01-06T00:00:00"), "embed", key_id=1, operation="embeddings", prompt_tokens=7,
         latency_ms=50.0, status=500, error_type="upstream_error", error_code="upstream_unavailable", **ONE),
    _row(5, _at("2026-01-06T12:00:00"), "chat", key_id=2, prompt_tokens=3, completion_tokens=4,
         cost=Decimal("0.2"), latency_ms=10.0, status=429, error_type="rate_limit_error", **ONE),
    _row(6, _at("2026-01-07T00:00:00"), "chat", key_id=2, prompt_tokens=100, cost=Decimal(1), **TWO),
]  # fmt: skip
WINDOW = {"start": "2026-01-05", "end": "2026-01-06"}  # rows 2-5: a date `end` takes in its whole day


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    config = two_backend_config(fake.url, general_settings={"master_key": MASTER})
    with running_gateway(tmp_path_factory.mktemp("usage_report"), config) as server:
        _seed(server)
        yield server


def _seed(server: GatewayServer) -> None:
    engine = create_engine(server.settings.database_url.replace("sqlite+aiosqlite", "sqlite"))
    recent = datetime.now(UTC) - timedelta(hours=1)
    bulk = [
        _row(
            1000 + n,
            BULK_DAY + timedelta(seconds=n),
            "bulk",
            cost=Decimal("123456.0000000001"),
            status=503 if n % 2 else 200,
        )
        for n in range(BULK)
    ]
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(ApiKeyRow),
                [
                    {
                        "id": 1,
                        "key_hash": hash_key(TEAM_KEY),
                        "key_prefix": TEAM_KEY[:8],
                        "key_alias": "team-a",
                    },
                    {
                        "id": 2,
                        "key_hash": hash_key(OTHER_KEY),
                        "key_prefix": OTHER_KEY[:8],
                        "key_alias": None,
                    },
                ],
            )
            connection.execute(
                insert(RequestLogRow), [*ROWS, *bulk, _row(9, recent, "recent", cost=Decimal("0.5"))]
            )
    finally:
        engine.dispose()


def _get(http: httpx.Client, path: str, **params: Any) -> Any:
    response = http.get(path, params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def _usage(http: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = _get(http, "/turnout/usage", **params)["data"]
    return data


def _totals(requests: int, errors: int, prompt: int, completion: int, reasoning: int, cached: int,
            cost: str, latency: float) -> dict[str, Any]:  # fmt: skip
    return {
        "requests": requests,
        "errors": errors,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "reasoning_tokens": reasoning,
        "cached_tokens": cached,
        "cost": cost,
        "latency_ms_avg": latency,
    }


def test_usage_by_day(http: httpx.Client) -> None:
    body = _get(http, "/turnout/usage", **WINDOW)
    assert body["object"] == "list" and body["group_by"] == ["day"]
    assert body["start"] == "2026-01-05T00:00:00+00:00" and body["end"] == "2026-01-07T00:00:00+00:00"
    assert body["data"] == [
        {"day": "2026-01-05", **_totals(2, 0, 30, 15, 2, 1, "0.10012", 200.0)},
        {"day": "2026-01-06", **_totals(2, 2, 10, 4, 0, 0, "0.2", 30.0)},
    ]


def test_usage_by_key_puts_the_master_key_first(http: httpx.Client) -> None:
    assert _usage(http, group_by="key", **WINDOW) == [
        {"key_id": None, "key_alias": None, **_totals(1, 0, 20, 10, 0, 0, "0.1", 300.0)},
        {"key_id": 1, "key_alias": "team-a", **_totals(2, 1, 17, 5, 2, 1, "0.00012", 75.0)},
        {"key_id": 2, "key_alias": None, **_totals(1, 1, 3, 4, 0, 0, "0.2", 10.0)},
    ]


def test_usage_by_alias_and_day_sums_costs_exactly(http: httpx.Client) -> None:
    rows = _usage(http, group_by="alias,day", **WINDOW)
    assert [(row["alias"], row["day"], row["cost"]) for row in rows] == [
        ("chat", "2026-01-05", "0.10012"),
        ("chat", "2026-01-06", "0.2"),
        ("embed", "2026-01-06", "0"),  # nothing priced
    ]
    assert _usage(http, group_by="alias", **WINDOW)[0]["cost"] == "0.30012"
    # SQLite keeps costs as floats: summed as floats, these 1100 would come to 135801600.0000000298
    assert _usage(http, group_by="alias", alias="bulk", start="2026-02-01", end="2026-02-01") == [
        {"alias": "bulk", **_totals(BULK, BULK // 2, 0, 0, 0, 0, "135801600.00000011", 0.0)}
    ]


def test_usage_by_deployment(http: httpx.Client) -> None:
    rows = _usage(http, group_by="deployment", **WINDOW)
    assert [(r["deployment_id"], r["provider"], r["upstream_model"], r["requests"]) for r in rows] == [
        (1, "p1", "m1", 3),
        (2, "p2", "m2", 1),
    ]


def test_usage_filters(http: httpx.Client) -> None:
    assert [(r["day"], r["requests"]) for r in _usage(http, key_id=1, **WINDOW)] == [
        ("2026-01-05", 1),
        ("2026-01-06", 1),
    ]
    assert [r["requests"] for r in _usage(http, group_by="key", alias="chat", **WINDOW)] == [1, 1, 1]
    assert _usage(http, group_by="alias", deployment_id=2, **WINDOW) == [
        {"alias": "chat", **_totals(1, 0, 20, 10, 0, 0, "0.1", 300.0)}
    ]
    assert _usage(http, alias="nobody", **WINDOW) == []


def test_usage_datetime_bounds(http: httpx.Client) -> None:
    before_midnight = {"start": "2026-01-06T00:00:00Z", "end": "2026-01-07T00:00:00Z"}
    assert [r["requests"] for r in _usage(http, group_by="alias", **before_midnight)] == [1, 1]
    after_midnight = {"start": "2026-01-06T00:00:00Z", "end": "2026-01-07T00:00:00.000001Z"}
    assert [r["requests"] for r in _usage(http, group_by="alias", **after_midnight)] == [2, 1]
    # an offset is honoured: 01:00+02:00 is 23:00 UTC the day before
    shifted = _get(http, "/turnout/usage", start="2026-01-05T01:00:00+02:00", end="2026-01-06")
    assert shifted["start"] == "2026-01-04T23:00:00+00:00"
    assert [(r["day"], r["requests"]) for r in shifted["data"]] == [
        ("2026-01-04", 1),
        ("2026-01-05", 2),
        ("2026-01-06", 2),
    ]


def test_usage_defaults_to_the_last_30_days(http: httpx.Client) -> None:
    body = _get(http, "/turnout/usage", group_by="alias")
    start, end = datetime.fromisoformat(body["start"]), datetime.fromisoformat(body["end"])
    assert end - start == timedelta(days=30) and abs(datetime.now(UTC) - end) < timedelta(minutes=1)
    assert [(r["alias"], r["cost"]) for r in body["data"]] == [("recent", "0.5")]


def test_request_log_rows(http: httpx.Client) -> None:
    body = _get(http, "/turnout/requests", **WINDOW)
    assert body["object"] == "list" and body["next_cursor"] is None
    assert [row["request_id"] for row in body["data"]] == ["req-5", "req-4", "req-3", "req-2"]
    stream = body["data"][2]
    assert stream == {
        **ROWS[2],
        "id": stream["id"],
        "cost": "0.1",
        "created_at": "2026-01-05T23:59:59.500000+00:00",
    }
    assert body["data"][1]["cost"] is None


def test_request_log_filters(http: httpx.Client) -> None:
    def ids(**params: Any) -> list[str]:
        return [row["request_id"] for row in _get(http, "/turnout/requests", **params)["data"]]

    assert ids(status=500) == ["req-4"]
    assert ids(errors="true", **WINDOW) == ["req-5", "req-4"]
    assert ids(errors="false", **WINDOW) == ["req-5", "req-4", "req-3", "req-2"]
    assert ids(key_id=2) == ["req-6", "req-5"]
    assert ids(alias="embed") == ["req-4"]
    assert ids(deployment_id=2, end="2026-01-06") == ["req-3"]
    assert ids(start="2026-01-07T00:00:00Z", end="2026-01-08") == ["req-6"]


@pytest.mark.parametrize("limit", [1000, 97])
def test_request_log_pages_through_everything(http: httpx.Client, limit: int) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"alias": "bulk", "limit": limit, **({"cursor": cursor} if cursor else {})}
        body = _get(http, "/turnout/requests", **params)
        pages += 1
        assert 0 < len(body["data"]) <= limit
        seen += [row["request_id"] for row in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == -(-BULK // limit)
    assert seen == [f"req-{1000 + n}" for n in reversed(range(BULK))]  # newest first, none twice or missed


def test_request_log_default_limit(http: httpx.Client) -> None:
    body = _get(http, "/turnout/requests", alias="bulk")
    assert len(body["data"]) == 100 and body["next_cursor"]


def test_spend_logs_for_a_key(http: httpx.Client) -> None:
    logs = _get(http, "/spend/logs", api_key=TEAM_KEY, start_date="2026-01-05", end_date="2026-01-06")
    assert logs == [
        {
            "request_id": "req-4",
            "call_type": "embeddings",
            "api_key": hash_key(TEAM_KEY),
            "model": "m1",
            "model_id": "1",
            "model_group": "embed",
            "custom_llm_provider": "p1",
            "spend": 0.0,
            "total_tokens": 7,
            "prompt_tokens": 7,
            "completion_tokens": 0,
            "startTime": "2026-01-06T00:00:00+00:00",
            "endTime": "2026-01-06T00:00:00.050000+00:00",
            "completionStartTime": None,
            "status": "failure",
            "cache_hit": "False",
        },
        {
            "request_id": "req-2",
            "call_type": "chat",
            "api_key": hash_key(TEAM_KEY),
            "model": "m1",
            "model_id": "1",
            "model_group": "chat",
            "custom_llm_provider": "p1",
            "spend": 0.00012,
            "total_tokens": 15,
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "startTime": "2026-01-05T10:00:00+00:00",
            "endTime": "2026-01-05T10:00:00.100000+00:00",
            "completionStartTime": None,
            "status": "success",
            "cache_hit": "False",
        },
    ]
    # LiteLLM's UI passes the stored hash rather than the key
    by_hash = _get(http, "/spend/logs", api_key=hash_key(TEAM_KEY), end_date="2026-01-06")
    assert by_hash[:2] == logs and [log["request_id"] for log in by_hash[2:]] == ["req-1"]


def test_spend_logs_master_key_rows_and_cap(http: httpx.Client) -> None:
    day = _get(http, "/spend/logs", start_date="2026-01-05", end_date="2026-01-05")
    assert [(log["request_id"], log["api_key"]) for log in day] == [
        ("req-3", None),
        ("req-2", hash_key(TEAM_KEY)),
    ]
    assert day[0]["completionStartTime"] == "2026-01-05T23:59:59.540000+00:00"
    everything = _get(http, "/spend/logs")
    assert len(everything) == 1000
    assert everything[0]["model_group"] == "recent"  # newest first
    assert _get(http, "/spend/logs", request_id="req-6")[0]["spend"] == 1.0


def test_spend_logs_unknown_key(http: httpx.Client) -> None:
    response = http.get("/spend/logs", params={"api_key": "sk-nobody"}, headers=ADMIN)
    assert assert_error(response, 404, type="not_found_error", code="key_not_found")["param"] == "api_key"


BAD = [
    ("/turnout/usage", {"group_by": "day,team"}, "group_by"),
    ("/turnout/usage", {"group_by": ""}, "group_by"),
    ("/turnout/usage", {"start": "2026-13-01"}, "start"),
    ("/turnout/usage", {"end": "yesterday"}, "end"),
    ("/turnout/usage", {"start": "2026-01-07", "end": "2026-01-05"}, "start"),
    ("/turnout/usage", {"key_id": "team-a"}, "key_id"),
    ("/turnout/usage", {"deployment_id": "1.5"}, "deployment_id"),
    ("/turnout/requests", {"limit": "0"}, "limit"),
    ("/turnout/requests", {"limit": "5000"}, "limit"),
    ("/turnout/requests", {"limit": "x"}, "limit"),
    ("/turnout/requests", {"cursor": "not-a-cursor"}, "cursor"),
    ("/turnout/requests", {"cursor": "aWQ6eA"}, "cursor"),  # "id:x"
    ("/turnout/requests", {"key_id": "x"}, "key_id"),
    ("/turnout/requests", {"status": "bad"}, "status"),
    ("/turnout/requests", {"errors": "maybe"}, "errors"),
    ("/turnout/requests", {"start": "2026-01-05T10:00:00 02:00"}, "start"),  # an unencoded "+"
    ("/spend/logs", {"start_date": "05/01/2026"}, "start_date"),
    ("/spend/logs", {"start_date": "2026-01-06", "end_date": "2026-01-04"}, "start_date"),
]


@pytest.mark.parametrize(("path", "params", "param"), BAD, ids=[f"{p}-{n}" for p, n, _ in BAD])
def test_bad_input_is_a_400_naming_the_parameter(
    http: httpx.Client, path: str, params: dict[str, str], param: str
) -> None:
    error = assert_error(http.get(path, params=params, headers=ADMIN), 400, type="invalid_request_error")
    assert error["param"] == param


@pytest.mark.parametrize("path", ["/turnout/usage", "/turnout/requests", "/spend/logs"])
def test_operators_only(http: httpx.Client, path: str) -> None:
    created = http.post("/key/generate", json={"key_alias": "reader"}, headers=ADMIN)
    assert created.status_code == 200, created.text
    virtual = {"authorization": f"Bearer {created.json()['key']}"}
    assert_error(http.get(path, headers=virtual), 403, type="permission_error", code="master_key_required")
    assert_error(http.get(path), 401, type="authentication_error")
