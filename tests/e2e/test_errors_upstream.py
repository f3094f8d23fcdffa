"""Errors from the backend: statuses passed on in OpenAI's shape, network failures, broken streams."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import (
    BACKENDS,
    Backend,
    assert_error,
    golden_json,
    golden_stream,
    sse_events,
    two_backend_config,
)
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway
from tests.support.server import free_port

HI: list[Any] = [{"role": "user", "content": "Hi"}]
DEAD_PORT = free_port()  # nothing listens here
DEAD = Backend("ollama", "dead-ollama", "/api/chat")
DEAD_OPENAI = Backend("openai", "dead-openai", "/v1/chat/completions")


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """Both backends, two aliases on a closed port, and a 1-second upstream timeout."""
    dead_url = f"http://127.0.0.1:{DEAD_PORT}"
    config = two_backend_config(fake.url, DEAD.entry(dead_url), DEAD_OPENAI.entry(dead_url))
    with running_gateway(tmp_path_factory.mktemp("errors"), config, request_timeout=1) as server:
        yield server


STATUSES = [
    (400, 400, "invalid_request_error", openai.BadRequestError),
    (404, 404, "not_found_error", openai.NotFoundError),
    (429, 429, "rate_limit_error", openai.RateLimitError),
    (500, 500, "api_error", openai.InternalServerError),
]


@pytest.mark.parametrize(
    ("upstream", "status", "kind", "exception"), STATUSES, ids=[str(s[0]) for s in STATUSES]
)
def test_upstream_status(
    http: httpx.Client,
    client: openai.OpenAI,
    fake: FakeUpstream,
    backend: Backend,
    upstream: int,
    status: int,
    kind: str,
    exception: type[openai.APIStatusError],
) -> None:
    golden = backend.error(fake, upstream)
    response = http.post("/v1/chat/completions", json={"model": backend.alias, "messages": HI})
    error = assert_error(response, status, type=kind)
    body = golden["body"]["error"]
    upstream_message = body if isinstance(body, str) else body["message"]
    assert error["message"].startswith(f"{backend.name} (test-model)")
    assert upstream_message in error["message"]
    if not backend.is_ollama:
        assert error["code"] == body["code"]
    if "retry-after" in golden["headers"]:
        assert response.headers["retry-after"] == golden["headers"]["retry-after"]
    backend.error(fake, upstream)
    with pytest.raises(exception) as caught:
        client.chat.completions.create(model=backend.alias, messages=HI)
    assert caught.value.status_code == status


def test_upstream_529_becomes_503(http: httpx.Client, fake: FakeUpstream, backend: Backend) -> None:
    body = golden_json(backend.name, "error_500.error.json")["body"]
    fake.add("POST", backend.path, status=529, json=body)
    response = http.post("/v1/chat/completions", json={"model": backend.alias, "messages": HI})
    error = assert_error(response, 503, type="api_error")
    assert "HTTP 529" in error["message"] and backend.name in error["message"]


@pytest.mark.parametrize("dead", [DEAD, DEAD_OPENAI], ids=lambda b: b.name)
def test_upstream_unreachable(http: httpx.Client, client: openai.OpenAI, dead: Backend) -> None:
    response = http.post("/v1/chat/completions", json={"model": dead.alias, "messages": HI})
    error = assert_error(response, 502, code="upstream_unavailable")
    assert dead.name in error["message"] and str(DEAD_PORT) not in error["message"]
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=dead.alias, messages=HI)
    assert caught.value.status_code == 502


def test_upstream_timeout(http: httpx.Client, fake: FakeUpstream, backend: Backend) -> None:
    fake.add("POST", backend.path, hang=True)
    response = http.post("/v1/chat/completions", json={"model": backend.alias, "messages": HI})
    error = assert_error(response, 504, type="timeout_error", code="upstream_timeout")
    assert backend.name in error["message"]
    assert fake.wait_for_disconnect(5)  # the gateway gave up on the upstream request


def test_a_long_stream_that_keeps_talking_is_not_cut_off(
    http: httpx.Client, fake: FakeUpstream, backend: Backend
) -> None:
    """For streams the timeout (1 s here) bounds each silence, not the whole generation."""
    backend.stream(fake, "stream_text", chunk_delay=0.3)  # 2+ s in all, never 1 s quiet
    body = {"model": backend.alias, "messages": HI, "stream": True}
    response = http.post("/v1/chat/completions", json=body)
    events = sse_events(response.content)
    assert events[-1] == "[DONE]"
    assert not any(isinstance(e, dict) and "error" in e for e in events)


def test_a_stream_that_goes_quiet_times_out(http: httpx.Client, fake: FakeUpstream, backend: Backend) -> None:
    backend.stream(fake, "stream_text", chunk_delay=1.5)  # the first chunk, then 1.5 s of silence
    response = http.post(
        "/v1/chat/completions", json={"model": backend.alias, "messages": HI, "stream": True}
    )
    last = sse_events(response.content)[-1]
    assert isinstance(last, dict) and last["error"]["code"] == "upstream_timeout"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_malformed_upstream_json(
    http: httpx.Client, fake: FakeUpstream, backend: Backend, stream: bool
) -> None:
    fake.add("POST", backend.path, body="not json", content_type="application/json")
    response = http.post(
        "/v1/chat/completions", json={"model": backend.alias, "messages": HI, "stream": stream}
    )
    # nothing had reached the client: an upstream error, not a 200 stream that carries the garbage
    error = assert_error(response, 502, code="upstream_bad_response")
    assert backend.name in error["message"]


def test_a_malformed_event_after_the_stream_started_ends_it(
    http: httpx.Client, fake: FakeUpstream, backend: Backend
) -> None:
    garbage = b"<p>not json</p>\n" if backend.is_ollama else b"data: <p>not json</p>\n\n"
    fake.add("POST", backend.path, stream=[*golden_stream(backend.name, "stream_text")[:2], garbage])
    error = _stream_error(http, backend)
    assert error["code"] == "upstream_bad_response" and "malformed" in error["message"]


def _stream_error(http: httpx.Client, backend: Backend) -> dict[str, Any]:
    """Stream from `backend` over raw HTTP; the last event must be an error event, returned."""
    body = {"model": backend.alias, "messages": HI, "stream": True}
    response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert "Traceback" not in response.text
    events = sse_events(response.content)
    assert "[DONE]" not in events
    last = events[-1]
    assert set(last) == {"error"} and set(last["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = last["error"]
    return error


def _sdk_stream_raises(client: openai.OpenAI, backend: Backend) -> str:
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(model=backend.alias, messages=HI, stream=True):
            received.append(chunk)
    assert received  # the first chunks were delivered before the error
    return caught.value.message


def test_broken_stream(
    http: httpx.Client, client: openai.OpenAI, fake: FakeUpstream, backend: Backend
) -> None:
    backend.stream(fake, "stream_text", close_after=2, times=1)
    error = _stream_error(http, backend)
    assert backend.name in error["message"]
    backend.stream(fake, "stream_text", close_after=2, times=1)
    assert backend.name in _sdk_stream_raises(client, backend)


def test_error_mid_stream(
    http: httpx.Client, client: openai.OpenAI, fake: FakeUpstream, backend: Backend
) -> None:
    backend.stream(fake, "error_midstream", times=1)
    error = _stream_error(http, backend)
    expected = "unexpected EOF" if backend.is_ollama else "The server had an error"
    assert expected in error["message"]
    backend.stream(fake, "error_midstream", times=1)
    assert expected in _sdk_stream_raises(client, backend)


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_stream_that_stops_before_the_end(
    http: httpx.Client, client: openai.OpenAI, fake: FakeUpstream, backend: Backend
) -> None:
    # the upstream closes the response properly, but without Ollama's done line or SSE's [DONE]
    truncated = golden_stream(backend.name, "stream_text")[:-1]
    fake.add("POST", backend.path, stream=truncated, times=1)
    error = _stream_error(http, backend)
    assert "before it was complete" in error["message"] and backend.name in error["message"]
    fake.add("POST", backend.path, stream=truncated, times=1)
    assert "before it was complete" in _sdk_stream_raises(client, backend)
