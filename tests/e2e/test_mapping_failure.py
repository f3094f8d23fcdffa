"""A mapping that fails while translating: the client gets a 502 naming the provider and the request
id, never the server's path or the exception; the gateway's log has the file:line under that id."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from engine.settings import project_path
from tests.e2e.conftest import assert_error
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway, sdk_types

# `response.meter.in + response.meter.out` fails when the upstream sends text for a number, and so does
# the stream's step when an event's `n` is text: both are mapping failures, not the upstream's
BRITTLE = """\
name: brittle
api_base: http://localhost:9999
operations:
  chat:
    url: "{{ deployment.api_base }}/generate"
    params: {supported: "*"}
    request: {prompt: "{{ request.messages | map_attribute('content') | join(' ') }}"}
    response:
      id: chatcmpl-1
      created: 1
      object: chat.completion
      model: "{{ deployment.model }}"
      choices: [{index: 0, message: {role: assistant, content: "{{ response.text }}"}, finish_reason: stop}]
      usage: {total_tokens: "{{ response.meter.in + response.meter.out }}"}
    stream:
      framing: ndjson
      done: "{{ event.end }}"
      event:
        id: chatcmpl-1
        created: 1
        object: chat.completion.chunk
        model: "{{ deployment.model }}"
        choices: [{index: 0, delta: {content: "{{ event.text * (event.n + 1) }}"}}]
"""
PATH = "/generate"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    root = tmp_path_factory.mktemp("brittle")
    mappings = root / "mappings"
    shutil.copytree(project_path("mappings"), mappings)
    (mappings / "providers" / "brittle.yaml").write_text(BRITTLE)
    entry = {"model_name": "brittle", "litellm_params": {"model": "brittle/brittle-1", "api_base": fake.url}}
    with running_gateway(root, {"model_list": [entry]}, mappings_dir=mappings) as server:
        yield server


def _no_internals(text: str, gateway: GatewayServer) -> None:
    for leak in (".yaml", str(gateway.gateway.settings.mappings_dir), "TypeError", "Traceback", "/"):
        assert leak not in text


def test_a_failing_answer_mapping_is_a_502_naming_provider_and_request(
    gateway: GatewayServer, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add("POST", PATH, json={"text": "hello", "meter": {"in": "three", "out": 1}})
    with caplog.at_level(logging.ERROR, logger="turnout.mapping"):
        response = sdk_types.post(gateway.v1 + "/chat/completions", json={"model": "brittle", "messages": HI})
    error = assert_error(response, 502, code="mapping_error")
    request_id = response.headers["x-turnout-request-id"]
    assert error["message"] == (
        f"the mapping for brittle (brittle-1) failed while translating (request {request_id}); "
        "see the gateway's log"
    )
    assert response.headers["x-should-retry"] == "false"  # the same request would fail the same way
    _no_internals(response.text, gateway)
    (logged,) = [r for r in caplog.records if request_id in r.getMessage()]
    brittle = gateway.gateway.settings.mappings_dir / "providers" / "brittle.yaml"
    line = BRITTLE.splitlines().index(
        '      usage: {total_tokens: "{{ response.meter.in + response.meter.out }}"}'
    )
    assert f"{brittle}:{line + 1}" in logged.getMessage()
    assert "TypeError" in logged.getMessage()


def test_a_mapping_failing_mid_stream_ends_it_naming_the_request(
    gateway: GatewayServer, client: openai.OpenAI, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    lines: list[dict[str, Any]] = [{"text": "a", "n": 0}, {"text": "b", "n": "one"}, {"end": True}]
    fake.add("POST", PATH, stream=[json.dumps(line).encode() + b"\n" for line in lines])
    with caplog.at_level(logging.ERROR, logger="turnout.mapping"):
        raw = client.chat.completions.with_raw_response.create(model="brittle", messages=HI, stream=True)
        request_id = raw.headers["x-turnout-request-id"]
        with pytest.raises(openai.APIError) as caught:
            for _ in raw.parse():
                pass
    message = caught.value.message
    assert f"the mapping for brittle (brittle-1) failed while translating (request {request_id})" in message
    _no_internals(message, gateway)
    assert any(request_id in r.getMessage() and "brittle.yaml" in r.getMessage() for r in caplog.records)
