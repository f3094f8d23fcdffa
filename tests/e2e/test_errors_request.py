"""Errors the gateway finds in the client's request: OpenAI-style bodies, SDK exception classes."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import OLLAMA, Backend, assert_error
from tests.fakes import FakeUpstream

HI: list[Any] = [{"role": "user", "content": "Hi"}]


def test_unknown_alias(http: httpx.Client, client: openai.OpenAI, fake: FakeUpstream) -> None:
    response = http.post("/v1/chat/completions", json={"model": "no-such-model", "messages": HI})
    error = assert_error(response, 404, type="invalid_request_error", code="model_not_found")
    assert error["param"] == "model" and "no-such-model" in error["message"]
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="no-such-model", messages=HI)
    assert caught.value.code == "model_not_found"
    assert fake.requests == []


def test_invalid_json_body(http: httpx.Client) -> None:
    response = http.post(
        "/v1/chat/completions",
        content=b'{"model": "x", "messages": [',
        headers={"content-type": "application/json"},
    )
    error = assert_error(response, 400, type="invalid_request_error", code="invalid_json")
    assert "JSON" in error["message"]


def test_body_that_is_not_an_object(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=["model", "messages"])
    assert_error(response, 400, type="invalid_request_error")


def test_missing_messages(http: httpx.Client, client: openai.OpenAI) -> None:
    response = http.post("/v1/chat/completions", json={"model": OLLAMA.alias})
    error = assert_error(response, 400, type="invalid_request_error")
    assert error["param"] == "messages" and "messages" in error["message"]


def test_empty_messages(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json={"model": OLLAMA.alias, "messages": []})
    assert assert_error(response, 400)["param"] == "messages"


@pytest.mark.parametrize(
    ("field", "value"),
    [("temperature", 5), ("top_p", 1.5), ("max_tokens", 0), ("presence_penalty", -3), ("stream", "yes")],
)
def test_out_of_range_or_mistyped_field(
    http: httpx.Client, client: openai.OpenAI, fake: FakeUpstream, backend: Backend, field: str, value: Any
) -> None:
    response = http.post("/v1/chat/completions", json={"model": backend.alias, "messages": HI, field: value})
    error = assert_error(response, 400, type="invalid_request_error")
    assert error["param"] == field
    assert fake.requests == []


def test_sdk_raises_bad_request_for_temperature(client: openai.OpenAI, backend: Backend) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=backend.alias, messages=HI, temperature=5)
    assert caught.value.status_code == 400 and caught.value.param == "temperature"


def test_bad_message_role(http: httpx.Client) -> None:
    body = {"model": OLLAMA.alias, "messages": [{"role": "wizard", "content": "Hi"}]}
    error = assert_error(http.post("/v1/chat/completions", json=body), 400)
    assert error["param"] is not None and error["param"].startswith("messages[0]")


def test_unknown_route(http: httpx.Client) -> None:
    for path in ("/v1/nothing-here", "/v2/chat/completions"):
        assert_error(http.get(path), 404, type="not_found_error")


def test_wrong_method(http: httpx.Client) -> None:
    response = http.get("/v1/chat/completions")
    assert_error(response, 405, code="method_not_allowed")
