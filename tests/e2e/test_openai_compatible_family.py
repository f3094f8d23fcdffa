"""The OpenAI-compatible family through the official openai SDK: one chat and one stream per overlay,
the `reasoning` -> `reasoning_content` translation, and TGI's native /generate API.

Each backend's answers are its golden fixtures (tests/golden/fixtures/<provider>/), served by one
FakeUpstream at the path the backend's backend.yaml names; the test also checks what went upstream.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from tests.e2e.conftest import sse_events
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway, sdk_types
from tests.support.sdk_types import openai_client

FIXTURES = Path(__file__).resolve().parent.parent / "golden" / "fixtures"
OVERLAYS = [
    "lm_studio",
    "lm_studio_native",
    "vllm",
    "llama_cpp",
    "llamafile",
    "localai",
    "tgi",
    "openrouter",
    "groq",
    "deepseek",
    "together",
    "fireworks",
]
REASONING_FIELD = ["vllm", "openrouter", "groq"]  # upstreams that answer `reasoning`, not `reasoning_content`
BACKENDS = {
    name: yaml.safe_load((FIXTURES / name / "backend.yaml").read_text()) for name in [*OVERLAYS, "tgi_native"]
}
THOUGHT = "221 is odd and not divisible by 3, 5, 7 or 11. Try 13: 13 x 17 = 221. So it is composite."


def _fixture_json(provider: str, scenario: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / provider / f"{scenario}.response.json").read_text())
    return data


def _fixture_events(provider: str, scenario: str) -> list[bytes]:
    text = (FIXTURES / provider / f"{scenario}.stream.txt").read_text()
    return [block.encode() + b"\n\n" for block in text.split("\n\n") if block.strip()]


def _path(provider: str, stream: bool = False) -> str:
    paths = BACKENDS[provider]["paths"]
    return str(paths.get("chat_stream", paths["chat"]) if stream else paths["chat"])


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture(autouse=True)
def _fresh(fake: FakeUpstream) -> None:
    fake.clear()


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    model_list = [
        {
            "model_name": f"{name}-model",
            "litellm_params": {
                "model": spec["model"],
                "api_base": fake.url + spec.get("api_base_suffix", ""),
                "api_key": "sk-upstream",
            },
        }
        for name, spec in BACKENDS.items()
    ]
    with running_gateway(tmp_path_factory.mktemp("family"), {"model_list": model_list}) as server:
        yield server


@pytest.fixture
def client(gateway: GatewayServer) -> openai.OpenAI:
    return openai_client(gateway.v1, "unused")


@pytest.mark.parametrize("provider", OVERLAYS)
def test_chat(provider: str, fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.add("POST", _path(provider), json=_fixture_json(provider, "simple"))
    answer = client.chat.completions.create(
        model=f"{provider}-model", messages=[{"role": "user", "content": "Say hello in one short sentence."}]
    )
    assert answer.choices[0].message.content == "Hello! It's nice to meet you."
    assert answer.choices[0].finish_reason == "stop"
    sent = fake.last
    assert sent.path == _path(provider)
    assert sent.json["model"] == "test-model"
    assert sent.headers["authorization"] == "Bearer sk-upstream"


@pytest.mark.parametrize("provider", OVERLAYS)
def test_stream(provider: str, fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.add("POST", _path(provider, stream=True), stream=_fixture_events(provider, "stream_text"))
    chunks = list(
        client.chat.completions.create(
            model=f"{provider}-model",
            messages=[{"role": "user", "content": "Say hello in one short sentence."}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello! It's nice to meet you."
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)
    usage = [c.usage for c in chunks if c.usage is not None]
    assert usage and usage[-1].completion_tokens == 9
    assert fake.last.json["stream"] is True


@pytest.mark.parametrize("provider", REASONING_FIELD)
def test_reasoning_field_becomes_reasoning_content(
    provider: str, fake: FakeUpstream, client: openai.OpenAI
) -> None:
    upstream = _fixture_json(provider, "reasoning")
    assert upstream["choices"][0]["message"]["reasoning"] == THOUGHT  # the upstream's own field name
    fake.add("POST", _path(provider), json=upstream)
    answer = client.chat.completions.create(
        model=f"{provider}-model",
        messages=[{"role": "user", "content": "Is 221 a prime number?"}],
        reasoning_effort="medium",
    )
    message = answer.choices[0].message.model_dump()
    assert message["reasoning_content"] == THOUGHT
    assert "reasoning" not in message
    assert message["content"] == "No. 221 = 13 x 17, so it is not prime."


@pytest.mark.parametrize("provider", REASONING_FIELD)
def test_streamed_reasoning_field_becomes_reasoning_content(
    provider: str, fake: FakeUpstream, client: openai.OpenAI
) -> None:
    fake.add("POST", _path(provider, stream=True), stream=_fixture_events(provider, "stream_reasoning"))
    chunks = list(
        client.chat.completions.create(
            model=f"{provider}-model",
            messages=[{"role": "user", "content": "Is 221 a prime number?"}],
            reasoning_effort="medium",
            stream=True,
        )
    )
    deltas = [c.choices[0].delta.model_dump() for c in chunks if c.choices]
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == THOUGHT
    assert not any("reasoning" in d for d in deltas)
    assert "".join(d.get("content") or "" for d in deltas) == "No. 221 = 13 x 17, so it is not prime."


def test_openrouter_gets_its_reasoning_object(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.add("POST", _path("openrouter"), json=_fixture_json("openrouter", "reasoning"))
    client.chat.completions.create(
        model="openrouter-model",
        messages=[{"role": "user", "content": "Is 221 a prime number?"}],
        reasoning_effort="high",
    )
    assert fake.last.json["reasoning"] == {"effort": "high"}
    assert "reasoning_effort" not in fake.last.json


def test_tgi_native_chat(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.add("POST", "/generate", json=_fixture_json("tgi_native", "system"))
    answer = client.chat.completions.create(
        model="tgi_native-model",
        messages=[
            {"role": "system", "content": "You are a pirate. Answer in one sentence."},
            {"role": "user", "content": "Where is the treasure?"},
        ],
        max_tokens=64,
    )
    assert (
        answer.choices[0].message.content == "Arr, the treasure be buried under the old palm on Skull Island!"
    )
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is None  # no prompt count without decoder_input_details (see below)
    sent = fake.last.json
    assert sent["inputs"] == (
        "system: You are a pirate. Answer in one sentence.\nuser: Where is the treasure?\nassistant:"
    )
    assert sent["parameters"]["max_new_tokens"] == 64
    assert sent["parameters"]["details"] is True


def test_tgi_native_answer_without_a_prompt_count_has_no_partial_usage(
    gateway: GatewayServer, fake: FakeUpstream
) -> None:
    # /generate counts the prompt only with decoder_input_details; a usage without prompt_tokens and
    # total_tokens is not the openai SDK's CompletionUsage, so there is none
    fake.add("POST", "/generate", json=_fixture_json("tgi_native", "simple"))
    answer = sdk_types.post(
        gateway.v1 + "/chat/completions",
        json={"model": "tgi_native-model", "messages": [{"role": "user", "content": "Hi"}]},
    )
    assert answer.status_code == 200 and "usage" not in answer.json()
    assert sdk_types.problems(answer) == []


def test_a_service_tier_openai_does_not_know_is_left_out(gateway: GatewayServer, fake: FakeUpstream) -> None:
    upstream = _fixture_json("groq", "simple")
    assert upstream["service_tier"] == "on_demand"  # Groq's own tier; the SDK's Literal refuses it
    fake.add("POST", _path("groq"), json=upstream)
    answer = sdk_types.post(
        gateway.v1 + "/chat/completions",
        json={"model": "groq-model", "messages": [{"role": "user", "content": "Hi"}]},
    )
    assert answer.status_code == 200 and "service_tier" not in answer.json()
    assert sdk_types.problems(answer) == []
    fake.add("POST", _path("vllm"), json={**_fixture_json("vllm", "simple"), "service_tier": "default"})
    kept = sdk_types.post(
        gateway.v1 + "/chat/completions",
        json={"model": "vllm-model", "messages": [{"role": "user", "content": "Hi"}]},
    )
    assert kept.json()["service_tier"] == "default"  # one of OpenAI's values goes on


@pytest.mark.parametrize(
    ("provider", "said"),
    [
        ("llama_cpp", "KV cache is full"),
        ("tgi", "CUDA out of memory"),
        ("localai", "error reading from server"),
    ],
)
def test_an_in_band_error_of_a_passthrough_stream_is_an_openai_error_event(
    gateway: GatewayServer, fake: FakeUpstream, provider: str, said: str
) -> None:
    # llama.cpp and LocalAI send {"error": {"code": 500, ...}} (the SDK's ErrorObject has a string code),
    # TGI {"error": "text", "error_type": ...}: each is sent on as Turnout's own error event
    fake.add("POST", _path(provider, stream=True), stream=_fixture_events(provider, "error_midstream"))
    answer = sdk_types.post(
        gateway.v1 + "/chat/completions",
        json={"model": f"{provider}-model", "messages": [{"role": "user", "content": "Hi"}], "stream": True},
    )
    events = sse_events(answer.content)
    error = events[-1]["error"]
    assert set(error) == {"message", "type", "param", "code"} and said in error["message"]
    assert error["message"].startswith(f"{provider} (test-model) reported an error mid-stream: ")
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1]) == "Hello! It's"
    assert sdk_types.problems(answer) == []


def test_tgi_native_stream(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.add("POST", "/generate_stream", stream=_fixture_events("tgi_native", "stream_text"))
    chunks = list(
        client.chat.completions.create(
            model="tgi_native-model",
            messages=[{"role": "user", "content": "Say hello in one short sentence."}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello! It's nice to meet you."  # the special </s> token is not sent
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = [c.usage for c in chunks if c.usage is not None]
    assert usage and usage[-1].prompt_tokens == 16
    assert fake.last.path == "/generate_stream"


def test_tgi_native_refuses_tools(gateway: GatewayServer, fake: FakeUpstream, client: openai.OpenAI) -> None:
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="tgi_native-model", messages=[{"role": "user", "content": "Weather?"}], tools=[tool]
        )
    assert "tools" in str(caught.value)
    assert not [r for r in fake.requests if r.method == "POST"]
