"""Stored responses belong to the key that made them, and expire.

A gateway with a master key and two virtual keys: a response stored under one key cannot be continued
by another (nor by the master key, whose own space is apart), and an id of another key's response is
answered exactly like an unknown id, so the answer tells nothing of what exists. A stored response
lives `stored_response_ttl` seconds (30 days by default), measured on a clock the test moves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import golden_stream
from tests.fakes import FakeUpstream
from tests.support import FakeClock, GatewayServer, running_gateway

MODEL = "store-model"
PATH = "/v1/chat/completions"
MASTER = "sk-tenancy-master"
ADMIN = {"authorization": f"Bearer {MASTER}"}
DAY = 86400.0


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def gateway(
    fake: FakeUpstream, clock: FakeClock, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayServer]:
    params = {"model": "openai/test-model", "api_base": fake.url + "/v1"}
    config = {"model_list": [{"model_name": MODEL, "litellm_params": params}]}
    config["general_settings"] = {"master_key": MASTER}  # type: ignore[assignment]
    with running_gateway(tmp_path_factory.mktemp("tenancy"), config, clock=clock) as server:
        yield server


def _generate(gateway: GatewayServer) -> str:
    response = httpx.post(gateway.url + "/key/generate", json={}, headers=ADMIN, timeout=10)
    assert response.status_code == 200, response.text
    key: str = response.json()["key"]
    return key


@pytest.fixture(scope="module")
def keys(gateway: GatewayServer) -> tuple[str, str]:
    return _generate(gateway), _generate(gateway)


def _answer(fake: FakeUpstream, content: str) -> None:
    message = {"role": "assistant", "content": content}
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1735732800,
        "model": "test-model",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
    fake.add("POST", PATH, json=body, times=1)


def _respond(gateway: GatewayServer, key: str, **body: Any) -> httpx.Response:
    return httpx.post(
        gateway.v1 + "/responses",
        json={"model": MODEL, **body},
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )


def _stored(gateway: GatewayServer, fake: FakeUpstream, key: str, text: str = "Remember 42.") -> str:
    _answer(fake, "Noted.")
    response = _respond(gateway, key, input=text)
    assert response.status_code == 200, response.text
    response_id: str = response.json()["id"]
    return response_id


def _not_found(response: httpx.Response, response_id: str) -> None:
    """The API's answer for an id it does not know, word for word."""
    assert response.status_code == 400, response.text
    assert response.json() == {
        "error": {
            "message": f"Previous response with id '{response_id}' not found.",
            "type": "invalid_request_error",
            "param": "previous_response_id",
            "code": "previous_response_not_found",
        }
    }


def _posts(fake: FakeUpstream) -> int:
    return len([r for r in fake.requests if r.method == "POST"])


def test_a_response_is_continued_by_its_own_key_only(
    gateway: GatewayServer, fake: FakeUpstream, keys: tuple[str, str]
) -> None:
    owner, other = keys
    kept = _stored(gateway, fake, owner)
    unknown = "resp_" + "0" * 32

    # another key: the same answer as for an id that was never stored, and nothing reaches the backend
    _not_found(_respond(gateway, other, input="What number?", previous_response_id=kept), kept)
    _not_found(_respond(gateway, other, input="What number?", previous_response_id=unknown), unknown)
    assert _posts(fake) == 1

    _answer(fake, "42.")
    continued = _respond(gateway, owner, input="What number?", previous_response_id=kept)
    assert continued.status_code == 200, continued.text
    assert [m["content"] for m in fake.last.json["messages"]] == ["Remember 42.", "Noted.", "What number?"]


def test_the_master_key_has_a_space_of_its_own(
    gateway: GatewayServer, fake: FakeUpstream, keys: tuple[str, str]
) -> None:
    virtual, _ = keys
    of_key = _stored(gateway, fake, virtual)
    of_master = _stored(gateway, fake, MASTER)
    _not_found(_respond(gateway, MASTER, input="and?", previous_response_id=of_key), of_key)
    _not_found(_respond(gateway, virtual, input="and?", previous_response_id=of_master), of_master)
    assert _posts(fake) == 2

    _answer(fake, "42.")
    assert _respond(gateway, MASTER, input="and?", previous_response_id=of_master).status_code == 200


def test_the_sdk_sees_another_keys_response_as_not_found(
    gateway: GatewayServer, fake: FakeUpstream, keys: tuple[str, str]
) -> None:
    owner, other = keys
    kept = _stored(gateway, fake, owner)
    client = openai.OpenAI(base_url=gateway.v1, api_key=other, max_retries=0, timeout=10)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, input="and?", previous_response_id=kept)
    assert caught.value.code == "previous_response_not_found"


def test_a_stored_response_lives_thirty_days_by_default(
    gateway: GatewayServer, fake: FakeUpstream, clock: FakeClock, keys: tuple[str, str]
) -> None:
    owner, _ = keys
    kept = _stored(gateway, fake, owner)
    second = _stored(gateway, fake, owner)
    clock.advance(30 * DAY - 1)
    _answer(fake, "Still here.")
    assert _respond(gateway, owner, input="and?", previous_response_id=second).status_code == 200
    clock.advance(2)
    _not_found(_respond(gateway, owner, input="and?", previous_response_id=kept), kept)
    _not_found(_respond(gateway, owner, input="and?", previous_response_id=second), second)


def test_a_streamed_response_belongs_to_its_key_too(
    gateway: GatewayServer, fake: FakeUpstream, keys: tuple[str, str]
) -> None:
    owner, other = keys
    fake.add("POST", PATH, stream=golden_stream("openai", "stream_text"), times=1)
    with openai.OpenAI(base_url=gateway.v1, api_key=owner, max_retries=0, timeout=10) as client:
        final = list(client.responses.create(model=MODEL, input="Hello", stream=True))[-1]
    assert final.type == "response.completed"
    kept = final.response.id
    _not_found(_respond(gateway, other, input="and?", previous_response_id=kept), kept)
    _answer(fake, "You said hello.")
    assert _respond(gateway, owner, input="and?", previous_response_id=kept).status_code == 200
