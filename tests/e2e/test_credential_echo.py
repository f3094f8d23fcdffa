"""Backends that echo the credential they were sent: the key must reach no client, view, row or log.

A fake upstream answers the way providers do when a key is wrong ("Incorrect API key provided: <key>",
its masked form, a request URL with `?key=`), as a whole error answer and as an error event inside a
stream, both passed through and translated. After each, the key is looked for in the client's answer
(body and headers), in /turnout/deployments, in the request_log rows and in the captured logs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, select

from engine.bootstrap import prepare
from engine.mapping.loader import load_registry
from engine.store.request_log import RequestLogRow
from tests.e2e.conftest import assert_error, sse_events
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway

MASTER = "sk-master-Hv3Rk8Lq2Wz6Tn9Pb4Xc"
OPENAI_KEY = "sk-proj-Tq7WmZr3Kd9XpLb2Nc5VfHy8Jg4Sa6Ue1Qo0IiRtMwPz"
GEMINI_KEY = "AIzaSyQ8vLm2Xr7Tk4Wn9Zp3Hb6Jd1Fc5Gs0Ye"
STRANGER = "AIzaSyZZ9nKq4Rt7Wm2XpLv8Bd3Hs6Jc1Fg5Ty"  # a key the gateway does not hold, in `?key=`
KEYS = (MASTER, OPENAI_KEY, GEMINI_KEY, STRANGER)
OPENAI_PATH = "/v1/chat/completions"
GEMINI_CHAT = "/v1beta/models/gemini-x:generateContent"
GEMINI_STREAM = "/v1beta/models/gemini-x:streamGenerateContent"
HI: list[Any] = [{"role": "user", "content": "Hi"}]
ADMIN = {"authorization": f"Bearer {MASTER}"}


def _incorrect(shown: str) -> dict[str, Any]:
    """OpenAI's answer to a wrong key, showing it as `shown`."""
    return {
        "error": {
            "message": f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }


def _google(url_key: str) -> dict[str, Any]:
    return {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key. Request: https://generativelanguage"
            f".googleapis.com/v1beta/models/gemini-x:generateContent?key={url_key}&alt=json",
            "status": "INVALID_ARGUMENT",
        }
    }


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    config = {
        "model_list": [
            {
                "model_name": "openai-echo",
                "litellm_params": {
                    "model": "openai/gpt-x",
                    "api_base": fake.url + "/v1",
                    "api_key": OPENAI_KEY,
                },
            },
            {
                "model_name": "gemini-echo",
                "litellm_params": {"model": "gemini/gemini-x", "api_base": fake.url, "api_key": GEMINI_KEY},
            },
        ],
        "general_settings": {"master_key": MASTER},
    }
    with running_gateway(
        tmp_path_factory.mktemp("echo"), config, usage_flush_interval=0.05, key_refresh_interval=0
    ) as server:
        yield server


@pytest.fixture
def http(gateway: GatewayServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=10, headers=ADMIN) as session:
        yield session


def _row(gateway: GatewayServer, request_id: str) -> dict[str, Any]:
    """The request's request_log row, once the batched writer has written it."""
    engine = create_engine(gateway.settings.database_url.replace("sqlite+aiosqlite", "sqlite"))
    deadline = time.monotonic() + 5
    try:
        with engine.connect() as connection:
            while True:
                query = select(RequestLogRow.__table__).where(RequestLogRow.request_id == request_id)
                found = connection.execute(query).first()
                if found is not None:
                    return dict(found._asdict())
                assert time.monotonic() < deadline, f"no request_log row for {request_id}"
                time.sleep(0.05)
    finally:
        engine.dispose()


def _leaks(text: str, *fragments: str) -> list[str]:
    """The keys (or given fragments of them) found in `text`; a key counts when any 12 of its
    characters past its public prefix show."""
    found = [key for key in KEYS if key in text or key[8:20] in text or key[-12:] in text]
    return found + [fragment for fragment in fragments if fragment in text]


def _assert_nowhere(
    gateway: GatewayServer,
    http: httpx.Client,
    caplog: pytest.LogCaptureFixture,
    answer: httpx.Response,
    *fragments: str,
) -> None:
    shown = answer.text + repr(sorted(answer.headers.items()))
    assert not _leaks(shown, *fragments), shown
    deployments = http.get("/turnout/deployments")
    assert deployments.status_code == 200
    assert not _leaks(deployments.text, *fragments), deployments.text
    row = _row(gateway, answer.headers["x-turnout-request-id"])
    assert not _leaks(repr(row), *fragments), row
    assert not _leaks(caplog.text, *fragments), caplog.text


def _last_error(http: httpx.Client, alias: str) -> str:
    rows = http.get("/turnout/deployments").json()["data"]
    error: str = next(row["last_error"] for row in rows if row["alias"] == alias)
    return error


@pytest.fixture(autouse=True)
def _logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)


def test_a_401_echoing_the_whole_key(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add("POST", OPENAI_PATH, status=401, json=_incorrect(OPENAI_KEY))
    answer = http.post("/v1/chat/completions", json={"model": "openai-echo", "messages": HI})
    error = assert_error(answer, 401, code="invalid_api_key")
    assert fake.last.headers["authorization"] == f"Bearer {OPENAI_KEY}"  # the key it echoed is the one sent
    assert "Incorrect API key provided" in error["message"]  # still says what went wrong
    _assert_nowhere(gateway, http, caplog, answer)
    assert "Incorrect API key provided" in _last_error(http, "openai-echo")


def test_a_401_echoing_the_masked_key(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    masked = f"sk-proj-****{OPENAI_KEY[-4:]}"
    fake.add("POST", OPENAI_PATH, status=401, json=_incorrect(masked))
    answer = http.post("/v1/chat/completions", json={"model": "openai-echo", "messages": HI})
    assert_error(answer, 401, code="invalid_api_key")
    _assert_nowhere(gateway, http, caplog, answer, masked, OPENAI_KEY[-4:])


def test_a_key_cut_short(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add("POST", OPENAI_PATH, status=401, json=_incorrect(OPENAI_KEY[:24] + "..."))
    answer = http.post("/v1/chat/completions", json={"model": "openai-echo", "messages": HI})
    assert_error(answer, 401)
    _assert_nowhere(gateway, http, caplog, answer, OPENAI_KEY[8:24])


@pytest.mark.parametrize("url_key", [GEMINI_KEY, STRANGER], ids=["its-own-key", "unknown-key"])
def test_a_key_in_an_echoed_url(
    gateway: GatewayServer,
    http: httpx.Client,
    fake: FakeUpstream,
    caplog: pytest.LogCaptureFixture,
    url_key: str,
) -> None:
    fake.add("POST", GEMINI_CHAT, status=400, json=_google(url_key))
    answer = http.post("/v1/chat/completions", json={"model": "gemini-echo", "messages": HI})
    error = assert_error(answer, 400)
    assert "API key not valid" in error["message"] and "&alt=json" in error["message"]
    _assert_nowhere(gateway, http, caplog, answer)


def test_an_error_event_in_a_passthrough_stream(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    delta = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": "Hel"}}],
    }
    content = b"data: " + httpx.Response(200, json=delta).content + b"\n\n"
    event = b"data: " + httpx.Response(200, json=_incorrect(OPENAI_KEY)).content + b"\n\n"
    middle = event.index(OPENAI_KEY.encode()) + 20  # the key arrives in two reads
    fake.add("POST", OPENAI_PATH, stream=[content, event[:middle], event[middle:]], chunk_delay=0.01)
    body = {"model": "openai-echo", "messages": HI, "stream": True}
    with http.stream("POST", "/v1/chat/completions", json=body) as answer:
        answer.read()
    assert answer.status_code == 200
    events = sse_events(answer.content)
    assert events[0]["choices"][0]["delta"]["content"] == "Hel"  # content goes on as it came
    assert "Incorrect API key provided" in events[-1]["error"]["message"]
    _assert_nowhere(gateway, http, caplog, answer)


def test_an_error_event_in_a_translated_stream(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    text = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}]}
    stream = [
        b"data: " + httpx.Response(200, json=text).content + b"\r\n\r\n",
        b"data: " + httpx.Response(200, json=_google(GEMINI_KEY)).content + b"\r\n\r\n",
    ]
    fake.add("POST", GEMINI_STREAM, stream=stream)
    body = {"model": "gemini-echo", "messages": HI, "stream": True}
    with http.stream("POST", "/v1/chat/completions", json=body) as answer:
        answer.read()
    assert answer.status_code == 200
    events = sse_events(answer.content)
    assert "API key not valid" in events[-1]["error"]["message"]
    _assert_nowhere(gateway, http, caplog, answer)


def test_a_dialect_route_in_its_own_error_shape(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add("POST", OPENAI_PATH, status=401, json=_incorrect(OPENAI_KEY))
    body = {"model": "openai-echo", "max_tokens": 16, "messages": HI}
    answer = http.post("/v1/messages", json=body)
    assert answer.status_code == 401 and answer.json()["type"] == "error"
    assert "Incorrect API key provided" in answer.json()["error"]["message"]
    _assert_nowhere(gateway, http, caplog, answer)


def test_a_dialect_stream(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    event = b"data: " + httpx.Response(200, json=_incorrect(OPENAI_KEY)).content + b"\n\n"
    fake.add("POST", OPENAI_PATH, stream=[event])
    body = {"model": "openai-echo", "max_tokens": 16, "messages": HI, "stream": True}
    with http.stream("POST", "/v1/messages", json=body) as answer:
        answer.read()
    assert answer.status_code == 200 and b"Incorrect API key provided" in answer.content
    _assert_nowhere(gateway, http, caplog, answer)


def test_a_key_changed_without_a_restart(tmp_path: Path, fake: FakeUpstream) -> None:
    """The redactor is built again with the routing table: a key imported by another process (here
    `turnout import`'s own code) is kept out of errors as soon as the gateway serves with it."""
    new_key = "Nw4Kq9Zt2Xm7Lp3Rv8Bc5Hd1Jf6Gs0YeUiOo"  # no telling prefix: only the redactor knows it
    entry = {
        "model_name": "openai-echo",
        "litellm_params": {"model": "openai/gpt-x", "api_base": fake.url + "/v1", "api_key": OPENAI_KEY},
    }
    with running_gateway(tmp_path, {"model_list": [entry]}, routes_refresh_interval=0.05) as server:
        entry["litellm_params"]["api_key"] = new_key
        changed = tmp_path / "changed.yaml"
        changed.write_text(yaml.safe_dump({"model_list": [entry]}))
        prepare(
            server.settings.model_copy(update={"config": changed}),
            load_registry(server.settings.mappings_dir),
        )
        deadline = time.monotonic() + 5
        while server.gateway.table.aliases["openai-echo"].deployments[0].api_key != new_key:
            assert time.monotonic() < deadline, "the gateway did not reload its routing table"
            time.sleep(0.02)
        fake.add("POST", OPENAI_PATH, status=401, json=_incorrect(new_key))
        answer = httpx.post(server.v1 + "/chat/completions", json={"model": "openai-echo", "messages": HI})
    assert fake.last.headers["authorization"] == f"Bearer {new_key}"
    assert answer.status_code == 401 and new_key[:12] not in answer.text
    assert "Incorrect API key provided: ***" in answer.text
