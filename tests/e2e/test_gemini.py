"""The Gemini API mapping end to end: the official openai SDK -> Turnout -> a fake speaking Gemini.

The fake answers with the golden fixtures (tests/golden/fixtures/gemini/) or with payloads built here in
the same shape; each test checks what reached the fake as well as what the client got back.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import assert_error, golden_json
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway, sdk_types

ALIAS = "gemini-model"
REPLY = "No. 221 is not a prime number: 221 = 13 \N{MULTIPLICATION SIGN} 17."
CHAT = "/v1beta/models/gemini-x:generateContent"
STREAM = "/v1beta/models/gemini-x:streamGenerateContent"
FIXTURES = Path(__file__).resolve().parent.parent / "golden" / "fixtures" / "gemini"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="
)
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a place",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """A gateway with one alias served by the Gemini mapping (api_base written with /v1beta); it may fetch
    images from the fake, on loopback."""
    entry = {
        "model_name": ALIAS,
        "litellm_params": {"model": "gemini/gemini-x", "api_base": fake.url + "/v1beta", "api_key": "g-key"},
    }
    config = {"model_list": [entry]}
    with running_gateway(tmp_path_factory.mktemp("gemini"), config, image_fetch_allow="127.0.0.1") as server:
        yield server


def _answer(fake: FakeUpstream, scenario: str) -> dict[str, Any]:
    payload = golden_json("gemini", f"{scenario}.response.json")
    fake.add("POST", CHAT, json=payload)
    return payload


def _events(scenario: str) -> list[bytes]:
    text = (FIXTURES / f"{scenario}.stream.txt").read_text()
    return [block.encode() + b"\n\n" for block in text.split("\n\n") if block.strip()]


def _sent(fake: FakeUpstream) -> dict[str, Any]:
    body: dict[str, Any] = fake.last.json
    return body


def test_chat(client: openai.OpenAI, fake: FakeUpstream) -> None:
    _answer(fake, "simple")
    answer = client.chat.completions.create(
        model=ALIAS,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "user", "content": "Say hello."},
        ],
        temperature=0.3,
        max_tokens=20,
        stop="END",
    )
    assert answer.choices[0].message.content == "Hello there, it's nice to meet you!"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.total_tokens == 17
    sent = fake.last
    assert sent.headers["x-goog-api-key"] == "g-key"
    assert sent.path == CHAT and "alt" not in sent.query
    assert sent.json == {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}, {"text": "Say hello."}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"temperature": 0.3, "maxOutputTokens": 20, "stopSequences": ["END"]},
    }


def test_stream_with_usage(client: openai.OpenAI, fake: FakeUpstream) -> None:
    # Google separates SSE events with CRLF; the golden fixture uses LF, so both framings are exercised
    events = [e.replace(b"\n\n", b"\r\n\r\n") for e in _events("stream_text")]
    fake.add("POST", STREAM, stream=events)
    chunks = list(
        client.chat.completions.create(
            model=ALIAS,
            messages=[{"role": "user", "content": "Say hello."}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert fake.last.query == {"alt": "sse"}
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello there, it's nice to meet you!"
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (8, 9)


def test_tool_round_trip(client: openai.OpenAI, fake: FakeUpstream) -> None:
    _answer(fake, "tools")
    question: Any = {"role": "user", "content": "Weather in Paris?"}
    first = client.chat.completions.create(
        model=ALIAS, messages=[question], tools=[WEATHER_TOOL], tool_choice="required"
    )
    declaration = _sent(fake)["tools"][0]["functionDeclarations"][0]
    assert declaration["parameters"] == {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    }
    assert _sent(fake)["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.id.startswith("call_")
    assert json.loads(call.function.arguments) == {"location": "Paris, France"}

    _answer(fake, "tool_results")
    history: list[Any] = [
        question,
        choice.message.model_dump(exclude_none=True),  # keeps extra_content (the thought signature)
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 18, "sky": "sunny"}'},
        {"role": "tool", "tool_call_id": call.id, "content": "not JSON"},
    ]
    second = client.chat.completions.create(model=ALIAS, messages=history, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content is not None and "sunny" in second.choices[0].message.content
    model_turn, results = _sent(fake)["contents"][1:]
    signature = golden_json("gemini", "tools.response.json")["candidates"][0]["content"]["parts"][0]
    assert model_turn == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "get_weather", "args": {"location": "Paris, France"}},
                "thoughtSignature": signature["thoughtSignature"],
            }
        ],
    }
    assert results == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp_c": 18, "sky": "sunny"}}},
            {"functionResponse": {"name": "get_weather", "response": {"content": "not JSON"}}},
        ],
    }


def test_streamed_tool_call(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", STREAM, stream=_events("stream_tools"))
    chunks = list(
        client.chat.completions.create(
            model=ALIAS,
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=[WEATHER_TOOL],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            stream=True,
        )
    )
    assert _sent(fake)["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }
    assert all(c.choices[0].delta.content is None for c in chunks if c.choices)  # null, as OpenAI sends
    deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert [d.index for d in deltas] == [0]
    assert deltas[0].function is not None and deltas[0].function.name == "get_weather"
    assert json.loads(deltas[0].function.arguments or "") == {"location": "Paris, France"}
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]
    assert all(c.usage is None for c in chunks)  # include_usage was not asked for


def test_image(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("GET", "/cat.png", body=PNG, content_type="image/png")
    _answer(fake, "vision")
    client.chat.completions.create(
        model=ALIAS,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": fake.url + "/cat.png"}},
                ],
            }
        ],
    )
    parts = _sent(fake)["contents"][0]["parts"]
    assert parts == [
        {"text": "What is this?"},
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}},
    ]


def test_reasoning(client: openai.OpenAI, fake: FakeUpstream) -> None:
    _answer(fake, "reasoning")
    answer = client.chat.completions.create(
        model=ALIAS, messages=[{"role": "user", "content": "Is 221 prime?"}], reasoning_effort="high"
    )
    assert _sent(fake)["generationConfig"] == {
        "thinkingConfig": {"thinkingBudget": 24576, "includeThoughts": True}
    }
    message = answer.choices[0].message.model_dump()
    assert message["content"] == REPLY
    assert message["reasoning_content"].startswith("**Checking divisibility**")
    assert answer.usage is not None and answer.usage.completion_tokens_details is not None
    assert answer.usage.completion_tokens_details.reasoning_tokens == 412
    assert answer.usage.completion_tokens == 17 + 412

    _answer(fake, "simple")
    client.chat.completions.create(
        model=ALIAS, messages=[{"role": "user", "content": "Hi"}], extra_body={"think": False}
    )
    assert _sent(fake)["generationConfig"] == {"thinkingConfig": {"thinkingBudget": 0}}


def test_streamed_reasoning(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", STREAM, stream=_events("stream_reasoning"))
    chunks = list(
        client.chat.completions.create(
            model=ALIAS,
            messages=[{"role": "user", "content": "Is 221 prime?"}],
            reasoning_effort="low",
            stream=True,
        )
    )
    assert _sent(fake)["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 1024,
        "includeThoughts": True,
    }
    deltas = [c.choices[0].delta.model_dump() for c in chunks if c.choices]
    reasoning = "".join(d.get("reasoning_content") or "" for d in deltas)
    content = "".join(d.get("content") or "" for d in deltas)
    assert reasoning.startswith("**Checking divisibility**") and reasoning.endswith("composite.\n")
    assert content == REPLY


def test_json_schema_is_stripped_to_the_supported_subset(client: openai.OpenAI, fake: FakeUpstream) -> None:
    _answer(fake, "json_schema")
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city"},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            "address": {
                "type": "object",
                "properties": {"street": {"type": "string"}},
                "additionalProperties": False,
            },
        },
        "required": ["city"],
        "additionalProperties": False,
    }
    answer = client.chat.completions.create(
        model=ALIAS,
        messages=[{"role": "user", "content": "Describe Paris."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "city", "strict": True, "schema": schema},
        },
    )
    assert json.loads(answer.choices[0].message.content or "")["city"] == "Paris"
    assert _sent(fake)["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "address": {"type": "object", "properties": {"street": {"type": "string"}}},
            },
            "required": ["city"],
        },
    }


def _blocked() -> dict[str, Any]:
    return {
        "promptFeedback": {
            "blockReason": "SAFETY",
            "safetyRatings": [
                {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
                {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
                {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"},
            ],
        },
        "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12},
        "modelVersion": "gemini-x",
        "responseId": "blocked",
    }


def test_safety_blocked_prompt_is_a_clear_400(http: httpx.Client, fake: FakeUpstream) -> None:
    fake.add("POST", CHAT, json=_blocked())
    answer = http.post(
        "/v1/chat/completions", json={"model": ALIAS, "messages": [{"role": "user", "content": "x"}]}
    )
    error = assert_error(answer, 400, code="content_filter")
    assert "blocked by its safety filters (blockReason SAFETY)" in error["message"]
    assert error["message"].startswith("gemini (gemini-x)")


def test_safety_blocked_prompt_in_a_stream(http: httpx.Client, fake: FakeUpstream) -> None:
    """Blocked before anything reached the client: the same clear 400 as without a stream."""
    fake.add("POST", STREAM, stream=[b"data: " + json.dumps(_blocked()).encode() + b"\r\n\r\n"])
    request = {"model": ALIAS, "messages": [{"role": "user", "content": "x"}], "stream": True}
    answer = http.post("/v1/chat/completions", json=request)
    error = assert_error(answer, 400, code="content_filter")
    assert "blockReason SAFETY" in error["message"]


def test_rate_limited(client: openai.OpenAI, fake: FakeUpstream) -> None:
    error = golden_json("gemini", "error_429.error.json")
    fake.add("POST", CHAT, status=429, json=error["body"])
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": "Hi"}])
    body: Any = caught.value.body
    assert body["code"] == "RESOURCE_EXHAUSTED"
    assert "Please retry in 28.135353458s" in body["message"]


def test_discovery(gateway: GatewayServer, fake: FakeUpstream) -> None:
    models = {
        "models": [
            {
                "name": "models/gemini-x",
                "displayName": "Gemini X",
                "supportedGenerationMethods": ["generateContent"],
            },
            {
                "name": "models/gemini-y",
                "displayName": "Gemini Y",
                "supportedGenerationMethods": ["generateContent"],
            },
        ]
    }
    fake.add("GET", "/v1beta/models", json=models)
    listed = sdk_types.get(gateway.v1 + "/models", params={"include_discovered": "true"}).json()["data"]
    by_id = {m["id"]: m for m in listed}
    assert by_id[ALIAS]["available"] is True
    assert by_id["gemini-y"]["discovered"] is True
    assert fake.last.headers["x-goog-api-key"] == "g-key"
