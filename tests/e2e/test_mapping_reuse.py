"""The mapping language's means of reuse, end to end over HTTP: a made-up NDJSON protocol written with
sequential `$let`, fragments and a stream `envelope`, and an overlay of it that extends one construct
of its parent (a `$switch`'s cases) and one of its fragments instead of copying them."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from engine.settings import project_path
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway

BASE = """\
name: relay
description: Relay, a made-up NDJSON protocol
privacy_tier: self-hosted
litellm_prefixes: [relay]

fragments:
  finish:                               # (why) -> the canonical finish_reason
    $switch: why
    $cases: {cap: length, done: stop}
    $default: stop
  usage:                                # (meter) -> canonical usage
    prompt_tokens: "{{ meter.in }}"
    completion_tokens: "{{ meter.out }}"
    total_tokens: "{{ meter.in + meter.out }}"

operations:
  chat:
    url: "{{ deployment.api_base }}/relay"
    params:
      supported: [model, messages, stream, stream_options, max_tokens, max_completion_tokens]
      dropped: [temperature, top_p, n, stop, seed, presence_penalty, frequency_penalty, logit_bias,
                logprobs, top_logprobs, user, response_format, reasoning_effort, think, metadata, store,
                service_tier, modalities, audio, prediction, web_search_options, parallel_tool_calls,
                tools, tool_choice, functions, function_call]
      other: drop
    request:
      $let:
        limit: "{{ request.max_completion_tokens | default(request.max_tokens) }}"
        budget: "{{ limit * 2 if limit else omit }}"      # uses the binding before it
      $in:
        engine: "{{ deployment.model }}"
        live: "{{ request.stream | default(false) }}"
        lines: "{{ request.messages | map_attribute('content') }}"
        budget: "{{ budget }}"
    response:
      id: "chatcmpl-{{ uuid() }}"
      object: chat.completion
      created: "{{ now() }}"
      model: "{{ deployment.model }}"
      choices:
        - index: 0
          message: {role: assistant, content: "{{ response.text }}"}
          finish_reason: {$use: finish, $with: {why: "{{ response.why }}"}}
      usage: {$use: usage, $with: {meter: "{{ response.meter }}"}}
    stream:
      framing: ndjson
      start: {id: "chatcmpl-{{ uuid() }}", created: "{{ now() }}"}
      done: "{{ event.why is defined }}"
      envelope:                         # laid under every chunk below
        id: "{{ state.id }}"
        object: chat.completion.chunk
        created: "{{ state.created }}"
        model: "{{ deployment.model }}"
      event:
        - $if: "event.text"
          $then: {choices: [{index: 0, delta: {content: "{{ event.text }}"}, finish_reason: null}]}
        - $if: "event.why is defined"
          $then:
            choices:
              - index: 0
                delta: {}
                finish_reason: {$use: finish, $with: {why: "{{ event.why }}"}}
        - $if: "event.why is defined and request.stream_options.include_usage"
          $then:
            choices: []
            usage: {$use: usage, $with: {meter: "{{ event.meter }}"}}
"""

OVERLAY = """\
extends: relay
name: relay_plus
litellm_prefixes: [relay_plus]
fragments:
  finish:
    $cases: {blocked: content_filter}   # one more case, in every use of the parent's fragment
operations:
  chat:
    request:
      $let:
        budget: "{{ limit + 1 if limit else omit }}"   # one binding changed; `limit` is the parent's
      $in:
        lines: null                     # left out
        turns: "{{ request.messages | length }}"
"""
ALIASES = {"relay": "relay/r-1", "plus": "relay_plus/r-1"}
HI: list[Any] = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    root = tmp_path_factory.mktemp("reuse")
    mappings = root / "mappings"
    shutil.copytree(project_path("mappings"), mappings)
    (mappings / "providers" / "relay.yaml").write_text(BASE)
    (mappings / "providers" / "relay_plus.yaml").write_text(OVERLAY)
    entries = [
        {"model_name": alias, "litellm_params": {"model": model, "api_base": fake.url}}
        for alias, model in ALIASES.items()
    ]
    with running_gateway(root, {"model_list": entries}, mappings_dir=mappings) as server:
        yield server


def test_base_answer_uses_its_fragments_and_chained_bindings(
    client: openai.OpenAI, fake: FakeUpstream
) -> None:
    fake.add("POST", "/relay", json={"text": "yo", "why": "cap", "meter": {"in": 2, "out": 1}})
    answer = client.chat.completions.create(model="relay", messages=HI, max_tokens=5)
    assert answer.choices[0].message.content == "yo"
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None and answer.usage.total_tokens == 3
    assert fake.last.json == {"engine": "r-1", "live": False, "lines": ["hi"], "budget": 10}


def test_overlay_extends_the_parents_request_and_fragment(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", "/relay", json={"text": "no", "why": "blocked", "meter": {"in": 2, "out": 0}})
    answer = client.chat.completions.create(model="plus", messages=HI, max_tokens=5)
    assert answer.choices[0].finish_reason == "content_filter"
    assert fake.last.json == {"engine": "r-1", "live": False, "budget": 6, "turns": 1}


def test_stream_chunks_carry_the_envelope(client: openai.OpenAI, fake: FakeUpstream) -> None:
    lines = [{"text": "Hel"}, {"text": "lo"}, {"why": "blocked", "meter": {"in": 2, "out": 2}}]
    fake.add("POST", "/relay", stream=[json.dumps(line).encode() + b"\n" for line in lines])
    chunks = list(
        client.chat.completions.create(
            model="plus", messages=HI, stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "content_filter"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 4
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert all(c.created for c in chunks) and {c.model for c in chunks} == {"plus"}
