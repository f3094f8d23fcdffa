"""A client that goes away ends its call at once, wherever the exchange was: the upstream connection is
closed, the request log gets one 499 row, and the key's parallel slot and the router's in-flight count
are free again (256 abandoned calls used to hold them until the upstream timeout, 600 s by default).

The client here is a bare socket that sends its request and closes, as a client that gives up does.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from engine.store.request_log import RequestLogRow
from tests.e2e.conftest import golden_json, golden_stream
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway
from tests.support.request_log import request_log_db

MASTER = "sk-master"
ADMIN = {"authorization": f"Bearer {MASTER}"}
HI: list[Any] = [{"role": "user", "content": "Hi"}]
# one alias per point of the exchange, each at a path of its own on the fake upstream
ALIASES = ("answer", "body", "headers", "midstream", "backoff", "broken", "fallback", "messages", "fine")


def _path(alias: str) -> str:
    return f"/{alias}/v1/chat/completions"


def _entry(alias: str, upstream: str) -> dict[str, Any]:
    return {
        "model_name": alias,
        "litellm_params": {"model": "openai/test-model", "api_base": f"{upstream}/{alias}/v1"},
    }


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    config = {
        "model_list": [_entry(alias, fake.url) for alias in ALIASES],
        # one retry: a 503 with retry-after: 30 makes the gateway wait (the longest backoff, 10 s)
        "router_settings": {"num_retries": 1, "fallbacks": [{"broken": ["fallback"]}]},
        "general_settings": {"master_key": MASTER},
    }
    with running_gateway(
        tmp_path_factory.mktemp("abandoned"), config, usage_flush_interval=0.05, key_refresh_interval=0
    ) as server:
        yield server


@pytest.fixture(scope="module")
def db(gateway: GatewayServer) -> Iterator[Engine]:
    with request_log_db(gateway) as engine:
        yield engine


@pytest.fixture
def key(gateway: GatewayServer) -> str:
    """A fresh key that may have one request in progress at a time."""
    answer = httpx.post(
        gateway.url + "/key/generate", json={"max_parallel_requests": 1}, headers=ADMIN, timeout=10
    )
    assert answer.status_code == 200, answer.text
    value: str = answer.json()["key"]
    return value


def _until(condition: Callable[[], object], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.02)


@contextmanager
def _client(
    gateway: GatewayServer, key: str, body: dict[str, Any], route: str = "/v1/chat/completions"
) -> Iterator[socket.socket]:
    """Send a request on a bare socket; leaving the block closes it, whatever has come back."""
    where = urlsplit(gateway.url)
    payload = json.dumps(body).encode()
    head = (
        f"POST {route} HTTP/1.1\r\nhost: {where.netloc}\r\n"
        f"authorization: Bearer {key}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\n\r\n"
    )
    sock = socket.create_connection((where.hostname, where.port), timeout=10)
    try:
        sock.sendall(head.encode() + payload)
        yield sock
    finally:
        sock.close()


def _asked(fake: FakeUpstream, alias: str) -> Callable[[], bool]:
    return lambda: any(r.path == _path(alias) for r in fake.requests)


def _abandoned_rows(db: Engine, alias: str) -> int:
    with db.connect() as connection:
        found = connection.execute(
            select(func.count())
            .select_from(RequestLogRow.__table__)
            .where(RequestLogRow.alias == alias, RequestLogRow.status == 499)
        ).scalar_one()
    return int(found)


def _assert_released(
    gateway: GatewayServer, db: Engine, key: str, fake: FakeUpstream, alias: str, *tried: str
) -> None:
    """One 499 row; no deployment tried still counts the call in flight; the key may call again at once."""
    _until(lambda: _abandoned_rows(db, alias) == 1, f"a 499 row for {alias}")
    table = gateway.gateway.table
    router = gateway.gateway.router
    deployments = [d for name in (alias, *tried) for d in table.get(name).deployments]
    busy = {d.alias: router.stats(d).inflight for d in deployments}
    assert not any(busy.values()), f"deployments still counted in flight: {busy}"
    fake.add("POST", _path("fine"), json=golden_json("openai", "simple.response.json"))
    again = httpx.post(
        gateway.v1 + "/chat/completions",
        json={"model": "fine", "messages": HI},
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert again.status_code == 200, f"the key's parallel slot is still taken: {again.text}"


def test_leaving_while_the_answer_is_awaited(
    gateway: GatewayServer, fake: FakeUpstream, db: Engine, key: str
) -> None:
    fake.add("POST", _path("answer"), hang=True)
    with _client(gateway, key, {"model": "answer", "messages": HI}):
        _until(_asked(fake, "answer"), "the upstream request")
    assert fake.wait_for_disconnect(5), "the upstream call went on after the client left"
    _assert_released(gateway, db, key, fake, "answer")


def test_leaving_while_the_answer_comes_in(
    gateway: GatewayServer, fake: FakeUpstream, db: Engine, key: str
) -> None:
    """Half an answer read: the connection must be closed, never returned to the pool half-read."""
    halves = [b'{"id": "chatcmpl-1", "object": ', b'"chat.completion"}']
    fake.add("POST", _path("body"), stream=halves, chunk_delay=60, content_type="application/json")
    with _client(gateway, key, {"model": "body", "messages": HI}):
        _until(_asked(fake, "body"), "the upstream request")
    assert fake.wait_for_disconnect(5), "the upstream answer was still being read after the client left"
    _assert_released(gateway, db, key, fake, "body")


def test_leaving_while_the_stream_awaits_its_headers(
    gateway: GatewayServer, fake: FakeUpstream, db: Engine, key: str
) -> None:
    fake.add("POST", _path("headers"), hang=True)
    with _client(gateway, key, {"model": "headers", "messages": HI, "stream": True}):
        _until(_asked(fake, "headers"), "the upstream request")
    assert fake.wait_for_disconnect(5), "the upstream call went on after the client left"
    _assert_released(gateway, db, key, fake, "headers")


def test_leaving_mid_stream(gateway: GatewayServer, fake: FakeUpstream, db: Engine, key: str) -> None:
    first = golden_stream("openai", "stream_text")[0]
    fake.add("POST", _path("midstream"), stream=[first] * 3, chunk_delay=60)  # the rest never comes
    with _client(gateway, key, {"model": "midstream", "messages": HI, "stream": True}) as sock:
        received = b""
        while b"data:" not in received:
            data = sock.recv(65536)
            assert data, "the gateway closed the stream"
            received += data
    assert fake.wait_for_disconnect(5), "the upstream stream went on after the client left"
    _assert_released(gateway, db, key, fake, "midstream")


def test_leaving_during_a_retry_backoff(
    gateway: GatewayServer, fake: FakeUpstream, db: Engine, key: str
) -> None:
    busy = {"error": {"message": "busy", "type": "server_error"}}
    fake.add("POST", _path("backoff"), hang=True)  # the retry, if it ever came
    fake.add("POST", _path("backoff"), status=503, json=busy, headers={"retry-after": "30"}, times=1)
    deployment = gateway.gateway.table.get("backoff").deployments[0]
    router = gateway.gateway.router
    failed = router.stats(deployment).failed
    with _client(gateway, key, {"model": "backoff", "messages": HI}):
        _until(lambda: router.stats(deployment).failed > failed, "the first try to fail")
    _assert_released(gateway, db, key, fake, "backoff")
    assert len(fake.requests) == 2, "the retry went out after the client left"  # the call, and `fine`


def test_leaving_during_a_fallback(gateway: GatewayServer, fake: FakeUpstream, db: Engine, key: str) -> None:
    fake.add("POST", _path("broken"), status=503, json={"error": {"message": "down"}})
    fake.add("POST", _path("fallback"), hang=True)
    with _client(gateway, key, {"model": "broken", "messages": HI}):
        _until(_asked(fake, "fallback"), "the fallback's upstream request")
    assert fake.wait_for_disconnect(5), "the fallback's upstream call went on after the client left"
    _assert_released(gateway, db, key, fake, "broken", "fallback")


def test_leaving_a_dialect_call(gateway: GatewayServer, fake: FakeUpstream, db: Engine, key: str) -> None:
    fake.add("POST", _path("messages"), hang=True)
    body = {"model": "messages", "max_tokens": 5, "messages": HI}
    with _client(gateway, key, body, "/v1/messages"):
        _until(_asked(fake, "messages"), "the upstream request")
    assert fake.wait_for_disconnect(5), "the upstream call went on after the client left"
    _assert_released(gateway, db, key, fake, "messages")


def test_answers_the_client_waited_for_are_not_cancelled(
    gateway: GatewayServer, fake: FakeUpstream, db: Engine, key: str
) -> None:
    """The watch for a leaving client ends with the answer: keep-alive calls on one connection go on."""
    fake.add("POST", _path("fine"), json=golden_json("openai", "simple.response.json"), delay=0.05)
    fake.add("POST", _path("midstream"), stream=golden_stream("openai", "stream_text"), chunk_delay=0.01)
    with httpx.Client(base_url=gateway.v1, timeout=10, headers={"authorization": f"Bearer {key}"}) as http:
        for _ in range(3):
            answer = http.post("/chat/completions", json={"model": "fine", "messages": HI})
            assert answer.status_code == 200, answer.text
            body = {"model": "midstream", "messages": HI, "stream": True}
            streamed = http.post("/chat/completions", json=body)
            assert streamed.status_code == 200
            assert streamed.text.rstrip().endswith("data: [DONE]")
    assert fake.disconnects == 0
    assert _abandoned_rows(db, "fine") == 0
