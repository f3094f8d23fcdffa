"""Images: Ollama gets base64 (remote URLs fetched by the gateway); OpenAI-compatible gets URLs untouched.

The fake serving the images listens on loopback, which the gateway refuses by default
(test_image_guard.py): these gateways allow it, as an operator allows an internal image server.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import OLLAMA, OPENAI, Backend, assert_error, two_backend_config
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway
from tests.support.sdk_types import openai_client

# a 1x1 white PNG
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg=="
)
PIXEL_B64 = base64.b64encode(PNG).decode()


LOOPBACK_ALLOWED = "127.0.0.1"


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    config = two_backend_config(fake.url)
    with running_gateway(
        tmp_path_factory.mktemp("vision"), config, image_fetch_allow=LOOPBACK_ALLOWED
    ) as server:
        yield server


def _question(*urls: str) -> list[Any]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": "Describe these images."}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    return [{"role": "user", "content": parts}]


def test_data_and_http_images(client: openai.OpenAI, fake: FakeUpstream, backend: Backend) -> None:
    fake.add("GET", "/cat.png", body=PNG, content_type="image/png")
    backend.answer(fake, "vision")
    data_url = f"data:image/png;base64,{PIXEL_B64}"
    http_url = f"{fake.url}/cat.png"
    answer = client.chat.completions.create(model=backend.alias, messages=_question(data_url, http_url))
    assert answer.choices[0].message.content is not None and "cat" in answer.choices[0].message.content
    sent = fake.last.json["messages"][0]
    fetched = [r for r in fake.requests if r.method == "GET"]
    if backend.is_ollama:
        assert sent["content"] == "Describe these images."
        assert sent["images"] == [PIXEL_B64, PIXEL_B64]
        assert [r.path for r in fetched] == ["/cat.png"]
    else:
        urls = [p["image_url"]["url"] for p in sent["content"] if p["type"] == "image_url"]
        assert urls == [data_url, http_url]
        assert fetched == []  # the gateway does not fetch what the backend fetches itself


def test_image_that_404s_is_named_by_its_position(http: httpx.Client, fake: FakeUpstream) -> None:
    fake.add("GET", "/cat.png", body=PNG, content_type="image/png")
    missing = f"{fake.url}/missing.png"
    body = {"model": OLLAMA.alias, "messages": _question(f"{fake.url}/cat.png", missing)}
    response = http.post("/v1/chat/completions", json=body)
    error = assert_error(response, 400, type="invalid_request_error", code="invalid_image_url")
    assert error["message"] == "image 2 could not be fetched"  # not the status: errors map nothing out
    assert error["param"] == "messages"
    assert [r.method for r in fake.requests] == ["GET", "GET"]  # the chat never went upstream


def test_not_an_image_is_refused(http: httpx.Client, fake: FakeUpstream) -> None:
    fake.add("GET", "/page.html", body="<html></html>", content_type="text/html")
    response = http.post(
        "/v1/chat/completions", json={"model": OLLAMA.alias, "messages": _question(f"{fake.url}/page.html")}
    )
    assert "not an image" in assert_error(response, 400)["message"]


@pytest.fixture(scope="module")
def small_limit_gateway(
    fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayServer]:
    config = two_backend_config(fake.url)
    with running_gateway(
        tmp_path_factory.mktemp("small"),
        config,
        image_fetch_max_bytes=100,
        image_fetch_allow=LOOPBACK_ALLOWED,
    ) as server:
        yield server


def test_image_over_the_limit(small_limit_gateway: GatewayServer, fake: FakeUpstream) -> None:
    big = f"{fake.url}/big.png"
    fake.add("GET", "/big.png", body=PNG + b"\0" * 200, content_type="image/png")
    client = openai_client(small_limit_gateway.v1, "unused")
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=OLLAMA.alias, messages=_question(big))
    assert caught.value.status_code == 400
    assert "image 1 is larger than 100 bytes" in caught.value.message
    assert not [r for r in fake.requests if r.method == "POST"]


def test_small_image_under_the_limit(small_limit_gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.add("GET", "/cat.png", body=PNG, content_type="image/png")
    OLLAMA.answer(fake, "vision")
    client = openai_client(small_limit_gateway.v1, "unused")
    client.chat.completions.create(model=OLLAMA.alias, messages=_question(f"{fake.url}/cat.png"))
    assert fake.last.json["messages"][0]["images"] == [PIXEL_B64]


def test_openai_backend_is_not_limited(small_limit_gateway: GatewayServer, fake: FakeUpstream) -> None:
    OPENAI.answer(fake, "vision")
    url = f"{fake.url}/big.png"
    client = openai_client(small_limit_gateway.v1, "unused")
    client.chat.completions.create(model=OPENAI.alias, messages=_question(url))
    assert fake.last.json["messages"][0]["content"][1]["image_url"]["url"] == url
