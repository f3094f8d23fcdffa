"""Request bodies in bounded memory: a limit per request (413) and a budget for the whole process (503).

The limits are set low here (100 kB per body, 200 kB in all) so that the tests stay light; the
defaults are in engine/settings.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import FIXTURES, assert_error, golden_json
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway

LIMIT = 100_000
BUDGET = 200_000
CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    base = fake.url + "/v1"
    config = {
        "model_list": [
            {"model_name": "chat", "litellm_params": {"model": "openai/m", "api_base": base}},
            {"model_name": "whisper-1", "litellm_params": {"model": "openai/w", "api_base": base}},
        ]
    }
    with running_gateway(
        tmp_path_factory.mktemp("bodies"),
        config,
        max_request_body_bytes=LIMIT,
        request_body_budget_bytes=BUDGET,
        audio_max_bytes=2 * LIMIT,
    ) as server:
        yield server


def _chat(size: int) -> dict[str, Any]:
    """A chat request of about `size` bytes."""
    return {"model": "chat", "messages": [{"role": "user", "content": "x" * size}]}


def _answer(fake: FakeUpstream) -> None:
    fake.add("POST", CHAT, json=golden_json("openai", "simple.response.json"))


def test_a_body_over_the_limit_is_a_413(http: httpx.Client, fake: FakeUpstream) -> None:
    _answer(fake)
    error = assert_error(http.post(CHAT, json=_chat(LIMIT + 1000)), 413, code="payload_too_large")
    assert str(LIMIT) in error["message"]
    assert not fake.requests
    assert http.post(CHAT, json=_chat(LIMIT - 1000)).status_code == 200


def test_a_chunked_body_over_the_limit_is_a_413(http: httpx.Client, fake: FakeUpstream) -> None:
    """Without a content-length the bytes are counted as they come."""
    _answer(fake)
    pieces = (b"x" * 10_000 for _ in range(2 * LIMIT // 10_000))
    answer = http.post(CHAT, content=pieces, headers={"content-type": "application/json"})
    assert_error(answer, 413, code="payload_too_large")
    assert not fake.requests


def test_a_dialect_says_it_in_its_own_shape(http: httpx.Client, fake: FakeUpstream) -> None:
    body = {"model": "chat", "max_tokens": 5, "messages": [{"role": "user", "content": "x" * 2 * LIMIT}]}
    answer = http.post("/v1/messages", json=body)
    assert answer.status_code == 413
    assert (
        answer.json()["type"] == "error" and answer.json()["error"]["type"] == "invalid_request_error"
    )  # the type the SDK knows for a 413


def test_an_upload_may_be_as_large_as_audio_max_bytes(http: httpx.Client, fake: FakeUpstream) -> None:
    transcript = (FIXTURES / "openai" / "operations" / "transcriptions" / "json.response.json").read_bytes()
    fake.add("POST", "/v1/audio/transcriptions", body=transcript, content_type="application/json")
    files = {"file": ("a.mp3", bytes(LIMIT + 50_000), "audio/mpeg")}
    answer = http.post("/v1/audio/transcriptions", data={"model": "whisper-1"}, files=files)
    assert answer.status_code == 200, answer.text


def _until(condition: Any, what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


def test_large_bodies_beyond_the_budget_get_a_503_until_one_ends(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream
) -> None:
    _answer(fake)
    fake.add("POST", CHAT, hang=True, times=2)  # the first two are held in flight
    large = _chat(90_000)  # two fit in the budget, a third does not
    with ThreadPoolExecutor(2) as pool:
        held = [pool.submit(http.post, CHAT, json=large) for _ in range(2)]
        try:
            _until(lambda: len(fake.requests) == 2, "both large requests reached the upstream")
            busy = http.post(CHAT, json=large)
            error = assert_error(busy, 503, code="gateway_busy")
            assert busy.headers["retry-after"] == "1" and "retry" in error["message"]
            assert http.post(CHAT, json=_chat(1000)).status_code == 200  # small bodies never wait
        finally:
            fake.release_hanging()
        for request in held:
            request.result()
    _until(lambda: gateway.app.state.bodies.used == 0, "the held bodies were given back")
    assert http.post(CHAT, json=large).status_code == 200
