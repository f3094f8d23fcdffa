"""Tool calling through both backends: a call and its result round trip, parallel calls, streamed calls."""

from __future__ import annotations

import json
from typing import Any

import openai

from tests.e2e.conftest import OLLAMA, QUESTION, WEATHER_TOOL, Backend
from tests.fakes import FakeUpstream

TOOLS: Any = [WEATHER_TOOL]


def test_tool_call_round_trip(client: openai.OpenAI, fake: FakeUpstream, backend: Backend) -> None:
    backend.answer(fake, "tools")
    first = client.chat.completions.create(
        model=backend.alias,
        messages=[QUESTION],
        tools=TOOLS,
        tool_choice="auto",
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert isinstance(call.function.arguments, str)  # Ollama's object arrives as a JSON string
    assert json.loads(call.function.arguments) == {"location": "Paris, France"}
    assert call.id.startswith("call_")
    sent_tools = fake.last.json["tools"]
    assert sent_tools[0]["function"]["name"] == "get_weather"
    assert sent_tools[0]["function"]["parameters"] == WEATHER_TOOL["function"]["parameters"]

    backend.answer(fake, "tool_results")
    history: list[Any] = [
        QUESTION,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 18, "sky": "sunny"}'},
    ]
    second = client.chat.completions.create(model=backend.alias, messages=history, tools=TOOLS)
    assert second.choices[0].message.content is not None and "sunny" in second.choices[0].message.content
    sent = fake.last.json["messages"]
    assistant, result = sent[1], sent[2]
    if backend.is_ollama:
        assert assistant["tool_calls"] == [
            {"function": {"name": "get_weather", "arguments": {"location": "Paris, France"}}}
        ]
        assert result == {
            "role": "tool",
            "content": '{"temp_c": 18, "sky": "sunny"}',
            "tool_name": "get_weather",
        }
    else:
        assert assistant["tool_calls"][0]["id"] == call.id
        assert assistant["tool_calls"][0]["function"]["arguments"] == call.function.arguments
        assert result["tool_call_id"] == call.id


def test_tool_choice_none_sends_no_tools_to_ollama(client: openai.OpenAI, fake: FakeUpstream) -> None:
    OLLAMA.answer(fake, "simple")
    client.chat.completions.create(
        model=OLLAMA.alias,
        messages=[QUESTION],
        tools=TOOLS,
        tool_choice="none",
    )
    assert "tools" not in fake.last.json


def test_parallel_tool_calls(client: openai.OpenAI, fake: FakeUpstream, backend: Backend) -> None:
    backend.answer(fake, "parallel_tools")
    answer = client.chat.completions.create(
        model=backend.alias,
        messages=[{"role": "user", "content": "Weather in Paris and London?"}],
        tools=TOOLS,
    )
    calls = answer.choices[0].message.tool_calls
    assert calls is not None
    assert all(c.type == "function" for c in calls)
    assert [json.loads(c.function.arguments)["location"] for c in calls if c.type == "function"] == [
        "Paris, France",
        "London, UK",
    ]
    assert len({c.id for c in calls}) == 2 and all(c.id.startswith("call_") for c in calls)
    assert answer.choices[0].finish_reason == "tool_calls"

    # both results go back; Ollama resolves each tool_name from its own call id
    backend.answer(fake, "tool_results")
    history: list[Any] = [
        {"role": "user", "content": "Weather in Paris and London?"},
        answer.choices[0].message.model_dump(exclude_none=True),
        *({"role": "tool", "tool_call_id": c.id, "content": f"result {i}"} for i, c in enumerate(calls)),
    ]
    client.chat.completions.create(model=backend.alias, messages=history, tools=TOOLS)
    results = [m for m in fake.last.json["messages"] if m["role"] == "tool"]
    if backend.is_ollama:
        assert [(m["tool_name"], m["content"]) for m in results] == [
            ("get_weather", "result 0"),
            ("get_weather", "result 1"),
        ]
    else:
        assert [m["tool_call_id"] for m in results] == [c.id for c in calls]


def _two_call_stream() -> list[bytes]:
    line = {"model": "test-model", "created_at": "2025-01-01T12:00:00Z", "done": False}
    calls = [("Paris, France", 0), ("London, UK", 1)]
    chunks = [
        {
            **line,
            "message": {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"function": {"index": i, "name": "get_weather", "arguments": {"location": place}}}
                ],
            },
        }
        for place, i in calls
    ]
    end = {
        **line,
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 150,
        "eval_count": 40,
    }
    return [json.dumps(c).encode() + b"\n" for c in [*chunks, end]]


def _openai_two_call_stream() -> list[bytes]:
    head = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "test-model"}

    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"

    def call(i: int, place: str) -> dict[str, Any]:
        arguments = json.dumps({"location": place})
        return {
            "tool_calls": [
                {
                    "index": i,
                    "id": f"call_{i}",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": arguments},
                }
            ]
        }

    return [
        event({"role": "assistant", "content": None}),
        event(call(0, "Paris, France")),
        event(call(1, "London, UK")),
        event({}, "tool_calls"),
        b"data: [DONE]\n\n",
    ]


def test_streamed_tool_calls(client: openai.OpenAI, fake: FakeUpstream, backend: Backend) -> None:
    stream = _two_call_stream() if backend.is_ollama else _openai_two_call_stream()
    fake.add("POST", backend.path, stream=stream)
    chunks = list(
        client.chat.completions.create(
            model=backend.alias,
            messages=[{"role": "user", "content": "Weather in Paris and London?"}],
            tools=TOOLS,
            stream=True,
        )
    )
    deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert [d.index for d in deltas] == [0, 1]
    assert [d.function.name for d in deltas if d.function] == ["get_weather", "get_weather"]
    arguments = [json.loads(d.function.arguments or "") for d in deltas if d.function]
    assert arguments == [{"location": "Paris, France"}, {"location": "London, UK"}]
    assert all(d.id and d.id.startswith("call_") for d in deltas)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]


def test_streamed_golden_tool_call(client: openai.OpenAI, fake: FakeUpstream, backend: Backend) -> None:
    backend.stream(fake, "stream_tools")
    chunks = list(
        client.chat.completions.create(
            model=backend.alias,
            messages=[QUESTION],
            tools=TOOLS,
            stream=True,
        )
    )
    # no text at all: content is null beside the tool call, as OpenAI streams it ("" would make the
    # Vercel AI SDK start an empty text part)
    texts = [c.choices[0].delta.content for c in chunks if c.choices]
    assert texts and all(text is None for text in texts)
    deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert {d.index for d in deltas} == {0}
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
    assert json.loads(arguments) == {"location": "Paris, France"}
