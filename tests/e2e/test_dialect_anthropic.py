"""The Anthropic Messages dialect end to end: the official `anthropic` SDK -> Turnout -> three backends.

The SDK talks to `/v1/messages` as it would to Anthropic; behind the gateway a fake answers as Ollama,
an OpenAI-compatible server or the Gemini API, with the golden fixtures. Each test checks what the SDK
made of the answer and what reached the backend.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import pytest

from tests.e2e.conftest import FIXTURES, golden_json
from tests.fakes import FakeUpstream
from tests.golden.test_golden import PNG
from tests.support import GatewayServer, running_gateway, sdk_types
from tests.support.sdk_types import anthropic_client

KEY = "sk-gateway-master"
WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "Get the current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}
ASK_WEATHER: Any = [{"role": "user", "content": "What's the weather in Paris?"}]


@dataclass(frozen=True)
class Backend:
    name: str  # the golden fixture folder
    model: str  # the LiteLLM model string
    suffix: str  # api_base suffix
    chat: str  # where the fake answers
    chat_stream: str

    @property
    def alias(self) -> str:
        return f"{self.name}-claude"

    def answer(self, fake: FakeUpstream, scenario: str) -> dict[str, Any]:
        payload = golden_json(self.name, f"{scenario}.response.json")
        fake.add("POST", self.chat, json=payload)
        return payload

    def stream(self, fake: FakeUpstream, scenario: str) -> None:
        text = (FIXTURES / self.name / f"{scenario}.stream.txt").read_text()
        fake.add("POST", self.chat_stream, stream=text.splitlines(keepends=True))


OLLAMA = Backend("ollama", "ollama/test-model", "", "/api/chat", "/api/chat")
OPENAI = Backend("openai", "openai/test-model", "/v1", "/v1/chat/completions", "/v1/chat/completions")
GEMINI = Backend(
    "gemini",
    "gemini/test-model",
    "/v1beta",
    "/v1beta/models/test-model:generateContent",
    "/v1beta/models/test-model:streamGenerateContent",
)
BACKENDS = [OLLAMA, OPENAI, GEMINI]


def _config(upstream: str, **top: Any) -> dict[str, Any]:
    return {
        "model_list": [
            {
                "model_name": b.alias,
                "litellm_params": {"model": b.model, "api_base": upstream + b.suffix, "api_key": "up-key"},
            }
            for b in BACKENDS
        ],
        **top,
    }


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    config = _config(fake.url, general_settings={"master_key": KEY})
    with running_gateway(tmp_path_factory.mktemp("anthropic-dialect"), config) as server:
        yield server


@pytest.fixture
def claude(gateway: GatewayServer) -> anthropic.Anthropic:
    return anthropic_client(gateway.url, KEY)


@pytest.fixture(params=BACKENDS, ids=lambda b: b.name)
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    return chosen


def _sent(fake: FakeUpstream) -> dict[str, Any]:
    body: dict[str, Any] = next(r for r in reversed(fake.requests) if r.method == "POST").json
    return body


def _expected_text(backend: Backend, scenario: str) -> str:
    payload = golden_json(backend.name, f"{scenario}.response.json")
    if backend is OLLAMA:
        return str(payload["message"]["content"])
    if backend is OPENAI:
        return str(payload["choices"][0]["message"]["content"])
    parts = payload["candidates"][0]["content"]["parts"]
    return "".join(p["text"] for p in parts if "text" in p and not p.get("thought"))


# ---- text ------------------------------------------------------------------------------------------


def test_text(claude: anthropic.Anthropic, fake: FakeUpstream, backend: Backend) -> None:
    backend.answer(fake, "simple")
    message = claude.messages.create(
        model=backend.alias,
        max_tokens=256,
        system="Be brief.",
        messages=[{"role": "user", "content": "Say hello."}],
        stop_sequences=["END"],
        metadata={"user_id": "user-7"},
        extra_body={"temperature": 0.2},  # this SDK version no longer lists sampling parameters
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.model == backend.alias  # the name the client asked for
    assert message.id.startswith("msg_")
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == _expected_text(backend, "simple")  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    sent = json.dumps(_sent(fake))
    assert "Be brief." in sent and "Say hello." in sent and "END" in sent


def test_system_blocks_are_separated_by_a_blank_line(claude: anthropic.Anthropic, fake: FakeUpstream) -> None:
    # Claude Code sends its system prompt as several text blocks (with cache_control); a backend that
    # takes one system text must not get them glued ("...terse.Answer in French.")
    system: Any = [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": "Answer in French.", "cache_control": {"type": "ephemeral"}},
    ]
    OLLAMA.answer(fake, "simple")
    claude.messages.create(model=OLLAMA.alias, max_tokens=8, system=system, messages=ASK_WEATHER)
    assert _sent(fake)["messages"][0] == {"role": "system", "content": "You are terse.\n\nAnswer in French."}
    OPENAI.answer(fake, "simple")  # blocks stay blocks (cache_control kept), the separator inside them
    claude.messages.create(model=OPENAI.alias, max_tokens=8, system=system, messages=ASK_WEATHER)
    assert _sent(fake)["messages"][0]["content"] == [
        {"type": "text", "text": "You are terse.\n\n"},
        {"type": "text", "text": "Answer in French.", "cache_control": {"type": "ephemeral"}},
    ]


def test_text_canonical_request(claude: anthropic.Anthropic, fake: FakeUpstream) -> None:
    """What the OpenAI-compatible backend receives is the canonical request, nearly unchanged."""
    OPENAI.answer(fake, "simple")
    claude.messages.create(
        model=OPENAI.alias,
        max_tokens=256,
        system=[{"type": "text", "text": "Be brief."}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "Say hello."}]}],
        stop_sequences=["END"],
        metadata={"user_id": "user-7"},
        output_config={"effort": "max", "format": {"type": "json_schema", "schema": {"type": "object"}}},
        extra_body={"top_p": 0.9, "top_k": 40},
    )
    assert _sent(fake) == {
        "model": "test-model",
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "content": [{"type": "text", "text": "Say hello."}]},
        ],
        "max_tokens": 256,
        "stop": ["END"],
        "top_p": 0.9,
        "top_k": 40,
        "user": "user-7",
        "reasoning_effort": "high",
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": {"type": "object"}},
        },
    }


def test_stream_text(claude: anthropic.Anthropic, fake: FakeUpstream, backend: Backend) -> None:
    backend.stream(fake, "stream_text")
    with claude.messages.stream(
        model=backend.alias, max_tokens=256, messages=[{"role": "user", "content": "Count to five."}]
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_start" in kinds and "content_block_stop" in kinds and "message_delta" in kinds
    assert "text" in kinds  # the SDK's own event for each text_delta
    assert [block.type for block in final.content] == ["text"]
    assert final.content[0].text  # type: ignore[union-attr]
    assert final.model == backend.alias
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0 and final.usage.input_tokens > 0  # from the usage chunk
    assert _sent(fake).get("stream") is True or backend is GEMINI  # Gemini streams by URL


def test_raw_stream_event_order(gateway: GatewayServer, fake: FakeUpstream) -> None:
    """Exactly Anthropic's sequence, with increasing block indices: reasoning block, then text."""
    OPENAI.stream(fake, "stream_reasoning")
    body = {"model": OPENAI.alias, "max_tokens": 64, "stream": True, "messages": ASK_WEATHER}
    answer = sdk_types.post(f"{gateway.url}/v1/messages", json=body, headers={"x-api-key": KEY}, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = [
        (
            block.split("\n")[0].removeprefix("event: "),
            json.loads(block.split("\n")[1].removeprefix("data: ")),
        )
        for block in answer.text.strip().split("\n\n")
    ]
    assert all(name == data["type"] for name, data in events)
    shape = [(name, data.get("index")) for name, data in events if name != "content_block_delta"]
    assert shape == [
        ("message_start", None),
        ("ping", None),
        ("content_block_start", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_stop", 1),
        ("message_delta", None),
        ("message_stop", None),
    ]
    kinds = {(data["index"], data["delta"]["type"]) for name, data in events if name == "content_block_delta"}
    assert kinds == {(0, "thinking_delta"), (1, "text_delta")}
    assert _sent(fake)["stream_options"] == {"include_usage": True}


# ---- tools -----------------------------------------------------------------------------------------


def test_tools_round_trip(claude: anthropic.Anthropic, fake: FakeUpstream, backend: Backend) -> None:
    backend.answer(fake, "tools")
    first = claude.messages.create(
        model=backend.alias,
        max_tokens=256,
        messages=ASK_WEATHER,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
    )
    assert first.stop_reason == "tool_use"
    use = next(block for block in first.content if block.type == "tool_use")
    assert use.name == "get_weather" and use.input == {"location": "Paris, France"}
    sent = _sent(fake)
    assert "get_weather" in json.dumps(sent)

    backend.answer(fake, "tool_results")
    second = claude.messages.create(
        model=backend.alias,
        max_tokens=256,
        tools=[WEATHER_TOOL],
        messages=[
            *ASK_WEATHER,
            {"role": "assistant", "content": first.content},  # type: ignore[typeddict-item]
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18°C, sunny"}],
            },
        ],
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text" and second.content[0].text
    assert "18°C, sunny" in json.dumps(_sent(fake), ensure_ascii=False)


def test_tools_canonical_request(claude: anthropic.Anthropic, fake: FakeUpstream) -> None:
    """tool_use, tool_result (with is_error) and tool_choice as the canonical format says them."""
    OPENAI.answer(fake, "tool_results")
    claude.messages.create(
        model=OPENAI.alias,
        max_tokens=256,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        messages=[
            *ASK_WEATHER,
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"location": "Paris"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "timeout", "is_error": True},
                    {"type": "text", "text": "Try again?"},
                ],
            },
        ],
    )
    sent = _sent(fake)
    assert sent["messages"][1:] == [
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "Error: timeout"},
        {"role": "user", "content": [{"type": "text", "text": "Try again?"}]},
    ]
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": WEATHER_TOOL["description"],
                "parameters": WEATHER_TOOL["input_schema"],
            },
        }
    ]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["parallel_tool_calls"] is False


def test_tools_streamed(claude: anthropic.Anthropic, fake: FakeUpstream, backend: Backend) -> None:
    backend.stream(fake, "stream_tools")
    with claude.messages.stream(
        model=backend.alias, max_tokens=256, messages=ASK_WEATHER, tools=[WEATHER_TOOL]
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    uses = [block for block in final.content if block.type == "tool_use"]
    assert len(uses) == 1 and uses[0].name == "get_weather"
    assert uses[0].input == {"location": "Paris, France"}  # input_json_delta assembled by the SDK
    assert final.stop_reason == "tool_use"
    assert "input_json" in kinds


# ---- thinking and images ---------------------------------------------------------------------------


def test_thinking(claude: anthropic.Anthropic, fake: FakeUpstream, backend: Backend) -> None:
    backend.answer(fake, "reasoning")
    message = claude.messages.create(
        model=backend.alias,
        max_tokens=20000,
        thinking={"type": "enabled", "budget_tokens": 8000},
        messages=[{"role": "user", "content": "Is 221 prime?"}],
    )
    assert [block.type for block in message.content] == ["thinking", "text"]
    thinking = message.content[0]
    assert thinking.type == "thinking" and "13" in thinking.thinking
    assert thinking.signature == ""  # plain reasoning text: nothing signed it
    assert message.content[1].text == _expected_text(backend, "reasoning")  # type: ignore[union-attr]
    if backend is OPENAI:
        assert _sent(fake)["reasoning_effort"] == "medium"  # 8000 budget tokens


def test_thinking_stream_and_send_back(claude: anthropic.Anthropic, fake: FakeUpstream) -> None:
    OLLAMA.stream(fake, "stream_reasoning")
    with claude.messages.stream(
        model=OLLAMA.alias,
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Is 221 prime?"}],
    ) as stream:
        final = stream.get_final_message()
    assert [block.type for block in final.content] == ["thinking", "text"]
    # the unsigned thinking block goes back as reasoning text only, never as a signed block
    OPENAI.answer(fake, "simple")
    claude.messages.create(
        model=OPENAI.alias,
        max_tokens=64,
        messages=[
            {"role": "user", "content": "Is 221 prime?"},
            {"role": "assistant", "content": final.content},  # type: ignore[typeddict-item]
            {"role": "user", "content": "Thanks"},
        ],
    )
    assistant = _sent(fake)["messages"][1]
    assert assistant["reasoning_content"] == final.content[0].thinking  # type: ignore[union-attr]
    assert "thinking_blocks" not in assistant


def test_image(claude: anthropic.Anthropic, fake: FakeUpstream, backend: Backend) -> None:
    backend.answer(fake, "vision")
    data = base64.b64encode(PNG).decode()
    message = claude.messages.create(
        model=backend.alias,
        max_tokens=64,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}},
                    {"type": "text", "text": "What is in this image?"},
                ],
            }
        ],
    )
    assert message.content[0].type == "text"
    sent = json.dumps(_sent(fake))
    assert data in sent  # Ollama `images`, OpenAI data: URL, Gemini inlineData
    if backend is OPENAI:
        part = _sent(fake)["messages"][0]["content"][0]
        assert part == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}


def test_image_url_source(claude: anthropic.Anthropic, fake: FakeUpstream) -> None:
    OPENAI.answer(fake, "vision")
    claude.messages.create(
        model=OPENAI.alias,
        max_tokens=64,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}
                ],
            }
        ],
    )
    part = _sent(fake)["messages"][0]["content"][0]
    assert part == {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}


# ---- errors ----------------------------------------------------------------------------------------


def test_unknown_model(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude.messages.create(model="no-such-model", max_tokens=8, messages=ASK_WEATHER)
    assert caught.value.status_code == 404
    body: Any = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    assert "no-such-model" in body["error"]["message"]


def test_wrong_key(gateway: GatewayServer) -> None:
    wrong = anthropic_client(gateway.url, "sk-wrong")
    with pytest.raises(anthropic.AuthenticationError) as caught:
        wrong.messages.create(model=OPENAI.alias, max_tokens=8, messages=ASK_WEATHER)
    body: Any = caught.value.body
    assert caught.value.status_code == 401
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error"


def test_bearer_key(gateway: GatewayServer, fake: FakeUpstream) -> None:
    OPENAI.answer(fake, "simple")
    body = {"model": OPENAI.alias, "max_tokens": 8, "messages": ASK_WEATHER}
    answer = sdk_types.post(
        f"{gateway.url}/messages", json=body, headers={"authorization": f"Bearer {KEY}"}, timeout=10
    )
    assert answer.status_code == 200 and answer.json()["type"] == "message"


def test_unsupported_block_is_refused(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(
            model=OPENAI.alias,
            max_tokens=8,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "document",
                            "source": {"type": "text", "media_type": "text/plain", "data": "x"},
                        }
                    ],
                }
            ],
        )
    body: Any = caught.value.body
    assert body["error"]["type"] == "invalid_request_error" and "content" in body["error"]["message"]


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        (400, "false"),
        (401, "false"),
        (403, "false"),
        (404, "false"),
        (413, "false"),
        (422, "false"),
        (408, None),
        (409, None),
        (429, None),
        (500, None),
        (503, None),
    ],
)
def test_errors_tell_anthropic_clients_whether_to_retry(
    gateway: GatewayServer, fake: FakeUpstream, status: int, retry: str | None
) -> None:
    # Anthropic's clients (the SDKs, Claude Code) obey x-should-retry; without it Claude Code retries a
    # 401/403/404 for minutes. Statuses a retry may cure keep the clients' own rule (no header).
    fake.add("POST", OPENAI.chat, status=status, json={"error": {"message": "no", "type": "x"}})
    body = {"model": OPENAI.alias, "max_tokens": 8, "messages": ASK_WEATHER}
    answer = sdk_types.post(f"{gateway.url}/v1/messages", json=body, headers={"x-api-key": KEY})
    assert answer.status_code == status
    assert answer.headers.get("x-should-retry") == retry


def test_gateway_refusals_tell_anthropic_clients_not_to_retry(gateway: GatewayServer) -> None:
    body = {"model": OPENAI.alias, "max_tokens": 8, "messages": ASK_WEATHER}
    wrong_key = sdk_types.post(f"{gateway.url}/v1/messages", json=body, headers={"x-api-key": "sk-wrong"})
    unknown = sdk_types.post(
        f"{gateway.url}/v1/messages", json={**body, "model": "nobody"}, headers={"x-api-key": KEY}
    )
    assert (wrong_key.status_code, unknown.status_code) == (401, 404)
    assert wrong_key.headers["x-should-retry"] == unknown.headers["x-should-retry"] == "false"


def test_a_413_is_an_error_type_the_sdk_knows(gateway: GatewayServer, fake: FakeUpstream) -> None:
    # Anthropic documents request_too_large, but the anthropic SDK's ErrorObject union has no such variant
    fake.add("POST", OPENAI.chat, status=413, json={"error": {"message": "too big", "type": "x"}})
    body = {"model": OPENAI.alias, "max_tokens": 8, "messages": ASK_WEATHER}
    answer = sdk_types.post(f"{gateway.url}/v1/messages", json=body, headers={"x-api-key": KEY})
    assert answer.status_code == 413 and answer.json()["error"]["type"] == "invalid_request_error"
    assert sdk_types.problems(answer) == []


def test_upstream_rate_limit(claude: anthropic.Anthropic, fake: FakeUpstream) -> None:
    error = golden_json("openai", "error_429.error.json")
    fake.add("POST", OPENAI.chat, status=429, json=error["body"])
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(model=OPENAI.alias, max_tokens=8, messages=ASK_WEATHER)
    body: Any = caught.value.body
    assert body["error"]["type"] == "rate_limit_error"


def test_error_mid_stream(claude: anthropic.Anthropic, fake: FakeUpstream) -> None:
    OPENAI.stream(fake, "error_midstream")
    stream = claude.messages.stream(model=OPENAI.alias, max_tokens=8, messages=ASK_WEATHER)
    with pytest.raises(anthropic.APIStatusError) as caught, stream as events:  # raised on `event: error`
        for _ in events:
            pass
    body: Any = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "api_error"
    assert "error while processing" in body["error"]["message"]


# ---- count_tokens ----------------------------------------------------------------------------------


def test_count_tokens(claude: anthropic.Anthropic) -> None:
    messages: Any = [{"role": "user", "content": "Hello there, how are you?"}]
    counted = claude.messages.count_tokens(model=OPENAI.alias, system="Be brief.", messages=messages)
    # ceil(characters / 4) over the system text and every key and string of the messages
    characters = sum(len(s) for s in ("Be brief.", "role", "user", "content", messages[0]["content"]))
    assert counted.input_tokens == math.ceil(characters / 4)
    with_tools = claude.messages.count_tokens(
        model=OPENAI.alias, system="Be brief.", messages=messages, tools=[WEATHER_TOOL]
    )
    assert with_tools.input_tokens > counted.input_tokens + 10  # tool definitions count too
