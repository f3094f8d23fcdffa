"""Issue 13's docs exercise: Cohere's v2 chat added from the docs alone, as a user would, in a folder of
one's own (`tests/e2e/data/own_cohere`, a `cohere.yaml` that extends the bundled rerank-only one) and
served through the openai SDK against a fake upstream answering in Cohere's documented shapes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from engine.cli import main
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway, sdk_types

OWN = Path(__file__).parent / "data" / "own_cohere"
CHAT = "/v2/chat"
ALIAS = "command-a"
HI: Any = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi"}]
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
USAGE = {
    "billed_units": {"input_tokens": 11, "output_tokens": 7},
    "tokens": {"input_tokens": 80, "output_tokens": 7},
}
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}


def _sse(*events: dict[str, Any]) -> list[bytes]:
    """Cohere's typed SSE events: the type as the `event:` name and in the data; no [DONE]."""
    return [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]


def _answer(message: dict[str, Any], finish: str = "COMPLETE") -> dict[str, Any]:
    return {
        "id": "c0ffee",
        "finish_reason": finish,
        "message": {"role": "assistant", **message},
        "usage": USAGE,
    }


START = {"id": "c0ffee", "type": "message-start", "delta": {"message": {"role": "assistant", "content": []}}}


def _end(finish: str) -> dict[str, Any]:
    return {"type": "message-end", "delta": {"finish_reason": finish, "usage": USAGE}}


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    params = {"api_base": fake.url, "api_key": "co-key"}
    config = {
        "model_list": [
            {"model_name": ALIAS, "litellm_params": {"model": "cohere/command-a-03-2025", **params}},
            {
                "model_name": "rerank",
                "litellm_params": {"model": "cohere/rerank-v3.5", **params},
                "model_info": {"mode": "rerank"},
            },
        ]
    }
    root = tmp_path_factory.mktemp("cohere")
    with running_gateway(root, config, mappings_path=[OWN], reload_interval=0) as server:
        yield server


def test_the_own_folder_checks_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mappings", "check", "--mappings", str(OWN)]) == 0
    assert capsys.readouterr().out.endswith(": all valid\n")


def test_chat(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", CHAT, json=_answer({"content": [{"type": "text", "text": "Hi!"}]}))
    answer = client.chat.completions.create(model=ALIAS, messages=HI, top_p=0.5, stop="END", max_tokens=9)
    assert answer.choices[0].message.content == "Hi!"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (11, 7)  # billed_units
    sent = fake.last
    assert sent.headers["authorization"] == "Bearer co-key"
    assert sent.json == {
        "model": "command-a-03-2025",
        "stream": False,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi"}],
        "p": 0.5,
        "stop_sequences": ["END"],
        "max_tokens": 9,
    }


def test_stream(client: openai.OpenAI, fake: FakeUpstream) -> None:
    text = [
        {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": piece}}}}
        for piece in ("Hel", "lo")
    ]
    fake.add(
        "POST",
        CHAT,
        stream=_sse(
            START,
            {
                "type": "content-start",
                "index": 0,
                "delta": {"message": {"content": {"type": "text", "text": ""}}},
            },
            *text,
            {"type": "content-end", "index": 0},
            _end("MAX_TOKENS"),
        ),
    )
    stream = client.chat.completions.create(
        model=ALIAS, messages=HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 18
    assert len({c.id for c in chunks}) == 1 and all(c.model == ALIAS for c in chunks)
    assert fake.last.json["stream"] is True


def test_tool_call_and_its_result(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add(
        "POST", CHAT, json=_answer({"tool_plan": "I will look it up.", "tool_calls": [CALL]}, "TOOL_CALL")
    )
    question: Any = {"role": "user", "content": "Weather in Paris?"}
    first = client.chat.completions.create(
        model=ALIAS, messages=[question], tools=[WEATHER], tool_choice="required"
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (
        "call_1",
        "get_weather",
        {"city": "Paris"},
    )
    assert fake.last.json["tool_choice"] == "REQUIRED"
    assert fake.last.json["tools"] == [WEATHER]

    fake.add("POST", CHAT, json=_answer({"content": [{"type": "text", "text": "Sunny."}]}))
    history: Any = [
        question,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21C"},
    ]
    second = client.chat.completions.create(model=ALIAS, messages=history, tools=[WEATHER])
    assert second.choices[0].message.content == "Sunny."
    assert fake.last.json["messages"][1:] == [
        {"role": "assistant", "tool_plan": "I will look it up.", "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21C"},
    ]
    assert "tool_choice" not in fake.last.json  # auto: Cohere's default


def test_streamed_tool_call(client: openai.OpenAI, fake: FakeUpstream) -> None:
    arguments = CALL["function"]["arguments"]
    pieces = [arguments[i : i + 6] for i in range(0, len(arguments), 6)]
    fake.add(
        "POST",
        CHAT,
        stream=_sse(
            START,
            {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "I will look it up."}}},
            {
                "type": "tool-call-start",
                "index": 0,
                "delta": {
                    "message": {"tool_calls": {**CALL, "function": {"name": "get_weather", "arguments": ""}}}
                },
            },
            *(
                {
                    "type": "tool-call-delta",
                    "index": 0,
                    "delta": {"message": {"tool_calls": {"function": {"arguments": p}}}},
                }
                for p in pieces
            ),
            {"type": "tool-call-end", "index": 0},
            _end("TOOL_CALL"),
        ),
    )
    with client.chat.completions.stream(model=ALIAS, messages=HI, tools=[WEATHER]) as stream:
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    assert [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls] == [
        ("call_1", "get_weather", arguments)
    ]


def test_errors(gateway: GatewayServer, client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", CHAT, status=400, json={"id": "e1", "message": "invalid request: too many tokens"})
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=ALIAS, messages=HI)
    assert "too many tokens" in refused.value.message and "co-key" not in refused.value.message

    fake.add("POST", CHAT, json=_answer({"content": [{"type": "text", "text": "par"}]}, "ERROR"))
    response = sdk_types.post(gateway.v1 + "/chat/completions", json={"model": ALIAS, "messages": HI})
    assert response.status_code == 502
    assert "generation ended with ERROR" in response.json()["error"]["message"]

    fake.add("POST", CHAT, stream=_sse(START, _end("TIMEOUT")))
    with pytest.raises(openai.APIError) as caught:
        list(client.chat.completions.create(model=ALIAS, messages=HI, stream=True))
    assert "generation ended with TIMEOUT" in caught.value.message


def test_discovery_and_the_inherited_rerank(gateway: GatewayServer, fake: FakeUpstream) -> None:
    models = {"models": [{"name": "command-a-03-2025", "endpoints": ["chat"]}, {"name": "embed-v4.0"}]}
    fake.add("GET", "/v1/models", json=models)
    listed = sdk_types.get(gateway.v1 + "/models", params={"include_discovered": "true"}).json()["data"]
    by_id = {m["id"]: m for m in listed}
    assert by_id[ALIAS]["available"] is True
    assert by_id["rerank"]["available"] is False  # its model is not in the list
    assert by_id["embed-v4.0"]["discovered"] is True and by_id["embed-v4.0"]["owned_by"] == "cohere"

    fake.add("POST", "/v2/rerank", json={"id": "r", "results": [{"index": 1, "relevance_score": 0.9}]})
    ranked = sdk_types.post(
        gateway.v1 + "/rerank", json={"model": "rerank", "query": "q", "documents": ["a", "b"]}
    )
    assert ranked.json()["results"] == [{"index": 1, "relevance_score": 0.9}]
