"""Shared pieces of the end-to-end suite: one fake upstream and one gateway per module, two backends.

Every module that asks for `gateway` gets a gateway whose config has one alias per backend, both
pointed at the same `FakeUpstream` (Ollama at `/api/chat`, the OpenAI-compatible server at
`/v1/chat/completions`). The fake is cleared before each test. Answers reuse the golden fixtures.

The SDK clients and `http` built here (and tests.support.sdk_types' clients elsewhere in the suite)
check every answer, stream chunk, event and error body strictly against the official openai and
anthropic SDK types; a test fails when one is not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway
from tests.support.sdk_types import PROBLEMS, openai_client, strict_http

FIXTURES = Path(__file__).resolve().parent.parent / "golden" / "fixtures"


@dataclass(frozen=True)
class Backend:
    """One backend the scenarios run against: its alias in the config and the path the fake serves."""

    name: str  # "ollama" | "openai": the mapping, and the golden fixture folder
    alias: str
    path: str

    @property
    def is_ollama(self) -> bool:
        return self.name == "ollama"

    def entry(self, upstream_url: str, model: str = "test-model", **params: Any) -> dict[str, Any]:
        """The LiteLLM-format model_list entry for this backend."""
        base = upstream_url if self.is_ollama else upstream_url + "/v1"
        return {
            "model_name": self.alias,
            "litellm_params": {"model": f"{self.name}/{model}", "api_base": base, **params},
        }

    def answer(self, fake: FakeUpstream, scenario: str) -> dict[str, Any]:
        """Script the golden `<scenario>.response.json` as the fake's answer; returns it."""
        payload = golden_json(self.name, f"{scenario}.response.json")
        fake.add("POST", self.path, json=payload)
        return payload

    def stream(self, fake: FakeUpstream, scenario: str, **options: Any) -> list[bytes]:
        """Script the golden `<scenario>.stream.txt` as a streamed answer, one event per chunk."""
        chunks = golden_stream(self.name, scenario)
        fake.add("POST", self.path, stream=chunks, **options)
        return chunks

    def error(self, fake: FakeUpstream, status: int) -> dict[str, Any]:
        """Script the golden `error_<status>.error.json` (status, headers, body) as the answer."""
        error = golden_json(self.name, f"error_{status}.error.json")
        headers = {k: v for k, v in error["headers"].items() if k != "content-type"}
        fake.add("POST", self.path, status=error["status"], json=error["body"], headers=headers)
        return error


OLLAMA = Backend("ollama", "ollama-model", "/api/chat")
OPENAI = Backend("openai", "openai-model", "/v1/chat/completions")
BACKENDS = [OLLAMA, OPENAI]


# the tool the tool-calling tests ask about, and the question that makes a model call it
WEATHER_TOOL: Any = {  # Any: the SDKs type tool params more narrowly than a dict literal
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a place",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}
QUESTION: Any = {"role": "user", "content": "Weather in Paris?"}


def golden_json(provider: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / provider / name).read_text())
    return data


def golden_stream(provider: str, scenario: str) -> list[bytes]:
    text = (FIXTURES / provider / f"{scenario}.stream.txt").read_text()
    if provider == "ollama":  # NDJSON: one line per chunk
        return [line.encode() + b"\n" for line in text.splitlines() if line.strip()]
    return [event.encode() + b"\n\n" for event in text.split("\n\n") if event.strip()]


def sse_events(raw: bytes) -> list[Any]:
    """The `data:` payloads of an SSE body: decoded JSON, or the literal string `[DONE]`."""
    events: list[Any] = []
    for block in raw.decode().split("\n\n"):
        data = "\n".join(line[5:].strip() for line in block.splitlines() if line.startswith("data:"))
        if data:
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def assert_error(
    response: httpx.Response, status: int, *, type: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The answer is an OpenAI-style error with this status (and type/code); returns `error`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "Traceback" not in response.text
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if type is not None:
        assert error["type"] == type
    if code is not None:
        assert error["code"] == code
    return error


def two_backend_config(upstream_url: str, *extra: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"model_list": [OLLAMA.entry(upstream_url), OPENAI.entry(upstream_url), *extra], **top}


@pytest.fixture(autouse=True)
def _sdk_types(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every answer the suite's SDK clients and `http` got is what the official SDKs' types say
    (tests.support.sdk_types); a test driving a deliberately broken pass-through stream opts out."""
    PROBLEMS.clear()
    yield
    if request.node.get_closest_marker("sdk_types_unchecked") is None:
        found, PROBLEMS[:] = list(PROBLEMS), []
        assert found == [], "answers that are not the official SDK types:\n" + "\n".join(found)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture(autouse=True)
def _fresh_fake(request: pytest.FixtureRequest) -> None:
    if "fake" in request.fixturenames:
        request.getfixturevalue("fake").clear()


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """A gateway serving `ollama-model` and `openai-model`, both backed by the module's fake."""
    with running_gateway(tmp_path_factory.mktemp("gateway"), two_backend_config(fake.url)) as server:
        yield server


@pytest.fixture
def client(gateway: GatewayServer) -> openai.OpenAI:
    return openai_client(gateway.v1, "unused")


@pytest.fixture
def http(gateway: GatewayServer) -> Iterator[httpx.Client]:
    with strict_http(gateway.url, timeout=10) as session:
        yield session


@pytest.fixture(params=BACKENDS, ids=lambda b: b.name)
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    return chosen
