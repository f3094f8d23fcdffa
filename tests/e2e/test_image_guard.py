"""Image URLs the gateway fetches itself (for backends that take images only inline): what it refuses.

By default nothing private is fetched: loopback, private, link-local, metadata and other special
addresses, however the URL spells them, are refused before any connection, and the error says only
which image was refused. The fake upstream listens on loopback, so every test here that reaches it
proves the refusal; the allow-list (`image_fetch_allow`) lets an operator's internal server through.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import OLLAMA, assert_error, two_backend_config
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway
from tests.support.server import free_port

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg=="
)
PIXEL_B64 = base64.b64encode(PNG).decode()
GEMINI = "gemini-model"
ANTHROPIC = "anthropic-model"
INLINING = [OLLAMA.alias, GEMINI]  # the backends for which the gateway fetches images itself


def _config(url: str) -> dict[str, Any]:
    gemini = {
        "model_name": GEMINI,
        "litellm_params": {"model": "gemini/gemini-x", "api_base": url + "/v1beta", "api_key": "g-key"},
    }
    anthropic = {
        "model_name": ANTHROPIC,
        "litellm_params": {"model": "anthropic/claude-x", "api_base": url, "api_key": "a-key"},
    }
    return two_backend_config(url, gemini, anthropic)


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """Default settings: no allow-list (a short connect timeout only keeps a failing run quick)."""
    with running_gateway(tmp_path_factory.mktemp("guard"), _config(fake.url), connect_timeout=2) as server:
        yield server


@pytest.fixture(scope="module")
def allowing(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """Loopback allowed (an operator's internal image server), with small per-request caps."""
    with running_gateway(
        tmp_path_factory.mktemp("allowing"),
        _config(fake.url),
        image_fetch_allow="127.0.0.0/8",
        image_fetch_max_images=2,
        image_fetch_max_total_bytes=3 * len(PNG) // 2,
    ) as server:
        yield server


def _chat(base: str, alias: str, *urls: str) -> httpx.Response:
    parts: list[dict[str, Any]] = [{"type": "text", "text": "Describe these images."}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    body = {"model": alias, "messages": [{"role": "user", "content": parts}]}
    return httpx.post(base + "/v1/chat/completions", json=body, timeout=30)


def _port(fake: FakeUpstream) -> int:
    return int(fake.url.rsplit(":", 1)[1])


# Spellings of the fake's own loopback address (the list first), and other internal places.
LOOPBACK = [
    "http://127.0.0.1:{port}/cat.png",
    "http://localhost:{port}/cat.png",
    "http://[::1]:{port}/cat.png",
    "http://0x7f000001:{port}/cat.png",
    "http://[::ffff:127.0.0.1]:{port}/cat.png",
    "http://user@127.0.0.1:{port}/cat.png",
    "http://user:secret@localhost:{port}/cat.png",
    "HTTP://127.0.0.1:{port}/cat.png",
    "http://LocalHost:{port}/cat.png",
    "http://2130706433:{port}/cat.png",
    "http://0177.0.0.1:{port}/cat.png",
    "http://127.1:{port}/cat.png",
    "http://127.0.0.1.:{port}/cat.png",
    "http://0.0.0.0:{port}/cat.png",
    "http://[::]:{port}/cat.png",
    "http://[::ffff:7f00:1]:{port}/cat.png",
    "http://[64:ff9b::7f00:1]:{port}/cat.png",
    "http://[2002:7f00:1::]:{port}/cat.png",
]
INTERNAL = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/cat.png",
    "http://10.0.0.1/cat.png",
    "http://172.16.0.1/cat.png",
    "http://192.168.0.1/cat.png",
    "http://100.64.0.1/cat.png",
    "http://[fd00::1]/cat.png",
    "http://224.0.0.1/cat.png",
    "http://255.255.255.255/cat.png",
]


def _assert_refused(response: httpx.Response, position: int = 1) -> str:
    error = assert_error(response, 400, type="invalid_request_error")
    message: str = error["message"]
    assert f"image {position} " in message and "refused" in message, message
    assert error["param"] == "messages"
    for revealing in ("127.0.0.1", "::1", "169.254", "Error", "HTTP "):
        assert revealing not in message, message
    return message


@pytest.mark.parametrize("alias", INLINING)
@pytest.mark.parametrize("template", LOOPBACK)
def test_loopback_is_refused_however_spelled(
    gateway: GatewayServer, fake: FakeUpstream, alias: str, template: str
) -> None:
    fake.add("GET", "/cat.png", body=PNG, content_type="image/png")
    response = _chat(gateway.url, alias, template.format(port=_port(fake)))
    message = _assert_refused(response)
    assert str(_port(fake)) not in message
    assert fake.requests == []  # nothing was fetched, and the chat never went upstream


@pytest.mark.parametrize("alias", INLINING)
@pytest.mark.parametrize("url", INTERNAL)
def test_private_link_local_and_metadata_addresses_are_refused(
    gateway: GatewayServer, fake: FakeUpstream, alias: str, url: str
) -> None:
    _assert_refused(_chat(gateway.url, alias, url))
    assert fake.requests == []


def test_errors_do_not_tell_an_open_port_from_a_closed_one(
    gateway: GatewayServer, fake: FakeUpstream
) -> None:
    fake.add("GET", "/cat.png", body=PNG, content_type="image/png")
    open_port = _chat(gateway.url, OLLAMA.alias, f"http://127.0.0.1:{_port(fake)}/cat.png")
    closed_port = _chat(gateway.url, OLLAMA.alias, f"http://127.0.0.1:{free_port()}/cat.png")
    missing = _chat(gateway.url, OLLAMA.alias, f"http://127.0.0.1:{_port(fake)}/missing.png")
    assert _assert_refused(open_port) == _assert_refused(closed_port) == _assert_refused(missing)


def test_a_refused_image_is_not_the_deployments_failure(gateway: GatewayServer, fake: FakeUpstream) -> None:
    """The client's mistake: the deployment's last_error and failure count stay as they were."""
    _assert_refused(_chat(gateway.url, OLLAMA.alias, f"http://127.0.0.1:{_port(fake)}/cat.png"))
    rows = httpx.get(gateway.url + "/turnout/deployments", timeout=10).json()["data"]
    row = next(row for row in rows if row["alias"] == OLLAMA.alias)
    assert row["last_error"] is None, row


def test_the_refused_image_is_named_by_its_position(gateway: GatewayServer, fake: FakeUpstream) -> None:
    data_url = f"data:image/png;base64,{PIXEL_B64}"
    response = _chat(gateway.url, OLLAMA.alias, data_url, f"http://localhost:{_port(fake)}/cat.png")
    _assert_refused(response, position=2)


BAD_URLS = [
    "file:///etc/passwd",
    "FILE:///etc/passwd",
    "ftp://example.com/cat.png",
    "gopher://127.0.0.1:6379/_INFO",
    "javascript:alert(1)",
    "//example.com/cat.png",
    "cat.png",
    "",
    "data:image/png,notbase64",
    "data:image/png;base64",
    "DATA:image/png;base64," + PIXEL_B64,
    "http://",
    "http://[::1/cat.png",
    "http://exa mple.com/cat.png",
]


# a backend that takes image URLs itself gets them as they are (what it accepts is its own business),
# but a data: URL it is given inline must still be well formed
CASES = [(alias, url) for alias in INLINING for url in BAD_URLS]
CASES += [(ANTHROPIC, url) for url in BAD_URLS if url.startswith("data:")]


@pytest.mark.parametrize(("alias", "url"), CASES)
def test_other_schemes_and_malformed_urls_are_a_400(
    gateway: GatewayServer, fake: FakeUpstream, alias: str, url: str
) -> None:
    error = assert_error(_chat(gateway.url, alias, url), 400, type="invalid_request_error")
    assert "image 1" in error["message"] or "data: URL" in error["message"], error["message"]
    assert error["param"] == "messages"
    assert fake.requests == []


def test_the_allow_list_lets_an_internal_image_server_through(
    allowing: GatewayServer, fake: FakeUpstream
) -> None:
    fake.add("GET", "/cat.png", body=PNG, content_type="image/png")
    OLLAMA.answer(fake, "vision")
    response = _chat(allowing.url, OLLAMA.alias, f"http://localhost:{_port(fake)}/cat.png")
    assert response.status_code == 200, response.text
    assert fake.last.json["messages"][0]["images"] == [PIXEL_B64]


def test_urls_with_credentials_are_refused_even_when_allowed(
    allowing: GatewayServer, fake: FakeUpstream
) -> None:
    fake.add("GET", "/cat.png", body=PNG, content_type="image/png")
    message = _assert_refused(
        _chat(allowing.url, OLLAMA.alias, f"http://u:p@127.0.0.1:{_port(fake)}/cat.png")
    )
    assert "credentials" in message
    assert fake.requests == []


def test_redirects_are_not_followed(allowing: GatewayServer, fake: FakeUpstream) -> None:
    fake.add("GET", "/moved.png", status=302, headers={"location": "http://169.254.169.254/latest/"})
    response = _chat(allowing.url, OLLAMA.alias, f"{fake.url}/moved.png")
    error = assert_error(response, 400, type="invalid_request_error")
    assert error["message"] == "image 1 could not be fetched"
    assert [r.path for r in fake.requests] == ["/moved.png"]


def test_a_failed_fetch_does_not_say_why(allowing: GatewayServer, fake: FakeUpstream) -> None:
    missing = _chat(allowing.url, OLLAMA.alias, f"{fake.url}/missing.png")
    closed = _chat(allowing.url, OLLAMA.alias, f"http://127.0.0.1:{free_port()}/cat.png")
    assert assert_error(missing, 400)["message"] == assert_error(closed, 400)["message"]
    assert assert_error(missing, 400)["message"] == "image 1 could not be fetched"


def test_too_many_images_are_refused_before_any_fetch(allowing: GatewayServer, fake: FakeUpstream) -> None:
    fake.add("GET", "/cat.png", body=PNG, content_type="image/png")
    url = f"{fake.url}/cat.png"
    error = assert_error(_chat(allowing.url, GEMINI, url, url, url), 400, type="invalid_request_error")
    assert "at most 2" in error["message"], error["message"]
    assert error["code"] == "too_many_images"
    assert fake.requests == []


def test_the_images_of_one_request_are_capped_in_bytes(allowing: GatewayServer, fake: FakeUpstream) -> None:
    fake.add("GET", "/cat.png", body=PNG, content_type="image/png")
    url = f"{fake.url}/cat.png"
    error = assert_error(_chat(allowing.url, OLLAMA.alias, url, url), 400, type="invalid_request_error")
    limit = 3 * len(PNG) // 2
    assert f"{limit} bytes" in error["message"], error["message"]
    assert error["code"] == "images_too_large"
    assert not [r for r in fake.requests if r.method == "POST"]  # the chat never went upstream


def test_images_within_the_caps_are_fetched(allowing: GatewayServer, fake: FakeUpstream) -> None:
    fake.add("GET", "/cat.png", body=PNG, content_type="image/png")
    OLLAMA.answer(fake, "vision")
    response = _chat(allowing.url, OLLAMA.alias, f"{fake.url}/cat.png", f"data:image/png;base64,{PIXEL_B64}")
    assert response.status_code == 200, response.text
    assert fake.last.json["messages"][0]["images"] == [PIXEL_B64, PIXEL_B64]
