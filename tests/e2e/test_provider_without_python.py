"""A provider needs no Python: a new YAML file in a copy of mappings/ makes a made-up protocol servable.

"Echo LLM" speaks its own JSON: `POST /v2/echo/generate` with `{engine, turns: [{who, said}], knobs}`,
answers `{result: {text, why}, meter: {in, out}}`, and streams NDJSON `{kind: token|end|fault, ...}`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from engine.settings import project_path
from tests.e2e.conftest import assert_error
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway, sdk_types

ECHO_MAPPING = """\
name: echo_llm
description: Echo LLM, a made-up JSON protocol
privacy_tier: self-hosted
api_base: http://localhost:9999
litellm_prefixes: [echo_llm]

headers:
  X-Echo-Key: "{{ deployment.api_key }}"

operations:
  chat:
    method: POST
    url: "{{ deployment.api_base }}/v2/echo/generate"
    params:
      supported: [model, messages, stream, stream_options, temperature, max_tokens, max_completion_tokens]
      dropped: [top_p, n, stop, seed, presence_penalty, frequency_penalty, logit_bias, logprobs,
                top_logprobs, user, response_format, reasoning_effort, think, metadata, store,
                service_tier, modalities, audio, prediction, web_search_options, parallel_tool_calls]
      rejected: [tools, tool_choice, functions, function_call]
      native: [echo_style]
      other: drop
    request:
      engine: "{{ deployment.model }}"
      live: "{{ request.stream | default(false) }}"
      turns:
        $for: request.messages
        $as: m
        $do: {who: "{{ m.role }}", said: "{{ m.content | text }}"}
      knobs:
        $let:
          knobs:
            heat: "{{ request.temperature }}"
            limit: "{{ request.max_completion_tokens | default(request.max_tokens) }}"
            style: "{{ request.echo_style }}"
        $in: "{{ knobs | nonempty }}"
    response:
      id: "chatcmpl-{{ uuid() }}"
      object: chat.completion
      created: "{{ now() }}"
      model: "{{ deployment.model }}"
      choices:
        - index: 0
          message: {role: assistant, content: "{{ response.result.text }}"}
          finish_reason: "{{ 'length' if response.result.why == 'cap' else 'stop' }}"
      usage:
        prompt_tokens: "{{ response.meter.in }}"
        completion_tokens: "{{ response.meter.out }}"
        total_tokens: "{{ response.meter.in + response.meter.out }}"
    stream:
      framing: ndjson
      start: {id: "chatcmpl-{{ uuid() }}", created: "{{ now() }}"}
      error: "{{ event.reason if event.kind == 'fault' else omit }}"
      done: "{{ event.kind == 'end' }}"
      event:
        $let:
          head: {id: "{{ state.id }}", object: chat.completion.chunk, created: "{{ state.created }}",
                 model: "{{ deployment.model }}"}
        $in:
          - $merge:
              - "{{ head }}"
              - choices:
                  - index: 0
                    delta:
                      content: "{{ event.text if event.kind == 'token' else omit }}"
                    finish_reason: "{{ 'stop' if event.kind == 'end' else none }}"
          - $if: "event.kind == 'end' and request.stream_options.include_usage"
            $then:
              $merge:
                - "{{ head }}"
                - choices: []
                  usage:
                    prompt_tokens: "{{ event.meter.in }}"
                    completion_tokens: "{{ event.meter.out }}"
                    total_tokens: "{{ event.meter.in + event.meter.out }}"

errors:
  message: "{{ body.fault if body.fault is defined else text }}"
"""
PATH = "/v2/echo/generate"
ALIAS = "echo"
HI: list[Any] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi"}]


def _ndjson(*lines: dict[str, Any]) -> list[bytes]:
    return [json.dumps(line).encode() + b"\n" for line in lines]


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    root = tmp_path_factory.mktemp("echo")
    mappings = root / "mappings"
    shutil.copytree(project_path("mappings"), mappings)
    (mappings / "providers" / "echo_llm.yaml").write_text(ECHO_MAPPING)
    entry = {
        "model_name": ALIAS,
        "litellm_params": {
            "model": "echo_llm/echo-7b",
            "api_base": fake.url,
            "api_key": "echo-secret",
            "echo_style": "parrot",
        },
    }
    with running_gateway(root, {"model_list": [entry]}, mappings_dir=mappings) as server:
        yield server


def test_the_new_mapping_is_valid(gateway: GatewayServer) -> None:
    assert "echo_llm" in gateway.gateway.registry.providers
    assert not list(Path(project_path("mappings"), "providers").glob("echo_llm*"))  # only in the copy


def test_non_stream(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", PATH, json={"result": {"text": "hi", "why": "cap"}, "meter": {"in": 3, "out": 1}})
    answer = client.chat.completions.create(model=ALIAS, messages=HI, temperature=0.5, max_tokens=1)
    assert answer.choices[0].message.content == "hi"
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None and answer.usage.total_tokens == 4
    assert answer.model == ALIAS  # the name asked for, in place of the mapping's echo-7b
    sent = fake.last
    assert sent.headers["x-echo-key"] == "echo-secret"
    assert sent.json == {
        "engine": "echo-7b",
        "live": False,
        "turns": [{"who": "system", "said": "Be brief."}, {"who": "user", "said": "Say hi"}],
        "knobs": {"heat": 0.5, "limit": 1, "style": "parrot"},
    }


def test_stream(client: openai.OpenAI, fake: FakeUpstream) -> None:
    lines = _ndjson(
        {"kind": "token", "text": "Hel"},
        {"kind": "token", "text": "lo"},
        {"kind": "end", "meter": {"in": 3, "out": 2}},
    )
    fake.add("POST", PATH, stream=lines)
    chunks = list(
        client.chat.completions.create(
            model=ALIAS, messages=HI, stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 5
    assert fake.last.json["live"] is True


def test_stream_fault_in_band(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add(
        "POST", PATH, stream=_ndjson({"kind": "token", "text": "Hel"}, {"kind": "fault", "reason": "melted"})
    )
    with pytest.raises(openai.APIError) as caught:
        list(client.chat.completions.create(model=ALIAS, messages=HI, stream=True))
    assert "melted" in caught.value.message and "echo_llm" in caught.value.message


def test_error_status(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.add("POST", PATH, status=503, json={"fault": "warming up"})
    response = sdk_types.post(gateway.v1 + "/chat/completions", json={"model": ALIAS, "messages": HI})
    error = assert_error(response, 503)
    assert error["message"] == "echo_llm (echo-7b) returned HTTP 503: warming up"


def test_rejected_and_dropped_parameters(
    gateway: GatewayServer, client: openai.OpenAI, fake: FakeUpstream
) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    response = sdk_types.post(
        gateway.v1 + "/chat/completions", json={"model": ALIAS, "messages": HI, "tools": [tool]}
    )
    error = assert_error(response, 400, code="unsupported_parameter")
    assert error["param"] == "tools" and "echo_llm" in error["message"]
    fake.add("POST", PATH, json={"result": {"text": "ok", "why": "end"}, "meter": {"in": 1, "out": 1}})
    raw = client.chat.completions.with_raw_response.create(model=ALIAS, messages=HI, top_p=0.5)
    assert "top_p" in raw.headers["x-turnout-warning"]
    assert "top_p" not in fake.last.body.decode()
