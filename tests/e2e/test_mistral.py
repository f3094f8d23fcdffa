"""Mistral AI through the gateway with the official openai SDK: parameter renames, 9-character tool call
ids, reasoning chunks turned into reasoning_content (whole and streamed), and Mistral's error bodies."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.e2e.conftest import QUESTION, WEATHER_TOOL, assert_error, golden_json, golden_stream
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway, sdk_types
from tests.support.sdk_types import openai_client

PATH = "/v1/chat/completions"
MISTRAL_ID = re.compile(r"^[A-Za-z0-9]{9}$")


@pytest.fixture(scope="module")
def mistral_gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    base = {"api_base": fake.url + "/v1", "api_key": "mistral-secret"}
    config = {
        "model_list": [
            {
                "model_name": "mistral-small",
                "litellm_params": {"model": "mistral/mistral-small-latest", **base},
            },
            {
                "model_name": "mistral-safe",
                "litellm_params": {"model": "mistral/mistral-small-latest", "safe_prompt": True, **base},
            },
            {
                "model_name": "magistral",
                "litellm_params": {"model": "mistral/magistral-medium-latest", **base},
            },
        ]
    }
    with running_gateway(tmp_path_factory.mktemp("mistral"), config) as server:
        yield server


@pytest.fixture
def mistral(mistral_gateway: GatewayServer) -> openai.OpenAI:
    return openai_client(mistral_gateway.v1, "unused")


def test_parameters_take_mistral_names(mistral: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", PATH, json=golden_json("mistral", "tools.response.json"))
    raw = mistral.chat.completions.with_raw_response.create(
        model="mistral-safe",
        messages=[QUESTION],
        tools=[WEATHER_TOOL],
        tool_choice="required",
        seed=7,
        max_completion_tokens=100,
        user="someone",
        extra_body={"top_k": 20},
    )
    sent = fake.last.json
    assert sent["random_seed"] == 7 and "seed" not in sent
    assert sent["tool_choice"] == "any"
    assert sent["max_tokens"] == 100 and "max_completion_tokens" not in sent
    assert sent["safe_prompt"] is True  # the deployment's per-model override, a Mistral-native field
    assert sent["model"] == "mistral-small-latest"
    assert {"user", "top_k", "stream_options"}.isdisjoint(sent)
    assert fake.last.headers["authorization"] == "Bearer mistral-secret"
    assert "user" in raw.headers["x-turnout-warning"] and "top_k" in raw.headers["x-turnout-warning"]


def test_stream_options_are_not_sent(mistral: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", PATH, stream=golden_stream("mistral", "stream_text"))
    chunks = list(
        mistral.chat.completions.create(
            model="mistral-small", messages=[QUESTION], stream=True, stream_options={"include_usage": True}
        )
    )
    assert "stream_options" not in fake.last.json and fake.last.json["stream"] is True
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == "Hello! It's nice to meet you."
    )
    usage = [c.usage for c in chunks if c.usage]
    assert len(usage) == 1 and usage[0].total_tokens == 25  # Mistral sends it on the last chunk


def test_tool_call_ids_round_trip_as_nine_characters(mistral: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", PATH, json=golden_json("mistral", "tools.response.json"))
    first = mistral.chat.completions.create(model="mistral-small", messages=[QUESTION], tools=[WEATHER_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.id == "goldenWx1" and call.type == "function"  # Mistral's own id reaches the client

    fake.add("POST", PATH, json=golden_json("mistral", "tool_results.response.json"))
    history: list[Any] = [
        QUESTION,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 18}'},
        # a call made earlier through another provider, with an OpenAI-style id Mistral would refuse
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_Xy7Qm2Lp0aZ8vB3nR5tW1kD4",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location": "London"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_Xy7Qm2Lp0aZ8vB3nR5tW1kD4", "content": '{"temp_c": 12}'},
    ]
    second = mistral.chat.completions.create(model="mistral-small", messages=history, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content is not None

    sent = fake.last.json["messages"]
    calls = [c["id"] for m in sent if m["role"] == "assistant" for c in m["tool_calls"]]
    results = [m["tool_call_id"] for m in sent if m["role"] == "tool"]
    assert all(MISTRAL_ID.match(i) for i in calls)
    assert results == calls and len(set(calls)) == 2
    assert [m.get("name") for m in sent if m["role"] == "tool"] == ["get_weather", "get_weather"]


def test_reasoning_chunks_become_reasoning_content(mistral: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", PATH, json=golden_json("mistral", "reasoning.response.json"))
    answer = mistral.chat.completions.create(
        model="magistral", messages=[{"role": "user", "content": "Is 221 prime?"}], reasoning_effort="medium"
    )
    message = answer.choices[0].message
    assert message.content == "No. 221 = 13 x 17, so it is not prime."
    assert message.model_extra is not None
    assert message.model_extra["reasoning_content"].startswith("221 is odd")
    assert fake.last.json["reasoning_effort"] == "high"  # Mistral adjusts reasoning with "none" or "high"

    # the reasoning goes back as a thinking chunk on the next turn
    fake.add("POST", PATH, json=golden_json("mistral", "simple.response.json"))
    history: list[Any] = [
        {"role": "user", "content": "Is 221 prime?"},
        message.model_dump(exclude_none=True),
        {"role": "user", "content": "Thanks."},
    ]
    mistral.chat.completions.create(model="magistral", messages=history)
    assert fake.last.json["messages"][1]["content"] == [
        {
            "type": "thinking",
            "thinking": [{"type": "text", "text": message.model_extra["reasoning_content"]}],
        },
        {"type": "text", "text": "No. 221 = 13 x 17, so it is not prime."},
    ]


def test_streamed_reasoning_chunks_become_reasoning_content(
    mistral: openai.OpenAI, fake: FakeUpstream
) -> None:
    fake.add("POST", PATH, stream=golden_stream("mistral", "stream_reasoning"))
    chunks = list(
        mistral.chat.completions.create(
            model="magistral", messages=[{"role": "user", "content": "Is 221 prime?"}], stream=True
        )
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    reasoning = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    content = "".join(d.content or "" for d in deltas)
    assert reasoning.startswith("221 is odd") and reasoning.endswith("is composite.")
    assert content == "No. 221 = 13 x 17, so it is not prime."
    assert all(isinstance(d.content, str | None) for d in deltas)


@pytest.mark.parametrize("reasoning", [{"think": False}, {"reasoning_effort": "none"}])
def test_reasoning_switched_off(
    mistral: openai.OpenAI, fake: FakeUpstream, reasoning: dict[str, Any]
) -> None:
    fake.add("POST", PATH, json=golden_json("mistral", "simple.response.json"))
    mistral.chat.completions.create(model="mistral-small", messages=[QUESTION], extra_body=reasoning)
    assert fake.last.json["reasoning_effort"] == "none"


def test_validation_error_is_readable(mistral_gateway: GatewayServer, fake: FakeUpstream) -> None:
    detail = {
        "detail": [
            {
                "type": "extra_forbidden",
                "loc": ["body", "messages", 0, "user", "audio"],
                "msg": "Extra inputs are not permitted",
                "input": "x",
            }
        ]
    }
    fake.add("POST", PATH, status=422, json=detail)
    answer = sdk_types.post(
        f"{mistral_gateway.v1}/chat/completions",
        json={"model": "mistral-small", "messages": [QUESTION]},
        timeout=10,
    )
    error = assert_error(answer, 422)
    assert error["message"] == (
        "mistral (mistral-small-latest) returned HTTP 422: "
        "messages.0.user.audio: Extra inputs are not permitted"
    )


def test_error_object_message_and_code(mistral_gateway: GatewayServer, fake: FakeUpstream) -> None:
    body = {
        "object": "error",
        "message": "This model is not available in your subscription tier",
        "type": "tier_not_allowed",
        "param": None,
        "code": "1910",
    }
    fake.add("POST", PATH, status=403, json=body)
    answer = sdk_types.post(
        f"{mistral_gateway.v1}/chat/completions",
        json={"model": "mistral-small", "messages": [QUESTION]},
        timeout=10,
    )
    error = assert_error(answer, 403, code="1910")
    assert error["message"].endswith("This model is not available in your subscription tier")


def test_failed_generation_mid_stream(mistral: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", PATH, stream=golden_stream("mistral", "error_midstream"))
    stream = mistral.chat.completions.create(model="mistral-small", messages=[QUESTION], stream=True)
    with pytest.raises(openai.APIError, match='finish_reason "error"'):
        list(stream)
