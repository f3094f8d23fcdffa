"""The master key: from the config (literal or `os.environ/NAME`), required on the API, not on /health."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import OLLAMA, assert_error, two_backend_config
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway
from tests.support.sdk_types import openai_client

KEY = "sk-test"
HI: list[Any] = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    config = two_backend_config(fake.url, general_settings={"master_key": KEY})
    with running_gateway(tmp_path_factory.mktemp("auth"), config) as server:
        yield server


def _sdk(gateway: GatewayServer, key: str) -> openai.OpenAI:
    return openai_client(gateway.v1, key)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/chat/completions"])
def test_no_key(http: httpx.Client, fake: FakeUpstream, path: str) -> None:
    response = http.post(path, json={"model": OLLAMA.alias, "messages": HI})
    assert_error(response, 401, type="authentication_error", code="missing_api_key")
    assert fake.requests == []


@pytest.mark.parametrize(
    "headers",
    [{"authorization": "Bearer sk-wrong"}, {"x-api-key": "sk-wrong"}, {"authorization": f"Basic {KEY}"}],
    ids=["bearer", "x-api-key", "basic"],
)
def test_wrong_key(http: httpx.Client, headers: dict[str, str]) -> None:
    response = http.post(
        "/v1/chat/completions", json={"model": OLLAMA.alias, "messages": HI}, headers=headers
    )
    error = assert_error(response, 401, type="authentication_error")
    assert KEY not in error["message"] and "sk-wrong" not in error["message"]


def test_sdk_with_wrong_key(gateway: GatewayServer) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        _sdk(gateway, "sk-wrong").chat.completions.create(model=OLLAMA.alias, messages=HI)
    assert caught.value.status_code == 401
    with pytest.raises(openai.AuthenticationError):
        _sdk(gateway, "sk-wrong").models.list()


def test_right_key(gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream) -> None:
    OLLAMA.answer(fake, "simple")
    answer = _sdk(gateway, KEY).chat.completions.create(model=OLLAMA.alias, messages=HI)
    assert answer.choices[0].message.content
    assert "authorization" not in fake.last.headers  # the client's key is not the backend's
    response = http.get("/v1/models", headers={"x-api-key": KEY})
    assert response.status_code == 200


def test_models_need_the_key(http: httpx.Client) -> None:
    assert_error(http.get("/v1/models"), 401, type="authentication_error")


@pytest.mark.parametrize("path", ["/health", "/health/liveness", "/health/readiness"])
def test_health_needs_no_key(http: httpx.Client, path: str) -> None:
    assert http.get(path).status_code == 200


def test_key_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: FakeUpstream
) -> None:
    monkeypatch.setenv("E2E_GATEWAY_KEY", "sk-from-env")
    config = two_backend_config(fake.url, general_settings={"master_key": "os.environ/E2E_GATEWAY_KEY"})
    OLLAMA.answer(fake, "simple")
    with running_gateway(tmp_path, config) as gateway:
        with pytest.raises(openai.AuthenticationError):
            _sdk(gateway, "os.environ/E2E_GATEWAY_KEY").chat.completions.create(
                model=OLLAMA.alias, messages=HI
            )
        answer = _sdk(gateway, "sk-from-env").chat.completions.create(model=OLLAMA.alias, messages=HI)
        assert answer.choices[0].message.content
        assert httpx.get(gateway.url + "/health").status_code == 200
