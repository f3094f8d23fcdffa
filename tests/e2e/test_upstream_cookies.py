"""The gateway keeps no cookies: what one upstream answer sets never reaches a later request.

A shared cookie jar would replay one client's upstream session to every other client, and to image
URLs the clients choose. The backends are addressed by name (`localhost`), as cookies for bare IP
addresses are not kept by HTTP clients anyway.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import OLLAMA, OPENAI
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg=="
)
COOKIE = {"set-cookie": "session=upstream-secret; Path=/; Max-Age=3600"}


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    by_name = fake.url.replace("127.0.0.1", "localhost")
    config = {"model_list": [OLLAMA.entry(by_name), OPENAI.entry(by_name)]}
    with running_gateway(tmp_path_factory.mktemp("cookies"), config, image_fetch_allow="localhost") as server:
        yield server


def _chat(gateway: GatewayServer, alias: str, *image_urls: str) -> httpx.Response:
    content: Any = "Hello"
    if image_urls:
        content = [{"type": "image_url", "image_url": {"url": url}} for url in image_urls]
    body = {"model": alias, "messages": [{"role": "user", "content": content}]}
    response = httpx.post(gateway.v1 + "/chat/completions", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response


def test_a_cookie_set_by_a_backend_is_not_sent_back(gateway: GatewayServer, fake: FakeUpstream) -> None:
    answer = OPENAI.answer(fake, "simple")
    fake.add("POST", OPENAI.path, json=answer, headers=COOKIE, times=1)
    _chat(gateway, OPENAI.alias)
    _chat(gateway, OPENAI.alias)
    first, second = fake.requests
    assert "cookie" not in first.headers and "cookie" not in second.headers


def test_image_fetches_carry_no_cookie(gateway: GatewayServer, fake: FakeUpstream) -> None:
    by_name = fake.url.replace("127.0.0.1", "localhost")
    answer = OLLAMA.answer(fake, "vision")
    fake.add("POST", OLLAMA.path, json=answer, headers=COOKIE, times=1)  # the chat itself sets one
    fake.add("GET", "/a.png", body=PNG, content_type="image/png", headers=COOKIE)
    fake.add("GET", "/b.png", body=PNG, content_type="image/png")
    _chat(gateway, OLLAMA.alias, f"{by_name}/a.png")
    _chat(gateway, OLLAMA.alias, f"{by_name}/b.png")
    assert [(r.method, r.path) for r in fake.requests] == [
        ("GET", "/a.png"),
        ("POST", "/api/chat"),
        ("GET", "/b.png"),
        ("POST", "/api/chat"),
    ]
    assert [r.headers.get("cookie") for r in fake.requests] == [None] * 4
