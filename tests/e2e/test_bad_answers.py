"""Bad answers that reached no client fail over: HTML, bodies that break off, oversized answers and
events, malformed streams. Each alias has a bad deployment (tried first) and a good one.

Both backends run: OpenAI's stream is passed through unchanged, Ollama's is translated.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import BACKENDS, Backend, assert_error, golden_json, golden_stream, sse_events
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway

HI: list[Any] = [{"role": "user", "content": "Hi"}]
LIMIT = 64 * 1024  # the answer and stream-event limits of this module's gateway
HTML = "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>\n"


@pytest.fixture(scope="module")
def good() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture(autouse=True)
def _fresh_good(good: FakeUpstream) -> None:
    good.clear()


@pytest.fixture(scope="module")
def gateway(
    fake: FakeUpstream, good: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayServer]:
    """Per backend an alias whose first deployment is `fake` (made to misbehave), then `good`."""
    entries = []
    for backend in BACKENDS:
        entries.append(backend.entry(fake.url, model="bad", order=1))
        entries.append(backend.entry(good.url, model="good", order=2))
    config = {"model_list": entries, "router_settings": {"allowed_fails": 1000}}
    with running_gateway(
        tmp_path_factory.mktemp("bad-answers"),
        config,
        request_timeout=30,
        max_upstream_answer_bytes=LIMIT,
        max_stream_event_bytes=LIMIT,
    ) as server:
        yield server


def _ask(http: httpx.Client, backend: Backend, *, stream: bool) -> httpx.Response:
    body = {"model": backend.alias, "messages": HI, "stream": stream}
    return http.post("/v1/chat/completions", json=body, timeout=30)


def _answered_by_the_good_one(
    response: httpx.Response, backend: Backend, bad: FakeUpstream, good: FakeUpstream
) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["x-turnout-deployment"] == f"{backend.name}/good"
    assert (len(bad.requests), len(good.requests)) == (1, 1)


def _good_answer(good: FakeUpstream, backend: Backend, *, stream: bool) -> None:
    if stream:
        good.add("POST", backend.path, stream=golden_stream(backend.name, "stream_text"))
    else:
        good.add("POST", backend.path, json=golden_json(backend.name, "simple.response.json"))


def _stream_text(response: httpx.Response) -> str:
    events = sse_events(response.content)
    assert events[-1] == "[DONE]", events[-1]
    return "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1] if e.get("choices"))


# ---- whole answers -------------------------------------------------------------------------------


def test_an_html_answer_fails_over(
    http: httpx.Client, fake: FakeUpstream, good: FakeUpstream, backend: Backend
) -> None:
    fake.add("POST", backend.path, body=HTML, content_type="text/html")
    _good_answer(good, backend, stream=False)
    answer = _ask(http, backend, stream=False)
    _answered_by_the_good_one(answer, backend, fake, good)
    assert answer.json()["choices"][0]["message"]["content"]


def test_an_answer_that_breaks_off_fails_over(
    http: httpx.Client, fake: FakeUpstream, good: FakeUpstream, backend: Backend
) -> None:
    fake.add("POST", backend.path, json=golden_json(backend.name, "simple.response.json"), cut_after=20)
    _good_answer(good, backend, stream=False)
    _answered_by_the_good_one(_ask(http, backend, stream=False), backend, fake, good)


def test_an_oversized_answer_fails_over(
    http: httpx.Client, fake: FakeUpstream, good: FakeUpstream, backend: Backend
) -> None:
    huge = golden_json(backend.name, "simple.response.json")
    huge["padding"] = "x" * (2 * LIMIT)
    fake.add("POST", backend.path, json=huge)
    _good_answer(good, backend, stream=False)
    _answered_by_the_good_one(_ask(http, backend, stream=False), backend, fake, good)


def test_an_oversized_answer_alone_is_a_502_that_says_so(
    http: httpx.Client, fake: FakeUpstream, good: FakeUpstream, backend: Backend
) -> None:
    huge = golden_json(backend.name, "simple.response.json")
    huge["padding"] = "x" * (2 * LIMIT)
    fake.add("POST", backend.path, json=huge)
    good.add("POST", backend.path, json=huge)
    error = assert_error(_ask(http, backend, stream=False), 502, code="upstream_bad_response")
    assert f"more than {LIMIT} bytes" in error["message"]


def test_an_error_body_that_never_ends_is_not_waited_for(
    http: httpx.Client, fake: FakeUpstream, good: FakeUpstream, backend: Backend
) -> None:
    """Only the start of an error body is read: its message, then the status, without waiting."""
    start = json.dumps({"error": {"message": "out of memory", "type": "server_error"}})[:-2]
    fake.add("POST", backend.path, status=400, stream=[start, "x" * 100_000], hang_after=2)
    try:
        error = assert_error(_ask(http, backend, stream=False), 400)
    finally:
        fake.release_hanging()
    assert "out of memory" in error["message"]
    assert not good.requests  # a 400 is the client's: not tried elsewhere


# ---- streams -------------------------------------------------------------------------------------


def test_an_html_page_for_a_stream_fails_over(
    http: httpx.Client, fake: FakeUpstream, good: FakeUpstream, backend: Backend
) -> None:
    fake.add("POST", backend.path, body=HTML, content_type="text/html")
    _good_answer(good, backend, stream=True)
    answer = _ask(http, backend, stream=True)
    _answered_by_the_good_one(answer, backend, fake, good)
    assert "<html>" not in answer.text and _stream_text(answer)


def test_a_stream_of_events_that_are_not_json_fails_over(
    http: httpx.Client, fake: FakeUpstream, good: FakeUpstream, backend: Backend
) -> None:
    garbage = ["<p>busy</p>\n"] if backend.is_ollama else ["data: <p>busy</p>\n\n", "data: [DONE]\n\n"]
    fake.add("POST", backend.path, stream=garbage)
    _good_answer(good, backend, stream=True)
    answer = _ask(http, backend, stream=True)
    _answered_by_the_good_one(answer, backend, fake, good)
    assert "busy" not in answer.text


def test_a_stream_whose_first_event_never_ends_fails_over(
    http: httpx.Client, fake: FakeUpstream, good: FakeUpstream, backend: Backend
) -> None:
    """An event growing past max_stream_event_bytes is an upstream error, not a growing buffer."""
    start = '{"message": {"content": "' if backend.is_ollama else 'data: {"choices": [{"delta": {"x": "'
    fake.add("POST", backend.path, stream=[start, *["x" * 16_384] * 8], hang_after=9)
    _good_answer(good, backend, stream=True)
    try:
        answer = _ask(http, backend, stream=True)
    finally:
        fake.release_hanging()
    _answered_by_the_good_one(answer, backend, fake, good)
    assert _stream_text(answer)


def test_an_empty_stream_fails_over(
    http: httpx.Client, fake: FakeUpstream, good: FakeUpstream, backend: Backend
) -> None:
    fake.add("POST", backend.path, stream=[])
    _good_answer(good, backend, stream=True)
    _answered_by_the_good_one(_ask(http, backend, stream=True), backend, fake, good)


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_an_event_that_grows_too_large_mid_stream_ends_it(
    http: httpx.Client, fake: FakeUpstream, good: FakeUpstream, backend: Backend
) -> None:
    first = golden_stream(backend.name, "stream_text")[:2]
    start = b'{"message": {"content": "' if backend.is_ollama else b'data: {"choices": [{"delta": {"x": "'
    fake.add("POST", backend.path, stream=[*first, start, *[b"x" * 16_384] * 8])
    answer = _ask(http, backend, stream=True)
    assert answer.status_code == 200
    last = sse_events(answer.content)[-1]
    assert last["error"]["code"] == "upstream_bad_response"
    assert f"larger than {LIMIT} bytes" in last["error"]["message"]
    assert not good.requests  # the answer had begun: it is the answer
