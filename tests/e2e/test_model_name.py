"""The model name answers carry: the name the client asked for, on every route, whichever backend
answered (or after a fallback); the backend's own with `response_model: upstream`.

The fake backends answer with their golden fixtures, which name the upstream model `test-model`; the
aliases are called something else, so the two can be told apart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import OLLAMA, OPENAI, Backend, golden_json, sse_events
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway, sdk_types

HI: Any = [{"role": "user", "content": "Hello!"}]


def _config(url: str) -> dict[str, Any]:
    return {
        "model_list": [
            OLLAMA.entry(url),
            OPENAI.entry(url),
            {
                "model_name": "broken",
                "litellm_params": {"model": "ollama/broken", "api_base": url + "/broken"},
            },
        ],
        "router_settings": {"fallbacks": [{"broken": [OPENAI.alias]}]},
    }


@pytest.fixture(scope="module")
def named(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    with running_gateway(tmp_path_factory.mktemp("alias"), _config(fake.url)) as server:
        yield server


@pytest.fixture(scope="module")
def upstream(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    with running_gateway(
        tmp_path_factory.mktemp("upstream"), _config(fake.url), response_model="upstream"
    ) as server:
        yield server


def _post(gateway: GatewayServer, path: str, body: dict[str, Any]) -> httpx.Response:
    answer = sdk_types.post(gateway.url + path, json=body)
    assert answer.status_code == 200, answer.text
    return answer


def _models(events: list[Any]) -> set[str]:
    return {e["model"] for e in events if isinstance(e, dict) and "model" in e}


def test_chat_answers_and_chunks_name_the_alias(
    named: GatewayServer, fake: FakeUpstream, backend: Backend
) -> None:
    backend.answer(fake, "simple")
    answer = _post(named, "/v1/chat/completions", {"model": backend.alias, "messages": HI})
    assert answer.json()["model"] == backend.alias
    backend.stream(fake, "stream_text")
    body = {"model": backend.alias, "messages": HI, "stream": True, "stream_options": {"include_usage": True}}
    streamed = sse_events(_post(named, "/v1/chat/completions", body).content)
    assert _models(streamed) == {backend.alias} and len(streamed) > 3


def test_a_fallback_answers_with_the_name_asked_for(named: GatewayServer, fake: FakeUpstream) -> None:
    fake.add("POST", "/broken/api/chat", status=500, json={"error": "down"})
    OPENAI.answer(fake, "simple")
    answer = _post(named, "/v1/chat/completions", {"model": "broken", "messages": HI})
    assert answer.headers["x-turnout-fallback"].startswith("broken -> ")
    assert answer.json()["model"] == "broken"


def test_completions_and_embeddings_name_the_alias(named: GatewayServer, fake: FakeUpstream) -> None:
    completion = golden_json("openai", "operations/completions/simple.response.json")
    fake.add("POST", "/v1/completions", json=completion)
    answer = _post(named, "/v1/completions", {"model": OPENAI.alias, "prompt": "Say"})
    assert completion["model"] == "test-model" and answer.json()["model"] == OPENAI.alias
    fake.add(
        "POST", "/v1/embeddings", json=golden_json("openai", "operations/embeddings/single.response.json")
    )
    vectors = _post(
        named, "/v1/embeddings", {"model": OPENAI.alias, "input": "hi", "encoding_format": "float"}
    )
    assert vectors.json()["model"] == OPENAI.alias


def test_dialects_name_the_alias(named: GatewayServer, fake: FakeUpstream) -> None:
    OLLAMA.answer(fake, "simple")
    message = _post(named, "/v1/messages", {"model": OLLAMA.alias, "max_tokens": 8, "messages": HI})
    assert message.json()["model"] == OLLAMA.alias
    OLLAMA.answer(fake, "simple")
    response = _post(named, "/v1/responses", {"model": OLLAMA.alias, "input": "Hello!", "store": False})
    assert response.json()["model"] == OLLAMA.alias


def test_the_upstream_setting_keeps_the_backends_name_on_every_route(
    upstream: GatewayServer, fake: FakeUpstream, backend: Backend
) -> None:
    backend.answer(fake, "simple")
    assert _post(upstream, "/v1/chat/completions", {"model": backend.alias, "messages": HI}).json()[
        "model"
    ] == ("test-model")
    backend.stream(fake, "stream_text")
    body = {"model": backend.alias, "messages": HI, "stream": True}
    assert _models(sse_events(_post(upstream, "/v1/chat/completions", body).content)) == {"test-model"}
    backend.answer(fake, "simple")
    message = _post(upstream, "/v1/messages", {"model": backend.alias, "max_tokens": 8, "messages": HI})
    assert message.json()["model"] == "test-model"
    backend.stream(fake, "stream_text")
    events = [e["data"] for e in _typed_events(_post(upstream, "/v1/responses", {**body, "input": "Hi"}))]
    assert {e["response"]["model"] for e in events if "response" in e} == {"test-model"}
    backend.stream(fake, "stream_text")
    started = _typed_events(_post(upstream, "/v1/messages", {**body, "max_tokens": 8}))[0]["data"]
    assert started["message"]["model"] == "test-model"


def _typed_events(answer: httpx.Response) -> list[dict[str, Any]]:
    return [
        {"event": block.split("\n")[0][7:], "data": json.loads(block.split("data: ", 1)[1])}
        for block in answer.text.split("\n\n")
        if block.startswith("event: ")
    ]
