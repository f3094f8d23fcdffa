"""Per-key limits over HTTP: rpm, tpm, parallel requests and budgets, each a 429 with retry-after and
OpenAI's x-ratelimit-* headers, enforced before anything is sent upstream.

The gateway's clock is a FakeClock standing 30 s into a minute: a test moves it when it means to, so
no assertion depends on the minute (or the budget period) the suite happens to run in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import OPENAI, assert_error, golden_stream, two_backend_config
from tests.fakes import FakeUpstream
from tests.support import FakeClock, GatewayServer, running_gateway

MASTER = "sk-master"
ADMIN = {"authorization": f"Bearer {MASTER}"}
HI: list[Any] = [{"role": "user", "content": "Hi"}]
# the golden answer reports 16 + 9 tokens: 0.000032 + 0.000072 = 0.000104 with these prices
PRICES = {"input_cost_per_token": 0.000002, "output_cost_per_token": 0.000008}
ANSWER_COST = Decimal("0.000104")


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def gateway(
    fake: FakeUpstream, clock: FakeClock, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayServer]:
    config = two_backend_config(fake.url, general_settings={"master_key": MASTER})
    for entry in config["model_list"]:
        entry["model_info"] = dict(PRICES)
    with running_gateway(
        tmp_path_factory.mktemp("limits"), config, clock=clock, key_refresh_interval=0.2
    ) as server:
        yield server


@pytest.fixture(autouse=True)
def _a_fresh_minute(clock: FakeClock) -> None:
    """Each test starts 30 s into a minute no earlier test counted in."""
    clock.set(clock.now - clock.now % 60 + 120 + 30)


def _within(seconds: float, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not within {seconds} s"
        time.sleep(0.01)


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


def test_rpm_limit(gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream) -> None:
    key = _key(http, rpm_limit=2)
    for _ in range(3):
        OPENAI.answer(fake, "simple")
    first, second, third = (_chat(http, key) for _ in range(3))
    assert first.status_code == second.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert second.headers["x-ratelimit-remaining-requests"] == "0"
    assert first.headers["x-ratelimit-reset-requests"] == "30s"  # the clock stands 30 s into a minute
    error = assert_error(third, 429, type="rate_limit_error", code="rate_limit_exceeded")
    assert "2 requests" in error["message"]
    assert third.headers["retry-after"] == "30"
    assert third.headers["x-ratelimit-remaining-requests"] == "0"
    assert len(fake.requests) == 2, "the refused request never reached the upstream"


def test_rpm_limit_counts_again_in_the_next_minute(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream, clock: FakeClock
) -> None:
    key = _key(http, rpm_limit=1)
    for _ in range(2):
        OPENAI.answer(fake, "simple")
    assert _chat(http, key).status_code == 200
    clock.advance(29)  # the last second of the minute
    refused = _chat(http, key)
    assert_error(refused, 429, code="rate_limit_exceeded")
    assert refused.headers["retry-after"] == "1"
    clock.advance(1)
    admitted = _chat(http, key)
    assert admitted.status_code == 200
    assert admitted.headers["x-ratelimit-reset-requests"] == "60s"


def test_tpm_limit_counts_the_tokens_answers_used(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream
) -> None:
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
    fake.add("POST", OPENAI.path, json=answer, hold=True, times=1)
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(_chat, http, key)
        _within(10, lambda: fake.holding == 1)  # the slow one is in flight, held by the upstream
        refused = _chat(http, key)
        fake.release_held()
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
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream, clock: FakeClock
) -> None:
    key = _key(http, max_budget=0.0001, budget_duration="1h")
    info = http.get("/key/info", params={"key": key}, headers=ADMIN).json()["info"]
    ends = datetime.fromisoformat(info["budget_reset_at"]).timestamp()
    # the period ends (to the whole second, from SQL, on the real clock) 90.5 s after the gateway's now
    clock.set(int(ends) - 90.5)
    for _ in range(3):
        OPENAI.answer(fake, "simple")
    assert _chat(http, key).status_code == 200
    over = _chat(http, key)
    assert_error(over, 429, code="budget_exceeded")
    assert over.headers["retry-after"] == "91"
    clock.set(ends + 1)
    assert _chat(http, key).status_code == 200, "a new budget period starts from nothing"


def test_keys_without_limits_get_no_rate_limit_headers(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream
) -> None:
    key = _key(http)
    OPENAI.answer(fake, "simple")
    response = _chat(http, key)
    assert response.status_code == 200
    assert not any(name.startswith("x-ratelimit-") for name in response.headers)


def test_concurrent_streams_cannot_spend_past_a_one_request_budget(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream
) -> None:
    """20 streams at once against a budget of one answer: the first is admitted and sets aside what it
    may cost, the other 19 are refused while it runs, and the spend ends within one request of the
    budget (here: exactly the budget)."""
    key = _key(http, max_budget=float(ANSWER_COST))
    fake.add("POST", OPENAI.path, stream=golden_stream("openai", "stream_text"), hold=True)
    body = {"model": OPENAI.alias, "messages": HI, "stream": True, "stream_options": {"include_usage": True}}

    def stream() -> httpx.Response:
        with httpx.Client(base_url=gateway.url, timeout=30) as own:
            return own.post("/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"})

    with ThreadPoolExecutor(20) as pool:
        futures = [pool.submit(stream) for _ in range(20)]
        # every request is either refused or waiting at the upstream before any answer is let through
        _within(20, lambda: fake.holding + sum(f.done() for f in futures) == 20)
        fake.release_held()
        answers = [future.result() for future in futures]
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [429] * 19, statuses
    for refused in (answer for answer in answers if answer.status_code == 429):
        error = assert_error(refused, 429, type="rate_limit_error", code="budget_exceeded")
        assert "in progress" in error["message"] and refused.headers["retry-after"] == "1"

    def spend() -> Decimal:
        info = http.get("/key/info", params={"key": key}, headers=ADMIN).json()["info"]
        return Decimal(str(info["spend"]))

    _within(10, lambda: spend() > 0)
    assert spend() == ANSWER_COST  # at most max_budget + one request's cost, as README states
    over = _chat(http, key)
    assert_error(over, 429, code="budget_exceeded")
    assert "retry-after" not in over.headers, "spent: no request in progress, nothing to wait for"
