"""Anthropic's Messages API end to end: the openai SDK -> Turnout -> a fake upstream speaking Anthropic.

Each test asserts what Anthropic was sent as well as what the client got back. Answers reuse the golden
fixtures in tests/golden/fixtures/anthropic/ where one fits, and are built inline otherwise.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.e2e.conftest import FIXTURES, QUESTION, WEATHER_TOOL
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway

PATH = "/v1/messages"
ALIAS = "claude"
SIGNATURE = "EqQBCgIYAhIMsigned-by-anthropic=="
TOOLS: Any = [WEATHER_TOOL]


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """`claude` reaches the fake at its root; `claude-v1` is the same with api_base written with /v1."""
    config = {
        "model_list": [
            {
                "model_name": ALIAS,
                "litellm_params": {
                    "model": "anthropic/claude-x",
                    "api_base": fake.url,
                    "api_key": "sk-ant-test",
                },
            },
            {
                "model_name": "claude-v1",
                "litellm_params": {"model": "anthropic/claude-x", "api_base": fake.url + "/v1/"},
            },
        ]
    }
    with running_gateway(tmp_path_factory.mktemp("anthropic"), config) as server:
        yield server


def _golden(name: str) -> Any:
    return json.loads((FIXTURES / "anthropic" / name).read_text())


def _golden_stream(scenario: str) -> list[bytes]:
    text = (FIXTURES / "anthropic" / f"{scenario}.stream.txt").read_text()
    return [event.encode() + b"\n\n" for event in text.split("\n\n") if event.strip()]


def _sse(*events: dict[str, Any]) -> list[bytes]:
    """Anthropic's event-typed SSE: the `event:` name is the payload's `type`."""
    return [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]


def _message(content: list[dict[str, Any]], stop_reason: str | None, **usage: int) -> dict[str, Any]:
    return {
        "id": "msg_e2e",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
    }


def _extra(model: Any, key: str) -> Any:
    return (model.model_extra or {}).get(key)


def test_chat(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", PATH, json=_golden("system.response.json"))
    answer = client.chat.completions.create(
        model=ALIAS,
        messages=[
            {"role": "system", "content": "You are a pirate."},
            {"role": "developer", "content": "One sentence."},
            {"role": "user", "content": "Where is the treasure?"},
        ],
        max_tokens=100,
        temperature=1.5,
        stop="END",
        user="user-7",
    )
    assert answer.id == "chatcmpl-msg_golden_system"
    assert (
        answer.choices[0].message.content == "Arr, the treasure be buried under the old palm on Skull Island!"
    )
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (
        27,
        21,
    )

    sent = fake.last
    assert sent.path == PATH
    assert sent.headers["x-api-key"] == "sk-ant-test"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.json == {
        "model": "claude-x",
        "system": "You are a pirate.\n\nOne sentence.",
        "messages": [{"role": "user", "content": "Where is the treasure?"}],
        "max_tokens": 100,
        "temperature": 1,  # clamped to Anthropic's 0..1
        "stop_sequences": ["END"],
        "metadata": {"user_id": "user-7"},
    }


def test_api_base_with_v1_and_default_max_tokens(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", PATH, json=_golden("simple.response.json"))
    client.chat.completions.create(model="claude-v1", messages=[{"role": "user", "content": "Hi"}])
    assert fake.last.path == PATH
    assert "x-api-key" not in fake.last.headers  # no key configured: the header is left out
    assert fake.last.json["max_tokens"] == 4096


def test_cached_tokens_are_counted_in_the_prompt(client: openai.OpenAI, fake: FakeUpstream) -> None:
    usage = {"cache_read_input_tokens": 2000, "cache_creation_input_tokens": 300}
    fake.add("POST", PATH, json=_message([{"type": "text", "text": "ok"}], "max_tokens", **usage))
    answer = client.chat.completions.create(model=ALIAS, messages=[QUESTION])
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (
        2310,
        5,
        2315,
    )
    assert answer.usage.prompt_tokens_details is not None
    assert answer.usage.prompt_tokens_details.cached_tokens == 2000
    assert _extra(answer.usage, "cache_creation_input_tokens") == 300


def test_stream_with_usage(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", PATH, stream=_golden_stream("stream_text"))
    chunks = list(
        client.chat.completions.create(
            model=ALIAS, messages=[QUESTION], stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == "Hello! It's nice to meet you."
    )
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (16, 12)
    assert {c.id for c in chunks} == {"chatcmpl-msg_golden_stream_text"}
    assert fake.last.json["stream"] is True


def test_stream_without_include_usage_has_no_usage_chunk(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", PATH, stream=_golden_stream("stream_text"))
    chunks = list(client.chat.completions.create(model=ALIAS, messages=[QUESTION], stream=True))
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)


def test_tool_call_round_trip(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", PATH, json=_golden("tools.response.json"))
    first = client.chat.completions.create(
        model=ALIAS,
        messages=[QUESTION],
        tools=TOOLS,
        tool_choice="required",
        parallel_tool_calls=False,
    )
    sent = fake.last.json
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a place",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        }
    ]
    assert sent["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "I'll check the current weather in Paris for you."
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert (call.id, call.function.name) == ("toolu_golden_weather", "get_weather")
    assert json.loads(call.function.arguments) == {"location": "Paris, France"}

    fake.add("POST", PATH, json=_golden("tool_results.response.json"))
    history: list[Any] = [
        QUESTION,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 18}'},
        {"role": "user", "content": "And tomorrow?"},
    ]
    second = client.chat.completions.create(
        model=ALIAS,
        messages=history,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    assert second.choices[0].finish_reason == "stop"
    sent = fake.last.json
    assert sent["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert sent["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "I'll check the current weather in Paris for you."},
                {
                    "type": "tool_use",
                    "id": call.id,
                    "name": "get_weather",
                    "input": {"location": "Paris, France"},
                },
            ],
        },
        {  # the tool result and the next user message are one user turn
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": call.id, "content": '{"temp_c": 18}'},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]


def _tool_block(index: int, tool_id: str, fragments: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "tool_use", "id": tool_id, "name": "get_weather", "input": {}},
        },
        *(
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "input_json_delta", "partial_json": f},
            }
            for f in fragments
        ),
        {"type": "content_block_stop", "index": index},
    ]


def test_streamed_tool_calls_are_assembled_by_the_client(client: openai.OpenAI, fake: FakeUpstream) -> None:
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": _message([], None)},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "Checking both."},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "ping"},
        *_tool_block(1, "toolu_paris", ["", '{"locat', 'ion": "Paris', ', France"}']),
        *_tool_block(2, "toolu_london", ['{"location": ', '"London, UK"}']),
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 60},
        },
        {"type": "message_stop"},
    ]
    fake.add("POST", PATH, stream=_sse(*events))
    calls: dict[int, dict[str, str]] = {}
    finishes = []
    for chunk in client.chat.completions.create(model=ALIAS, messages=[QUESTION], tools=TOOLS, stream=True):
        if not chunk.choices:
            continue
        finishes.append(chunk.choices[0].finish_reason)
        for delta in chunk.choices[0].delta.tool_calls or ():
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += delta.id or ""
            if delta.function:
                call["name"] += delta.function.name or ""
                call["arguments"] += delta.function.arguments or ""
    assert sorted(calls) == [0, 1]
    assert [(c["id"], c["name"]) for c in calls.values()] == [
        ("toolu_paris", "get_weather"),
        ("toolu_london", "get_weather"),
    ]
    assert [json.loads(c["arguments"]) for c in calls.values()] == [
        {"location": "Paris, France"},
        {"location": "London, UK"},
    ]
    assert [f for f in finishes if f] == ["tool_calls"]


def test_thinking_signature_survives_a_tool_use_turn(client: openai.OpenAI, fake: FakeUpstream) -> None:
    thinking = {
        "type": "thinking",
        "thinking": "The user wants Paris weather; call the tool.",
        "signature": SIGNATURE,
    }
    redacted = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"}
    tool_use = {
        "type": "tool_use",
        "id": "toolu_think",
        "name": "get_weather",
        "input": {"location": "Paris"},
    }
    fake.add("POST", PATH, json=_message([thinking, redacted, tool_use], "tool_use"))
    first = client.chat.completions.create(
        model=ALIAS, messages=[QUESTION], tools=TOOLS, reasoning_effort="high", max_tokens=1000
    )
    assert fake.last.json["thinking"] == {"type": "enabled", "budget_tokens": 16384}
    assert fake.last.json["max_tokens"] == 16384 + 1000  # the answer's tokens come on top of the budget
    message = first.choices[0].message
    assert _extra(message, "reasoning_content") == thinking["thinking"]
    assert _extra(message, "thinking_blocks") == [thinking, redacted]
    assert message.content is None

    fake.add("POST", PATH, json=_golden("tool_results.response.json"))
    history: list[Any] = [
        QUESTION,
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": "toolu_think", "content": "18C, sunny"},
    ]
    client.chat.completions.create(model=ALIAS, messages=history, tools=TOOLS, reasoning_effort="high")
    assistant = fake.last.json["messages"][1]
    assert assistant == {
        "role": "assistant",
        "content": [thinking, redacted, tool_use],
    }  # signed blocks first
    assert fake.last.json["messages"][2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_think", "content": "18C, sunny"}],
    }


def test_streamed_thinking_ends_with_the_signed_block(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", PATH, stream=_golden_stream("stream_reasoning"))
    chunks = list(
        client.chat.completions.create(
            model=ALIAS,
            messages=[{"role": "user", "content": "Is 221 prime?"}],
            stream=True,
            extra_body={"think": True},
        )
    )
    assert fake.last.json["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    reasoning = "".join(_extra(d, "reasoning_content") or "" for d in deltas)
    blocks = [b for d in deltas for b in _extra(d, "thinking_blocks") or ()]
    assert len(blocks) == 1 and blocks[0]["type"] == "thinking"
    assert blocks[0]["thinking"] == reasoning
    assert blocks[0]["signature"] == _golden_stream_signature()


def _golden_stream_signature() -> str:
    for event in _golden_stream("stream_reasoning"):
        payload = json.loads(event.decode().split("data: ", 1)[1])
        if payload.get("delta", {}).get("type") == "signature_delta":
            return str(payload["delta"]["signature"])
    raise AssertionError("the golden stream has no signature")


def test_images(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", PATH, json=_golden("vision.response.json"))
    png = base64.b64encode(b"\x89PNG fake").decode()
    client.chat.completions.create(
        model=ALIAS,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What are these?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"},
                    },
                ],
            }
        ],
    )
    assert fake.last.json["messages"][0]["content"] == [
        {"type": "text", "text": "What are these?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]
    assert not any(r.path == "/cat.jpg" for r in fake.requests)  # Anthropic fetches URLs itself


def test_overloaded_is_503(client: openai.OpenAI, fake: FakeUpstream) -> None:
    error = _golden("error_529.error.json")
    fake.add("POST", PATH, status=529, json=error["body"])
    with pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.create(model=ALIAS, messages=[QUESTION])
    assert raised.value.status_code == 503
    body: Any = raised.value.body
    assert body["code"] == "overloaded_error"
    assert body["message"] == "anthropic (claude-x) returned HTTP 529: Overloaded"


def test_json_mode_is_refused_not_faked(client: openai.OpenAI, fake: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model=ALIAS, messages=[QUESTION], response_format={"type": "json_object"}
        )
    assert "response_format" in str(raised.value)
    assert not fake.requests


def test_midstream_error(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", PATH, stream=_golden_stream("error_midstream"))
    stream = client.chat.completions.create(model=ALIAS, messages=[QUESTION], stream=True)
    text = ""
    with pytest.raises(openai.APIError) as raised:
        for chunk in stream:
            text += chunk.choices[0].delta.content or "" if chunk.choices else ""
    assert text == "Hello! It's"
    assert "reported an error mid-stream: Overloaded" in raised.value.message
