"""A client that goes away mid-stream makes the gateway drop its upstream request too."""

from __future__ import annotations

import json

import httpx

from tests.e2e.conftest import Backend
from tests.fakes import FakeUpstream
from tests.support import GatewayServer

CHUNKS = 100  # at 0.2 s apiece the stream would take 20 s: only a cancelled one ends quickly


def _slow_stream(backend: Backend) -> list[bytes]:
    if backend.is_ollama:
        line = {"model": "test-model", "message": {"role": "assistant", "content": "word "}, "done": False}
        return [json.dumps(line).encode() + b"\n"] * CHUNKS
    chunk = {
        "id": "chatcmpl-slow",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "test-model",
        "choices": [{"index": 0, "delta": {"content": "word "}, "logprobs": None, "finish_reason": None}],
    }
    return [b"data: " + json.dumps(chunk).encode() + b"\n\n"] * CHUNKS


def test_client_disconnect_cancels_upstream(
    gateway: GatewayServer, fake: FakeUpstream, backend: Backend
) -> None:
    fake.add("POST", backend.path, stream=_slow_stream(backend), chunk_delay=0.2)
    body = {
        "model": backend.alias,
        "messages": [{"role": "user", "content": "Tell me a long story"}],
        "stream": True,
    }
    with (
        httpx.Client(base_url=gateway.url, timeout=10) as http,
        http.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        first = next(response.iter_bytes())
        assert first.startswith(b"data: ")
    # leaving the block closed the connection after one chunk
    assert fake.wait_for_disconnect(5), "the upstream request was still running after the client left"
    assert fake.disconnects == 1
