"""Azure OpenAI through the gateway with the official openai SDK: the deployment URL and api-version,
the api-key header, Azure's content-filter answers, and passthrough streams."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import assert_error, golden_json, golden_stream, sse_events
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway, sdk_types
from tests.support.sdk_types import openai_client

DEPLOYMENT_PATH = "/openai/deployments/gpt-4o-prod/chat/completions"
QUESTION: Any = [{"role": "user", "content": "Say hello in one short sentence."}]

# Azure's answer to a prompt its content filter blocks (HTTP 400)
CONTENT_FILTER_ERROR = {
    "error": {
        "message": (
            "The response was filtered due to the prompt triggering Azure OpenAI's content management "
            "policy. Please modify your prompt and retry. To learn more about our content filtering "
            "policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
        ),
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": {
                "hate": {"filtered": False, "severity": "safe"},
                "jailbreak": {"filtered": False, "detected": False},
                "self_harm": {"filtered": False, "severity": "safe"},
                "sexual": {"filtered": False, "severity": "safe"},
                "violence": {"filtered": True, "severity": "medium"},
            },
        },
    }
}


def _entry(alias: str, deployment: str, **params: Any) -> dict[str, Any]:
    return {"model_name": alias, "litellm_params": {"model": f"azure/{deployment}", **params}}


@pytest.fixture(scope="module")
def azure_gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    config = {
        "model_list": [
            _entry(
                "azure-gpt4o",
                "gpt-4o-prod",
                api_base=fake.url + "/",
                api_key="azure-secret",
                api_version="2024-06-01",
            ),
            _entry("azure-default-version", "gpt-4o-prod", api_base=fake.url, api_key="azure-secret"),
            _entry(
                "azure-openai-suffix", "gpt-4o-prod", api_base=fake.url + "/openai", api_key="azure-secret"
            ),
            _entry("azure-no-base", "gpt-4o-prod", api_key="azure-secret"),
        ]
    }
    with running_gateway(tmp_path_factory.mktemp("azure"), config) as server:
        yield server


@pytest.fixture
def azure(azure_gateway: GatewayServer) -> openai.OpenAI:
    return openai_client(azure_gateway.v1, "unused")


def test_chat_goes_to_the_deployment_with_api_version_and_api_key(
    azure: openai.OpenAI, fake: FakeUpstream
) -> None:
    fake.add("POST", DEPLOYMENT_PATH, json=golden_json("azure", "simple.response.json"))
    answer = azure.chat.completions.create(model="azure-gpt4o", messages=QUESTION)

    assert answer.choices[0].message.content == "Hello! It's nice to meet you."
    sent = fake.last
    assert sent.path == DEPLOYMENT_PATH
    assert sent.query == {"api-version": "2024-06-01"}
    assert sent.headers["api-key"] == "azure-secret"
    assert "authorization" not in sent.headers
    # Azure's own fields pass through untouched
    assert (
        answer.model_extra is not None and answer.model_extra["prompt_filter_results"][0]["prompt_index"] == 0
    )
    choice_extra = answer.choices[0].model_extra
    assert (
        choice_extra is not None and choice_extra["content_filter_results"]["violence"]["filtered"] is False
    )


@pytest.mark.parametrize("alias", ["azure-default-version", "azure-openai-suffix"])
def test_default_api_version_and_base_ending_in_openai(
    azure: openai.OpenAI, fake: FakeUpstream, alias: str
) -> None:
    fake.add("POST", DEPLOYMENT_PATH, json=golden_json("azure", "simple.response.json"))
    azure.chat.completions.create(model=alias, messages=QUESTION)
    assert fake.last.path == DEPLOYMENT_PATH
    assert fake.last.query == {"api-version": "2024-10-21"}


def test_prompt_blocked_by_the_content_filter(azure_gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.add("POST", DEPLOYMENT_PATH, status=400, json=CONTENT_FILTER_ERROR)
    answer = sdk_types.post(
        f"{azure_gateway.v1}/chat/completions",
        json={"model": "azure-gpt4o", "messages": QUESTION},
        timeout=10,
    )
    error = assert_error(answer, 400, type="invalid_request_error", code="content_filter")
    assert "the prompt was filtered by Azure OpenAI's content filter (violence: medium)" in error["message"]
    assert error["message"].startswith("azure (gpt-4o-prod) returned HTTP 400")
    assert error["param"] == "prompt"


def test_content_filter_error_through_the_sdk(azure: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", DEPLOYMENT_PATH, status=400, json=CONTENT_FILTER_ERROR)
    with pytest.raises(openai.BadRequestError) as raised:
        azure.chat.completions.create(model="azure-gpt4o", messages=QUESTION)
    assert raised.value.code == "content_filter"
    assert "prompt was filtered" in raised.value.message


def test_stream_passes_through(azure: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", DEPLOYMENT_PATH, stream=golden_stream("azure", "stream_text"))
    chunks = list(
        azure.chat.completions.create(
            model="azure-gpt4o", messages=QUESTION, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello! It's nice to meet you."
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 25
    assert fake.last.json["stream"] is True and fake.last.query == {"api-version": "2024-06-01"}


def test_stream_leaves_out_the_prompt_filter_event(azure_gateway: GatewayServer, fake: FakeUpstream) -> None:
    # Azure's first event is its verdict on the prompt ("object": "", no id, model or choices): not a
    # chunk, and the openai SDK's ChatCompletionChunk refuses it
    fake.add("POST", DEPLOYMENT_PATH, stream=golden_stream("azure", "stream_text"))
    answer = httpx.post(
        f"{azure_gateway.v1}/chat/completions",
        json={"model": "azure-gpt4o", "messages": QUESTION, "stream": True},
        timeout=10,
    )
    chunks = sse_events(answer.content)
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks[:-1])
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "prompt_filter_results" not in answer.text
    assert sdk_types.problems(answer) == []


def test_stream_blocked_midway_by_the_content_filter(
    azure_gateway: GatewayServer, fake: FakeUpstream
) -> None:
    events = golden_stream("azure", "stream_text")[:3]  # prompt filter results, role, "Hello!"
    blocked = (
        b'data: {"choices":[{"content_filter_results":{"violence":{"filtered":true,"severity":"medium"}},'
        b'"delta":{},"finish_reason":"content_filter","index":0,"logprobs":null}],"created":1735732800,'
        b'"id":"chatcmpl-golden-stream_text","model":"test-model","object":"chat.completion.chunk",'
        b'"system_fingerprint":"fp_golden01","usage":null}\n\n'
    )
    fake.add("POST", DEPLOYMENT_PATH, stream=[*events, blocked, b"data: [DONE]\n\n"])
    answer = sdk_types.post(
        f"{azure_gateway.v1}/chat/completions",
        json={"model": "azure-gpt4o", "messages": QUESTION, "stream": True},
        timeout=10,
    )
    assert answer.status_code == 200
    chunks = sse_events(answer.content)
    assert chunks[-1] == "[DONE]"
    assert chunks[-2]["choices"][0]["finish_reason"] == "content_filter"
    assert chunks[-2]["choices"][0]["content_filter_results"]["violence"]["filtered"] is True


def test_a_deployment_without_api_base_is_a_clear_error(
    azure_gateway: GatewayServer, fake: FakeUpstream
) -> None:
    answer = sdk_types.post(
        f"{azure_gateway.v1}/chat/completions",
        json={"model": "azure-no-base", "messages": QUESTION},
        timeout=10,
    )
    error = assert_error(answer, 502)
    assert "api_base" in error["message"]
    assert not [r for r in fake.requests if r.method == "POST"]
