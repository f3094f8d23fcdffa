"""The fake upstream itself: scripted answers, streams, retirement, broken streams, recording."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from .upstream import FakeUpstream


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


def test_scripted_json_and_recorded_request(fake: FakeUpstream) -> None:
    fake.add("POST", "/v1/chat/completions?api-version=1", json={"ok": True}, headers={"X-Request-Id": "r1"})

    answer = httpx.post(
        f"{fake.url}/v1/chat/completions?api-version=2",
        json={"model": "m"},
        headers={"Authorization": "Bearer k"},
    )

    assert answer.status_code == 200
    assert answer.json() == {"ok": True}
    assert answer.headers["x-request-id"] == "r1"
    assert answer.headers["content-type"].startswith("application/json")
    sent = fake.last
    assert (sent.method, sent.path, sent.query) == ("POST", "/v1/chat/completions", {"api-version": "2"})
    assert sent.headers["authorization"] == "Bearer k"
    assert sent.json == {"model": "m"}
    assert sent.body == b'{"model":"m"}'


def test_unscripted_path_is_404_json(fake: FakeUpstream) -> None:
    answer = httpx.get(f"{fake.url}/nope")
    assert answer.status_code == 404
    assert "error" in answer.json()


def test_later_script_wins_and_times_falls_back(fake: FakeUpstream) -> None:
    fake.add("POST", "/api/chat", json={"n": "always"})
    fake.add("POST", "/api/chat", status=503, json={"error": "busy"}, times=1)

    first = httpx.post(f"{fake.url}/api/chat")
    second = httpx.post(f"{fake.url}/api/chat")

    assert (first.status_code, first.json()) == (503, {"error": "busy"})
    assert (second.status_code, second.json()) == (200, {"n": "always"})
    assert len(fake.requests) == 2


def test_stream_with_delays_arrives_chunk_by_chunk(fake: FakeUpstream) -> None:
    lines = ['{"n":1}\n', '{"n":2}\n', '{"n":3}\n']
    fake.add("POST", "/api/chat", stream=lines, chunk_delay=0.15)

    arrivals: list[float] = []
    with httpx.stream("POST", f"{fake.url}/api/chat") as answer:
        assert answer.headers["content-type"].startswith("application/x-ndjson")
        got = []
        for line in answer.iter_lines():
            arrivals.append(time.monotonic())
            got.append(line)

    assert got == ['{"n":1}', '{"n":2}', '{"n":3}']
    assert arrivals[-1] - arrivals[0] >= 0.25


def test_sse_stream_gets_event_stream_type(fake: FakeUpstream) -> None:
    fake.add("POST", "/v1/chat/completions", stream=["data: {}\n\n", "data: [DONE]\n\n"])
    answer = httpx.post(f"{fake.url}/v1/chat/completions")
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert answer.text == "data: {}\n\ndata: [DONE]\n\n"


def test_broken_stream_aborts_after_n_chunks(fake: FakeUpstream) -> None:
    fake.add("POST", "/api/chat", stream=[b'{"n":1}\n', b'{"n":2}\n', b'{"n":3}\n'], close_after=1)

    got: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError), httpx.stream("POST", f"{fake.url}/api/chat") as answer:
        for line in answer.iter_lines():
            got.append(line)
    assert got == ['{"n":1}']


def test_client_disconnect_mid_stream_is_counted(fake: FakeUpstream) -> None:
    fake.add("POST", "/api/chat", stream=[b"a\n"] * 50, chunk_delay=0.05)

    with httpx.stream("POST", f"{fake.url}/api/chat") as answer:
        next(answer.iter_bytes())
    # leaving the block closes the connection while the fake is still writing

    assert fake.wait_for_disconnect(3)
    assert fake.disconnects == 1


def test_delay_and_hang(fake: FakeUpstream) -> None:
    fake.add("GET", "/slow", json={}, delay=0.3)
    fake.add("GET", "/hang", hang=True)

    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{fake.url}/slow", timeout=0.1)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{fake.url}/hang", timeout=0.2)
    assert fake.wait_for_disconnect(3)


def test_static_binary_content(fake: FakeUpstream) -> None:
    png = b"\x89PNG\r\n\x1a\nfake"
    fake.add("GET", "/cat.png", body=png, content_type="image/png")

    answer = httpx.get(f"{fake.url}/cat.png")

    assert answer.content == png
    assert answer.headers["content-type"] == "image/png"


def test_clear_forgets_everything(fake: FakeUpstream) -> None:
    fake.add("GET", "/x", json={})
    httpx.get(f"{fake.url}/x")
    fake.clear()
    assert fake.requests == []
    assert httpx.get(f"{fake.url}/x").status_code == 404


def test_cut_after_announces_the_whole_body_and_breaks_off(fake: FakeUpstream) -> None:
    fake.add("POST", "/api/chat", json={"message": "a long answer"}, cut_after=5)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(f"{fake.url}/api/chat")


def test_hang_after_sends_the_start_then_waits_until_released(fake: FakeUpstream) -> None:
    fake.add("POST", "/api/chat", stream=['{"n":1}\n', '{"n":2}\n'], hang_after=1)
    with httpx.stream("POST", f"{fake.url}/api/chat", timeout=10) as answer:
        lines = answer.iter_lines()
        assert next(lines) == '{"n":1}'
        fake.release_hanging()
        assert list(lines) == []  # the rest is never sent: the body just ends
