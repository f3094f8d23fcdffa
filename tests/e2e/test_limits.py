"""Per-key limits over HTTP: rpm, tpm, parallel requests and budgets, each a 429 with retry-after and
OpenAI's x-ratelimit-* headers, enforced before anything is sent upstream."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import OPENAI, assert_error, two_backend_config
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway

MASTER = "sk-master"
ADMIN = {"authorization": f"Bearer {MASTER}"}
HI: list[Any] = [{"role": "user", "content": "Hi"}]
# the golden answer reports 16 + 9 tokens: 0.000032 + 0.000072 = 0.000104 with these prices
PRICES = {"input_cost_per_token": 0.000002, "output_cost_per_token": 0.000008}


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    config = two_backend_config(fake.url, general_settings={"master_key": MASTER})
    for entry in config["model_list"]:
        entry["model_info"] = dict(PRICES)
    with running_gateway(tmp_path_factory.mktemp("limits"), config, key_refresh_interval=0.2) as server:
        yield server


@pytest.fixture(scope="module")
def minute(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """A gateway whose clock stands still 30 s into a minute: rpm and tpm windows are whole minutes, and
    with the wall clock a test's requests could straddle two."""
    config = two_backend_config(fake.url, general_settings={"master_key": MASTER})
    for entry in config["model_list"]:
        entry["model_info"] = dict(PRICES)
    with running_gateway(
        tmp_path_factory.mktemp("limits-minute"), config, key_refresh_interval=0.2, clock=lambda: 6_000_030.0
    ) as server:
        yield server


@pytest.fixture
def in_a_minute(minute: GatewayServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=minute.url, timeout=10) as session:
        yield session


def _key(http: httpx.Client, **fields: Any) -> str:
    response = http.post("/key/generate", json=fields, headers=ADMIN)
    assert response.status_code == 200, response.text
    key: str = response.json()["key"]
    return key


def _chat(http: httpx.Client, key: str) -> httpx.Response:
    return http.post(
        "/v1/chat/completions",
        json={"model": OPENAI.alias, "messages": HI},
        headers={"authorization": f"Bearer {key}"},
    )


def test_rpm_limit(in_a_minute: httpx.Client, fake: FakeUpstream) -> None:
    http = in_a_minute
    key = _key(http, rpm_limit=2)
    for _ in range(3):
        OPENAI.answer(fake, "simple")
    first, second, third = (_chat(http, key) for _ in range(3))
    assert first.status_code == second.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert second.headers["x-ratelimit-remaining-requests"] == "0"
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    error = assert_error(third, 429, type="rate_limit_error", code="rate_limit_exceeded")
    assert "2 requests" in error["message"]
    assert third.headers["retry-after"] == "30"  # to the next minute of the gateway's clock
    assert third.headers["x-ratelimit-remaining-requests"] == "0"
    assert len(fake.requests) == 2, "the refused request never reached the upstream"


def test_tpm_limit_counts_the_tokens_answers_used(in_a_minute: httpx.Client, fake: FakeUpstream) -> None:
    http = in_a_minute
    key = _key(http, tpm_limit=30)
    for _ in range(3):
        OPENAI.answer(fake, "simple")
    first = _chat(http, key)
    assert first.status_code == 200
    assert first.headers["x-ratelimit-remaining-tokens"] == "30"  # counted when the answer ends
    second = _chat(http, key)  # 25 used < 30: still admitted
    assert second.status_code == 200 and second.headers["x-ratelimit-remaining-tokens"] == "5"
    third = _chat(http, key)  # 50 used
    error = assert_error(third, 429, code="rate_limit_exceeded")
    assert "30 tokens" in error["message"] and "retry-after" in third.headers


def test_parallel_limit(gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream) -> None:
    key = _key(http, max_parallel_requests=1)
    answer = OPENAI.answer(fake, "simple")
    fake.clear()
    fake.add("POST", OPENAI.path, json=answer, delay=1.0, times=1)
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(_chat, http, key)
        time.sleep(0.4)  # the slow one is in flight
        refused = _chat(http, key)
        assert slow.result().status_code == 200
    error = assert_error(refused, 429, code="rate_limit_exceeded")
    assert "in progress" in error["message"] and refused.headers["retry-after"] == "1"
    OPENAI.answer(fake, "simple")
    assert _chat(http, key).status_code == 200, "the slot is free again once the first one ended"


def test_budget_is_enforced_before_the_upstream_call(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream
) -> None:
    key = _key(http, max_budget=0.0002)  # two answers: 0.000208
    for _ in range(3):
        OPENAI.answer(fake, "simple")
    assert _chat(http, key).status_code == 200
    assert _chat(http, key).status_code == 200
    over = _chat(http, key)
    error = assert_error(over, 429, type="rate_limit_error", code="budget_exceeded")
    assert "0.000208" in error["message"] and "0.0002" in error["message"]
    assert "retry-after" not in over.headers  # this budget never resets
    assert len(fake.requests) == 2
    raised = http.post("/key/update", json={"key": key, "max_budget": 1}, headers=ADMIN)
    assert raised.status_code == 200
    assert _chat(http, key).status_code == 200, "a raised budget lets the key through again"


def test_budget_resets_after_its_duration(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream
) -> None:
    key = _key(http, max_budget=0.0001, budget_duration="2s")
    for _ in range(3):
        OPENAI.answer(fake, "simple")
    assert _chat(http, key).status_code == 200
    over = _chat(http, key)
    assert_error(over, 429, code="budget_exceeded")
    assert 1 <= int(over.headers["retry-after"]) <= 2
    time.sleep(2.2)
    assert _chat(http, key).status_code == 200, "a new budget period starts from nothing"
    info = http.get("/key/info", params={"key": key}, headers=ADMIN).json()["info"]
    assert info["budget_reset_at"] is not None


def test_keys_without_limits_get_no_rate_limit_headers(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream
) -> None:
    key = _key(http)
    OPENAI.answer(fake, "simple")
    response = _chat(http, key)
    assert response.status_code == 200
    assert not any(name.startswith("x-ratelimit-") for name in response.headers)
