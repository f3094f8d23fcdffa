"""Embeddings and legacy completions through the official openai SDK, against Ollama and an
OpenAI-compatible server, plus the default alias set's embedding models."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.e2e.conftest import FIXTURES, golden_json
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway
from tests.support.sdk_types import openai_client

VECTOR = [0.0023064255, -0.009327292, 0.015797347, -0.0077780345]
OLLAMA_EMBED = {"model": "nomic", "embeddings": [VECTOR, [0.5, -0.25, 0.125, 1.0]], "prompt_eval_count": 9}


def _f32(values: list[float]) -> list[float]:
    """The values as float32 would hold them (what a base64 vector decodes to)."""
    return list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))


def _operation_fixture(provider: str, operation: str, name: str) -> Any:
    return golden_json(provider, f"operations/{operation}/{name}")


@pytest.fixture(scope="module")
def ops_gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    embedding = {"mode": "embedding"}
    config = {
        "model_list": [
            {
                "model_name": "ollama-embed",
                "litellm_params": {"model": "ollama/nomic"},
                "model_info": embedding,
            },
            {
                "model_name": "openai-embed",
                "litellm_params": {"model": "openai/text-embedding-3-small", "api_base": fake.url + "/v1"},
                "model_info": embedding,
            },
            {"model_name": "ollama-text", "litellm_params": {"model": "ollama/qwen2.5-coder:14b"}},
            {
                "model_name": "openai-text",
                "litellm_params": {"model": "openai/gpt-3.5-turbo-instruct", "api_base": fake.url + "/v1"},
            },
        ]
    }
    for entry in config["model_list"]:
        entry["litellm_params"].setdefault("api_base", fake.url)
    with running_gateway(tmp_path_factory.mktemp("ops"), config) as server:
        yield server


@pytest.fixture
def sdk(ops_gateway: GatewayServer) -> openai.OpenAI:
    return openai_client(ops_gateway.v1, "unused")


def test_ollama_embeddings_default_base64(sdk: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", "/api/embed", json=OLLAMA_EMBED)
    answer = sdk.embeddings.create(model="ollama-embed", input=["first", "second"])  # SDK asks base64
    assert fake.last.json == {"model": "nomic", "input": ["first", "second"]}
    assert [d.index for d in answer.data] == [0, 1]
    assert answer.data[0].embedding == _f32(VECTOR)  # decoded by the SDK from Turnout's base64
    assert answer.data[1].embedding == [0.5, -0.25, 0.125, 1.0]
    assert (answer.usage.prompt_tokens, answer.usage.total_tokens) == (9, 9)


def test_ollama_embeddings_float_and_dimensions(sdk: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", "/api/embed", json={**OLLAMA_EMBED, "embeddings": [VECTOR]})
    answer = sdk.embeddings.create(model="ollama-embed", input="hello", dimensions=4, encoding_format="float")
    assert fake.last.json == {"model": "nomic", "input": "hello", "dimensions": 4}
    assert answer.data[0].embedding == VECTOR
    assert answer.model == "ollama-embed"  # the alias asked for, not the backend's nomic


def test_openai_compatible_embeddings_pass_through(sdk: openai.OpenAI, fake: FakeUpstream) -> None:
    upstream = _operation_fixture("openai", "embeddings", "base64.response.json")
    fake.add("POST", "/v1/embeddings", json=upstream)
    answer = sdk.embeddings.create(model="openai-embed", input="hello world")
    sent = fake.last.json
    assert sent == {"model": "text-embedding-3-small", "input": "hello world", "encoding_format": "base64"}
    expected = list(struct.unpack("<4f", base64.b64decode(upstream["data"][0]["embedding"])))
    assert answer.data[0].embedding == expected


@pytest.mark.parametrize(
    ("alias", "path", "provider"),
    [
        ("ollama-text", "/api/generate", "ollama"),
        ("openai-text", "/v1/completions", "openai"),
    ],
)
def test_completions(sdk: openai.OpenAI, fake: FakeUpstream, alias: str, path: str, provider: str) -> None:
    fake.add("POST", path, json=_operation_fixture(provider, "completions", "simple.response.json"))
    answer = sdk.completions.create(model=alias, prompt="Say this is a test", max_tokens=7, temperature=0)
    assert answer.object == "text_completion"
    assert answer.choices[0].text.strip() == "This is indeed a test"
    assert answer.usage is not None and answer.usage.total_tokens == 12
    if provider == "ollama":
        assert fake.last.json["options"] == {"num_predict": 7, "temperature": 0}
        assert fake.last.json["stream"] is False


@pytest.mark.parametrize(
    ("alias", "path", "provider"),
    [
        ("ollama-text", "/api/generate", "ollama"),
        ("openai-text", "/v1/completions", "openai"),
    ],
)
def test_completions_stream(
    sdk: openai.OpenAI, fake: FakeUpstream, alias: str, path: str, provider: str
) -> None:
    text = (FIXTURES / provider / "operations" / "completions" / "stream.stream.txt").read_text()
    chunks = text.splitlines(keepends=True) if provider == "ollama" else text.split("\n\n")
    fake.add("POST", path, stream=[c if provider == "ollama" else c + "\n\n" for c in chunks if c.strip()])
    events = list(
        sdk.completions.create(
            model=alias, prompt="Say this is a test", stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(e.choices[0].text for e in events if e.choices) == "This is a test."
    assert [e.choices[0].finish_reason for e in events if e.choices][-1] == "stop"
    assert events[-1].usage is not None and events[-1].usage.total_tokens == 9


def test_default_alias_set_embeds_with_ollama(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeUpstream() as upstream:
        monkeypatch.setenv("TURNOUT_OLLAMA_URL", upstream.url)
        upstream.add("POST", "/api/embed", json={**OLLAMA_EMBED, "embeddings": [VECTOR]})
        with running_gateway(tmp_path) as gateway:
            client = openai_client(gateway.v1, "unused")
            answer = client.embeddings.create(model="text-embedding-3-small", input="hello")
        assert upstream.last.path == "/api/embed"
        assert upstream.last.json["model"] == "nomic-embed-text:latest"
        assert answer.data[0].embedding == _f32(VECTOR)
