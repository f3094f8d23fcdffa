"""OpenAI's Responses API (mappings/dialects/responses.yaml), driven by the official `openai` SDK's
`client.responses.create(...)` against two backends of different protocols: Ollama and Gemini.

Each test asserts what the SDK parsed and what the backend was sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest

from tests.e2e.conftest import golden_json, golden_stream
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway, sdk_types
from tests.support.sdk_types import openai_client

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a place",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
    "strict": True,
}


@dataclass(frozen=True)
class Backend:
    name: str  # the provider mapping, and the golden fixture folder
    path: str
    stream_path: str
    api_base_suffix: str = ""

    @property
    def alias(self) -> str:
        return f"{self.name}-model"

    def answer(self, fake: FakeUpstream, scenario: str) -> None:
        fake.add("POST", self.path, json=golden_json(self.name, f"{scenario}.response.json"), times=1)

    def stream(self, fake: FakeUpstream, scenario: str) -> None:
        fake.add("POST", self.stream_path, stream=golden_stream(self.name, scenario), times=1)

    def sent_messages(self, fake: FakeUpstream) -> Any:
        body = fake.last.json
        return body["messages"] if self.name == "ollama" else body["contents"]


OLLAMA = Backend("ollama", "/api/chat", "/api/chat")
GEMINI = Backend(
    "gemini",
    "/v1beta/models/test-model:generateContent",
    "/v1beta/models/test-model:streamGenerateContent",
    "/v1beta",
)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    model_list = [
        {
            "model_name": b.alias,
            "litellm_params": {"model": f"{b.name}/test-model", "api_base": fake.url + b.api_base_suffix},
        }
        for b in (OLLAMA, GEMINI)
    ]
    with running_gateway(tmp_path_factory.mktemp("responses"), {"model_list": model_list}) as server:
        yield server


@pytest.fixture
def client(gateway: GatewayServer) -> openai.OpenAI:
    return openai_client(gateway.v1, "unused")


@pytest.fixture(params=[OLLAMA, GEMINI], ids=lambda b: b.name)
def backend(request: pytest.FixtureRequest, fake: FakeUpstream) -> Backend:
    fake.clear()
    chosen: Backend = request.param
    return chosen


def test_text_answer_parses_with_the_sdk(client: openai.OpenAI, fake: FakeUpstream, backend: Backend) -> None:
    backend.answer(fake, "system")
    response = client.responses.create(
        model=backend.alias, instructions="You are terse.", input="Hello", max_output_tokens=50
    )
    assert response.object == "response" and response.id.startswith("resp_")
    assert response.status == "completed" and response.model == backend.alias
    assert response.output_text and response.output[0].type == "message"
    assert response.output[0].id.startswith("msg_")
    assert response.store is True and response.previous_response_id is None  # kept by default, as in the API
    assert response.instructions == "You are terse." and response.max_output_tokens == 50
    assert response.usage is not None and response.usage.total_tokens > 0
    if backend is OLLAMA:
        assert fake.last.json["messages"] == [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hello"},
        ]
        assert fake.last.json["options"]["num_predict"] == 50
    else:
        assert fake.last.json["systemInstruction"]["parts"][0]["text"] == "You are terse."
        assert fake.last.json["generationConfig"]["maxOutputTokens"] == 50


def test_stream_events_end_with_the_completed_response(
    client: openai.OpenAI, fake: FakeUpstream, backend: Backend
) -> None:
    backend.stream(fake, "stream_text")
    events = list(client.responses.create(model=backend.alias, input="Hello", stream=True))
    types = [e.type for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response  # type: ignore[union-attr]
    assert final.status == "completed" and final.output_text == deltas and deltas
    assert final.usage is not None and final.usage.input_tokens > 0
    assert final.id == events[0].response.id  # type: ignore[union-attr]


def test_function_call_then_its_output(client: openai.OpenAI, fake: FakeUpstream, backend: Backend) -> None:
    backend.answer(fake, "tools")
    first = client.responses.create(
        model=backend.alias, input="Weather in Paris?", tools=[WEATHER], tool_choice="auto"
    )
    call = first.output[-1]
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.arguments == '{"location":"Paris, France"}' and call.call_id
    assert first.tools[0].name == "get_weather"  # type: ignore[union-attr]

    backend.answer(fake, "tool_results")
    second = client.responses.create(
        model=backend.alias,
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": '{"temp_c": 18}'},
        ],
        tools=[WEATHER],
    )
    assert second.output_text
    sent = backend.sent_messages(fake)
    if backend is OLLAMA:
        assert sent[1]["role"] == "assistant"
        assert sent[1]["tool_calls"][0]["function"] == {
            "name": "get_weather",
            "arguments": {"location": "Paris, France"},
        }
        assert sent[2] == {"role": "tool", "content": '{"temp_c": 18}', "tool_name": "get_weather"}
    else:
        assert sent[1]["role"] == "model"
        assert sent[1]["parts"][0]["functionCall"] == {
            "name": "get_weather",
            "args": {"location": "Paris, France"},
        }
        response = sent[2]["parts"][0]["functionResponse"]
        assert response["name"] == "get_weather" and "18" in str(response["response"])


def test_stream_function_call(client: openai.OpenAI, fake: FakeUpstream, backend: Backend) -> None:
    backend.stream(fake, "stream_tools")
    events = list(
        client.responses.create(model=backend.alias, input="Weather?", tools=[WEATHER], stream=True)
    )
    types = [e.type for e in events]
    assert "response.function_call_arguments.delta" in types
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert done.arguments == '{"location":"Paris, France"}'  # type: ignore[union-attr]
    final = events[-1]
    assert final.type == "response.completed"
    assert [item.type for item in final.response.output] == ["function_call"]


def test_json_schema_format(client: openai.OpenAI, fake: FakeUpstream, backend: Backend) -> None:
    backend.answer(fake, "json_schema")
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    fmt = {"type": "json_schema", "name": "person", "schema": schema, "strict": True}
    response = client.responses.create(model=backend.alias, input="A person", text={"format": fmt})  # type: ignore[arg-type]
    assert response.output_text.startswith("{")
    assert response.text is not None and response.text.format.type == "json_schema"
    if backend is OLLAMA:
        assert fake.last.json["format"] == schema
    else:
        assert fake.last.json["generationConfig"]["responseMimeType"] == "application/json"


def test_reasoning_becomes_a_reasoning_item(
    client: openai.OpenAI, fake: FakeUpstream, backend: Backend
) -> None:
    backend.answer(fake, "reasoning")
    response = client.responses.create(
        model=backend.alias, input="Is 221 prime?", reasoning={"effort": "high"}
    )
    reasoning, message = response.output
    assert reasoning.type == "reasoning" and reasoning.id.startswith("rs_")
    assert reasoning.summary[0].type == "summary_text" and "13" in reasoning.summary[0].text
    assert message.type == "message" and response.output_text
    assert response.reasoning is not None and response.reasoning.effort == "high"


def test_stream_reasoning_summary_events(client: openai.OpenAI, fake: FakeUpstream, backend: Backend) -> None:
    backend.stream(fake, "stream_reasoning")
    events = list(client.responses.create(model=backend.alias, input="Is 221 prime?", stream=True))
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output[0].type == "reasoning" and final.output[0].summary[0].text == summary
    assert final.output[1].type == "message" and final.output_text


def test_conversation_objects_are_refused_clearly(gateway: GatewayServer) -> None:
    answer = sdk_types.post(
        gateway.v1 + "/responses",
        json={"model": OLLAMA.alias, "input": "and then?", "conversation": "conv_123"},
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "conversation"
    assert "previous_response_id" in error["message"]


def test_hosted_tools_are_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=OLLAMA.alias, input="news?", tools=[{"type": "web_search"}])
    assert caught.value.param == "tools" and "web_search" in caught.value.message


def test_unknown_model_is_404_in_openai_shape(client: openai.OpenAI, gateway: GatewayServer) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="nobody", input="hi")
    assert caught.value.code == "model_not_found"
    answer = sdk_types.post(gateway.url + "/responses", json={"model": "nobody", "input": "hi"})
    assert answer.status_code == 404 and set(answer.json()["error"]) == {"message", "type", "param", "code"}


def test_error_mid_stream_fails_the_response(client: openai.OpenAI, fake: FakeUpstream) -> None:
    OLLAMA.stream(fake, "error_midstream")
    events = list(client.responses.create(model=OLLAMA.alias, input="Hello", stream=True))
    assert [e.type for e in events[-2:]] == ["error", "response.failed"]
    failed = events[-1].response  # type: ignore[union-attr]
    assert failed.status == "failed" and failed.error is not None and "unexpected EOF" in failed.error.message
    assert failed.output[0].status == "incomplete"


def test_usage_has_every_field_the_sdk_types_require(
    gateway: GatewayServer, fake: FakeUpstream, backend: Backend
) -> None:
    # ResponseUsage.input_tokens_details.cache_write_tokens is required by the openai SDK's types
    backend.answer(fake, "simple")
    answer = sdk_types.post(
        gateway.v1 + "/responses", json={"model": backend.alias, "input": "Hello"}, timeout=10
    )
    assert answer.json()["usage"]["input_tokens_details"] == {"cached_tokens": 0, "cache_write_tokens": 0}
    assert sdk_types.problems(answer) == []


def test_a_failed_response_carries_an_error_code_the_sdk_knows(
    gateway: GatewayServer, fake: FakeUpstream
) -> None:
    # Gemini's in-band error names a status (UNAVAILABLE); Response.error.code is one of the SDK's codes
    GEMINI.stream(fake, "error_midstream")
    answer = sdk_types.post(
        gateway.v1 + "/responses", json={"model": GEMINI.alias, "input": "Hello", "stream": True}, timeout=10
    )
    events = [json.loads(line[6:]) for line in answer.text.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-2]["code"] == "UNAVAILABLE"  # the error event keeps the backend's own code
    assert events[-1]["response"]["error"]["code"] == "server_error"
    assert sdk_types.problems(answer) == []


def test_a_stream_cut_by_max_output_tokens_ends_incomplete_as_the_sdk_types_say(
    client: openai.OpenAI, fake: FakeUpstream
) -> None:
    chunks = [
        line.replace(b'"done_reason":"stop"', b'"done_reason":"length"')
        for line in golden_stream("ollama", "stream_text")
    ]
    fake.add("POST", OLLAMA.stream_path, stream=chunks, times=1)
    events = list(
        client.responses.create(model=OLLAMA.alias, input="Hello", stream=True, max_output_tokens=9)
    )
    last = events[-1]
    assert last.type == "response.incomplete"
    assert last.response.incomplete_details is not None
    assert last.response.incomplete_details.reason == "max_output_tokens"
