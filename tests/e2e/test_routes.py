"""Routes: model lists, the LiteLLM-style paths without /v1, health, and the default alias set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import OLLAMA, OPENAI, Backend, assert_error
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway
from tests.support.sdk_types import openai_client

HI: list[Any] = [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize("path", ["/v1/models", "/models"])
def test_models_list(http: httpx.Client, path: str) -> None:
    response = http.get(path)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == [OLLAMA.alias, OPENAI.alias]
    for model in body["data"]:
        assert model["object"] == "model"
        assert isinstance(model["created"], int) and model["owned_by"] == "turnout"


def test_models_with_the_sdk(client: openai.OpenAI) -> None:
    assert sorted(m.id for m in client.models.list()) == [OLLAMA.alias, OPENAI.alias]


def test_chat_without_v1(gateway: GatewayServer, fake: FakeUpstream, backend: Backend) -> None:
    backend.answer(fake, "simple")
    client = openai_client(gateway.url, "unused")
    answer = client.chat.completions.create(model=backend.alias, messages=HI)
    assert answer.choices[0].message.content == "Hello! It's nice to meet you."


@pytest.mark.parametrize("path", ["/health", "/health/liveness", "/health/liveliness"])
def test_liveness(http: httpx.Client, path: str) -> None:
    response = http.get(path)
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readiness(http: httpx.Client) -> None:
    response = http.get("/health/readiness")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["aliases"] == 2 and body["mappings"] >= 2


def test_unknown_route(http: httpx.Client) -> None:
    error = assert_error(http.get("/v1/embeddingz"), 404, type="not_found_error")
    assert "/v1" in error["message"]
    assert_error(http.post("/nowhere", json={}), 404)


def test_default_alias_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeUpstream() as fake:
        monkeypatch.setenv("TURNOUT_OLLAMA_URL", fake.url)
        OLLAMA.answer(fake, "simple")
        with running_gateway(tmp_path) as gateway:
            client = openai_client(gateway.v1, "unused")
            listed = {m.id for m in client.models.list()}
            assert {"gpt-4", "gpt-4o", "gpt-3.5-turbo", "o1-mini", "text-embedding-3-small"} <= listed
            answer = client.chat.completions.create(model="gpt-4", messages=HI)
        assert answer.choices[0].message.content == "Hello! It's nice to meet you."
        assert fake.last.path == "/api/chat"
        assert fake.last.json["model"] == "qwen3:32b"
