"""Stored responses (the `store` section of mappings/dialects/responses.yaml), driven by the `openai` SDK.

`previous_response_id` continues a kept response: the backend must receive the earlier turns (the
canonical messages sent then, and the assistant answer) before the new input. Every test asserts what
the backend was sent, through an OpenAI-compatible fake whose messages are the canonical ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.e2e.conftest import golden_stream
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway, sdk_types
from tests.support.sdk_types import openai_client

MODEL = "store-model"
PATH = "/v1/chat/completions"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a place",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    params = {"model": "openai/test-model", "api_base": fake.url + "/v1"}
    entry = {"model_name": MODEL, "litellm_params": params}
    with running_gateway(tmp_path_factory.mktemp("store"), {"model_list": [entry]}) as server:
        yield server


@pytest.fixture
def client(gateway: GatewayServer, fake: FakeUpstream) -> openai.OpenAI:
    fake.clear()
    return openai_client(gateway.v1, "unused")


def answer(fake: FakeUpstream, content: str | None = None, tool_calls: list[Any] | None = None) -> None:
    """Script one Chat Completions answer."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    finish = "tool_calls" if tool_calls else "stop"
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1735732800,
        "model": "test-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
    fake.add("POST", PATH, json=body, times=1)


def sent(fake: FakeUpstream) -> list[dict[str, Any]]:
    """The messages of the last request the backend received."""
    messages: list[dict[str, Any]] = fake.last.json["messages"]
    return messages


def posts(fake: FakeUpstream) -> int:
    return len([r for r in fake.requests if r.method == "POST"])


def test_previous_response_id_continues_the_conversation(client: openai.OpenAI, fake: FakeUpstream) -> None:
    answer(fake, "Nice to meet you, Ada.")
    first = client.responses.create(model=MODEL, instructions="Be warm.", input="My name is Ada.")
    assert first.store is True and first.previous_response_id is None

    answer(fake, "Your name is Ada.")
    second = client.responses.create(
        model=MODEL, instructions="Be terse.", input="What is my name?", previous_response_id=first.id
    )
    assert second.output_text == "Your name is Ada." and second.previous_response_id == first.id
    assert second.id != first.id
    # the new request's instructions come first; the earlier turn's are not carried over (as in the API)
    assert sent(fake) == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "What is my name?"},
    ]

    answer(fake, "Goodbye, Ada.")
    client.responses.create(model=MODEL, input="Bye!", previous_response_id=second.id)
    assert [m["role"] for m in sent(fake)] == ["user", "assistant", "user", "assistant", "user"]
    assert sent(fake)[3] == {"role": "assistant", "content": "Your name is Ada."}


def test_function_call_continued_with_its_output(client: openai.OpenAI, fake: FakeUpstream) -> None:
    function = {"name": "get_weather", "arguments": '{"location":"Paris"}'}
    call = {"id": "call_1", "type": "function", "function": function}
    answer(fake, None, [call])
    first = client.responses.create(model=MODEL, input="Weather in Paris?", tools=[WEATHER])  # type: ignore[list-item]
    item = first.output[-1]
    assert item.type == "function_call" and item.call_id == "call_1"

    answer(fake, "18 degrees in Paris.")
    second = client.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": item.call_id, "output": '{"temp_c": 18}'}],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert second.output_text == "18 degrees in Paris."
    assert sent(fake) == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 18}'},
    ]


def test_store_false_is_not_kept(client: openai.OpenAI, fake: FakeUpstream) -> None:
    answer(fake, "Noted.")
    first = client.responses.create(model=MODEL, input="Remember 42.", store=False)
    assert first.store is False

    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, input="What number?", previous_response_id=first.id)
    assert caught.value.code == "previous_response_not_found"
    assert caught.value.param == "previous_response_id" and first.id in caught.value.message
    assert posts(fake) == 1  # the refused turn never reached the backend


def test_unknown_id_is_the_apis_not_found_error(client: openai.OpenAI, gateway: GatewayServer) -> None:
    request = {"model": MODEL, "input": "and then?", "previous_response_id": "resp_nope"}
    answer = sdk_types.post(gateway.v1 + "/responses", json=request)
    assert answer.status_code == 400
    assert answer.json() == {
        "error": {
            "message": "Previous response with id 'resp_nope' not found.",
            "type": "invalid_request_error",
            "param": "previous_response_id",
            "code": "previous_response_not_found",
        }
    }


def test_streamed_turn_is_kept_once_complete(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", PATH, stream=golden_stream("openai", "stream_text"), times=1)
    events = list(client.responses.create(model=MODEL, input="Hello", stream=True))
    final = events[-1]
    assert final.type == "response.completed" and final.response.store is True
    streamed = final.response.output_text

    answer(fake, "You said hello.")
    client.responses.create(model=MODEL, input="What did I say?", previous_response_id=final.response.id)
    assert sent(fake) == [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": streamed},
        {"role": "user", "content": "What did I say?"},
    ]


def test_streamed_tool_call_is_kept(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", PATH, stream=golden_stream("openai", "stream_tools"), times=1)
    events = list(client.responses.create(model=MODEL, input="Weather?", tools=[WEATHER], stream=True))  # type: ignore[list-item]
    final = events[-1].response  # type: ignore[union-attr]
    call = final.output[-1]
    assert call.type == "function_call"

    answer(fake, "Sunny.")
    client.responses.create(
        model=MODEL,
        previous_response_id=final.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
    )
    assistant = sent(fake)[1]
    assert assistant["role"] == "assistant" and assistant["content"] is None
    assert assistant["tool_calls"] == [
        {"id": call.call_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
    ]
    assert json.loads(call.arguments) == {"location": "Paris, France"}


def test_failed_stream_is_not_kept(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", PATH, stream=golden_stream("openai", "error_midstream"), times=1)
    events = list(client.responses.create(model=MODEL, input="Hello", stream=True))
    failed = events[-1]
    assert failed.type == "response.failed"

    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, input="and?", previous_response_id=failed.response.id)
    assert caught.value.code == "previous_response_not_found"
