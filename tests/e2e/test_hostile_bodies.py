"""Bodies a careless or hostile client sends: each is a 400 in the route's own error shape, never a 500,
and nothing reaches the backend. A 500 that does happen (a mapping that fails) names no server path.

Found by fuzzing (issue 10, item 8): JSON nested 5,000 deep, dialect bodies of the wrong shape, and
token counts past any model's window were 500s or were forwarded.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.jsonbody import MAX_JSON_DEPTH
from engine.settings import project_path
from tests.e2e.conftest import OPENAI, assert_error, two_backend_config
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway

MASTER = "sk-hostile-master"
TEXT_5 = {"type": "text", "text": 5}
SCHEMA_5 = {"type": "json_schema", "name": "x", "schema": 5}
HI: list[Any] = [{"role": "user", "content": "Hi"}]

# every route that takes a JSON body, and a body that is right for it but for what a test adds
JSON_ROUTES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"model": OPENAI.alias, "messages": HI},
    "/v1/completions": {"model": OPENAI.alias, "prompt": "Hi"},
    "/v1/embeddings": {"model": OPENAI.alias, "input": "Hi"},
    "/v1/images/generations": {"model": OPENAI.alias, "prompt": "a cat"},
    "/v1/audio/speech": {"model": OPENAI.alias, "input": "Hi", "voice": "alloy"},
    "/v1/messages": {"model": OPENAI.alias, "max_tokens": 8, "messages": HI},
    "/v1/messages/count_tokens": {"model": OPENAI.alias, "messages": HI},
    "/v1/responses": {"model": OPENAI.alias, "input": "Hi"},
    "/key/generate": {},
}


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    config = two_backend_config(fake.url)
    with running_gateway(tmp_path_factory.mktemp("hostile"), config, master_key=MASTER) as server:
        yield server


@pytest.fixture
def http(gateway: GatewayServer) -> Iterator[httpx.Client]:
    headers = {"authorization": f"Bearer {MASTER}", "content-type": "application/json"}
    with httpx.Client(base_url=gateway.url, timeout=10, headers=headers) as session:
        yield session


def assert_refused(response: httpx.Response, route: str, status: int = 400) -> dict[str, Any]:
    """A client error in the route's own shape (Anthropic's on /v1/messages); returns the error."""
    assert response.status_code == status, response.text
    if route.startswith("/v1/messages"):
        body = response.json()
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error", body
        error: dict[str, Any] = body["error"]
        return error
    return assert_error(response, status, type="invalid_request_error")


def nested(depth: int) -> bytes:
    """A JSON value of exactly `depth` nested arrays."""
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("route", JSON_ROUTES)
def test_json_nested_5000_deep_is_a_400(http: httpx.Client, fake: FakeUpstream, route: str) -> None:
    # msgspec gave up with a RecursionError: a 500 (an OpenAI-shaped one even on /v1/messages)
    for body in (nested(5000), b'{"a": ' + nested(5000) + b"}"):
        error = assert_refused(http.post(route, content=body), route)
        assert str(MAX_JSON_DEPTH) in error["message"]
    assert fake.requests == []


@pytest.mark.parametrize("route", JSON_ROUTES)
def test_json_nested_past_the_limit_is_a_400(http: httpx.Client, fake: FakeUpstream, route: str) -> None:
    # deep enough to matter, shallow enough to decode: it used to be forwarded as it was
    fields = dict(JSON_ROUTES[route])
    raw = json.dumps(fields)[:-1].encode()
    raw += (b", " if fields else b"") + b'"metadata": {"deep": ' + nested(MAX_JSON_DEPTH) + b"}}"
    error = assert_refused(http.post(route, content=raw), route)
    assert "deeper" in error["message"]
    assert fake.requests == []


@pytest.mark.parametrize(
    ("route", "field", "value"),
    [
        ("/v1/chat/completions", "max_tokens", 10**30),
        ("/v1/chat/completions", "max_completion_tokens", 2**31),
        ("/v1/chat/completions", "seed", 2**64),
        ("/v1/chat/completions", "n", 10**6),
        ("/v1/chat/completions", "stream_options", {"include_usage": "yes"}),
        ("/v1/chat/completions", "tool_choice", {"function": {"name": "x"}}),
        ("/v1/completions", "max_tokens", 10**30),
        ("/v1/completions", "seed", -(2**64)),
        ("/v1/embeddings", "dimensions", 10**30),
        ("/v1/embeddings", "input", [10**30]),
        ("/v1/messages", "max_tokens", 10**30),
        ("/v1/responses", "max_output_tokens", 10**30),
    ],
)
def test_numbers_out_of_range_are_refused(
    http: httpx.Client, fake: FakeUpstream, route: str, field: str, value: Any
) -> None:
    # msgspec takes any JSON integer as an int: these were forwarded (or failed upstream)
    error = assert_refused(http.post(route, json={**JSON_ROUTES[route], field: value}), route)
    if not route.startswith("/v1/messages"):
        assert error["param"].startswith(field.split(".")[0])
    assert fake.requests == []


@pytest.mark.parametrize("raw", [b'{"model": "m", "n": 1e400}', b'{"model": NaN}', b'{"model": Infinity}'])
@pytest.mark.parametrize("route", JSON_ROUTES)
def test_numbers_json_cannot_hold_are_refused(http: httpx.Client, route: str, raw: bytes) -> None:
    assert_refused(http.post(route, content=raw), route)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"messages": 5}, "messages"),
        ({"messages": [5]}, "messages[0]"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
            "messages[0].content[0].text",
        ),
        ({"system": 5}, "system"),
        ({"system": [{"type": "text"}]}, "system[0].text"),
        ({"tools": 5}, "tools"),
        ({"tools": [{"name": "f", "input_schema": 5}]}, "tools[0].input_schema"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
        ({"thinking": {"type": "enabled", "budget_tokens": "x"}}, "thinking.budget_tokens"),
        ({"stop_sequences": "STOP"}, "stop_sequences"),
        ({"metadata": {"user_id": 5}}, "metadata.user_id"),
        ({"max_tokens": "8"}, "max_tokens"),
        # an object or a list where a value of a fixed set belongs (found by make bench-hostile: a 500)
        ({"messages": [{"role": {}, "content": "Hi"}]}, "messages[0].role"),
        ({"messages": [{"role": ["user"], "content": "Hi"}]}, "messages[0].role"),
    ],
)
def test_messages_body_of_the_wrong_shape(
    http: httpx.Client, fake: FakeUpstream, body: dict[str, Any], where: str
) -> None:
    # a TypeError inside the dialect mapping (a 500), or (system: 5) silently forwarded without it
    answer = http.post("/v1/messages", json={**JSON_ROUTES["/v1/messages"], **body})
    error = assert_refused(answer, "/v1/messages")
    assert error["message"].startswith(f"invalid request: {where}: "), error["message"]
    assert fake.requests == []


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"input": 5}, "input"),
        ({"input": [5]}, "input[0]"),
        ({"input": [{"role": "user", "content": [5]}]}, "input[0].content[0]"),
        ({"input": [{"role": "user", "content": 5}]}, "input[0].content"),
        ({"input": [{"type": "function_call", "call_id": "c", "name": "f"}]}, "input[0].arguments"),
        ({"input": [{"type": "function_call_output", "call_id": "c", "output": 5}]}, "input[0].output"),
        ({"input": "Hi", "tools": [{"type": "function", "name": 5}]}, "tools[0].name"),
        ({"input": "Hi", "tool_choice": 5}, "tool_choice"),
        (
            {"input": "Hi", "text": {"format": {"type": "json_schema", "name": "x", "schema": 5}}},
            "text.format.schema",
        ),
        ({"input": "Hi", "reasoning": {"effort": 5}}, "reasoning.effort"),
        ({"input": "Hi", "reasoning": {"effort": {"a": 1}}}, "reasoning.effort"),
        ({"input": [{"role": {"a": 1}, "content": "Hi"}]}, "input[0].role"),
        ({"input": "Hi", "metadata": {"k": 5}}, "metadata.k"),
        ({"input": "Hi", "previous_response_id": 5}, "previous_response_id"),
    ],
)
def test_responses_body_of_the_wrong_shape(
    http: httpx.Client, fake: FakeUpstream, body: dict[str, Any], where: str
) -> None:
    answer = http.post("/v1/responses", json={**JSON_ROUTES["/v1/responses"], **body})
    error = assert_refused(answer, "/v1/responses")
    assert error["param"] == where, error
    assert fake.requests == []


def test_count_tokens_body_of_the_wrong_shape(http: httpx.Client) -> None:
    answer = http.post("/v1/messages/count_tokens", json={"model": "m", "messages": [{"role": "user"}]})
    error = assert_refused(answer, "/v1/messages")
    assert "messages[0].content" in error["message"]


# ---- a mapping that fails at run time: a 502 that says no more than it must ------------------------

FRAGILE = """
name: fragile
paths: [/fragile]
operation: chat
request:
  model: "{{ request.model }}"
  messages: [{role: user, content: "{{ request.n + 1 }}"}]
response: {ok: true}
error: {problem: "{{ error.message }}", status: "{{ status }}"}
"""


def test_a_failing_mapping_names_no_server_path(tmp_path: Path) -> None:
    mappings = tmp_path / "mappings"
    shutil.copytree(project_path("mappings"), mappings)
    (mappings / "dialects" / "fragile.yaml").write_text(FRAGILE)
    with running_gateway(tmp_path, {"model_list": []}, mappings_dir=mappings) as gateway:
        answer = httpx.post(gateway.url + "/fragile", json={"model": "m", "n": "text"}, timeout=10)
    assert answer.status_code == 502
    body = answer.json()
    assert set(body) == {"problem", "status"}, body  # the dialect's own error shape
    assert str(tmp_path) not in answer.text and "/mappings/" not in answer.text
    assert "Traceback" not in answer.text and "TypeError" not in answer.text
    assert ".yaml" not in answer.text  # where to look is in the log, under the request id
    request_id = answer.headers["x-turnout-request-id"]
    assert body["problem"] == (
        f"the mapping for the fragile dialect failed while translating (request {request_id}); "
        "see the gateway's log"
    )


@pytest.mark.parametrize("route", ["/v1/audio/transcriptions", "/v1/audio/translations"])
def test_an_upload_part_that_is_not_text_is_a_400(http: httpx.Client, fake: FakeUpstream, route: str) -> None:
    # without a filename the part is a form field, which Litestar decodes as UTF-8: a 500 before
    files = {"file": ("", b"\x80\xff", "audio/mpeg")}
    admin = {"authorization": f"Bearer {MASTER}"}  # the fixture's client sends JSON's content type
    answer = httpx.post(f"{http.base_url}{route}", data={"model": OPENAI.alias}, files=files, headers=admin)
    assert assert_refused(answer, route)["param"] == "file"
    assert fake.requests == []


def test_an_answer_nested_too_deep_to_read_is_the_backends_fault(
    http: httpx.Client, fake: FakeUpstream
) -> None:
    # a RecursionError while reading it was the gateway's 500; it is a malformed answer (502)
    fake.add("POST", OPENAI.path, body=b'{"choices": ' + nested(5000) + b"}", content_type="application/json")
    answer = http.post("/v1/chat/completions", json=JSON_ROUTES["/v1/chat/completions"])
    error = assert_error(answer, 502, type="upstream_error", code="upstream_bad_response")
    assert "nested too deep" in error["message"]
