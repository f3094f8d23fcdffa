"""The fault-injection matrix: what a misbehaving upstream does to the client, for every fault, whole
answers and streams, with the alias's only deployment failing and with a good deployment behind it.

    fault            what the bad deployment does
    hang             never answers (its deployment timeout is 0.5 s)
    slow body        sends its headers, then part of the body, then nothing more (timeout 0.5 s)
    reset            drops the connection in the middle of the body
    bad JSON         a body (or a stream event) that is not JSON
    HTML             a 200 HTML page, as a proxy in front of a backend sends
    huge body        an answer (or one stream event) past the gateway's limit
    no terminator    a body or stream that ends cleanly but is not complete (no `[DONE]`, no last line)
    echoing 401      refuses the gateway's key and repeats it in its error text

    mode             when the fault happens
    whole            a non-stream request
    stream start     a stream request, before the first event
    stream mid       a stream request, after the first events reached the client

What the client must get, in every cell: an OpenAI-style error with the fault's status (before
anything reached it) or, once a stream has begun, status 200 and a final error event; the good
deployment's answer when there is one and nothing had reached the client; never a 500, a hang, a
traceback or the deployment's key; and one request-log row with the status the client got. Every
answer and chunk is checked against the official SDK types as well (tests.support.sdk_types).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from tests.e2e.conftest import BACKENDS, Backend, assert_error, golden_json, golden_stream, sse_events
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway
from tests.support.request_log import request_log_db, row_for

SECRET = "sk-fault-matrix-SECRET-0123456789abcdef"
LIMIT = 64 * 1024  # the gateway's whole-answer and stream-event limits in this module
TIMEOUT = 0.5  # the bad deployments' timeout, for the faults that are silences
HTML = "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>\n"
HI: list[Any] = [{"role": "user", "content": "Hi"}]
MODES = ("whole", "stream start", "stream mid")


@dataclass(frozen=True)
class Expected:
    """What the client gets when the alias's only deployment has the fault (nothing to fail over to)."""

    status: int
    code: str | None
    type: str | None = None


def _events(backend: Backend) -> list[bytes]:
    """The first two events of a good stream (what reached the client before a mid-stream fault)."""
    return golden_stream(backend.name, "stream_text")[:2]


def _half_json(backend: Backend) -> str:
    text = json.dumps(golden_json(backend.name, "simple.response.json"))
    return text[: len(text) // 2]


def _not_json_event(backend: Backend) -> bytes:
    return b"{not json\n" if backend.is_ollama else b"data: {not json\n\n"


def _endless_event(backend: Backend) -> list[bytes]:
    """An event that grows past the limit without ending, in pieces (so it is never complete)."""
    start = b'{"message": {"content": "' if backend.is_ollama else b'data: {"choices": [{"delta": {"x": "'
    return [start, *[b"x" * 16_384] * (2 * LIMIT // 16_384)]


def _echo_401(backend: Backend) -> dict[str, Any]:
    message = f"Incorrect API key provided: {SECRET}. You can find your API key at ..."
    error = {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}
    return {"status": 401, "json": {"error": message} if backend.is_ollama else {"error": error}}


def script(fault: str, mode: str, backend: Backend) -> dict[str, Any]:
    """The fake's script (FakeUpstream.add keywords) for one fault in one mode."""
    if fault == "hang":
        return {"hang": True}
    if fault == "HTML":
        return {"body": HTML, "content_type": "text/html"}
    if fault == "echoing 401":
        return _echo_401(backend)
    if mode == "whole":
        return _whole_script(fault, backend)
    before = _events(backend) if mode == "stream mid" else []
    kind = {"content_type": _stream_type(backend)}
    if fault == "slow body":
        return {"stream": [*before, b"\n"], "hang_after": len(before), **kind}
    if fault == "reset":
        return {"stream": [*before, b"x"], "close_after": len(before), **kind}
    if fault == "bad JSON":
        return {"stream": [*before, _not_json_event(backend)], **kind}
    if fault == "huge body":
        return {"stream": [*before, *_endless_event(backend)], **kind}
    assert fault == "no terminator"
    return {"stream": before, **kind}


def _whole_script(fault: str, backend: Backend) -> dict[str, Any]:
    answer = golden_json(backend.name, "simple.response.json")
    half = {"stream": [_half_json(backend)], "content_type": "application/json"}
    return {
        "slow body": {**half, "hang_after": 1},
        "reset": {"json": answer, "cut_after": 20},
        "bad JSON": {"body": _half_json(backend) + "!!", "content_type": "application/json"},
        "huge body": {"json": {**answer, "padding": "x" * 2 * LIMIT}},
        "no terminator": half,
    }[fault]


def _stream_type(backend: Backend) -> str:
    return "application/x-ndjson" if backend.is_ollama else "text/event-stream"


BAD = Expected(502, "upstream_bad_response")
SILENT = Expected(504, "upstream_timeout", "timeout_error")
FAULTS: dict[str, Expected] = {
    "hang": SILENT,
    "slow body": SILENT,
    "reset": BAD,
    "bad JSON": BAD,
    "HTML": BAD,
    "huge body": BAD,
    "no terminator": BAD,
    "echoing 401": Expected(401, None, "authentication_error"),
}
# the faults that happen at the headers: no event can have reached the client before them
AT_THE_HEADERS = {"hang", "HTML", "echoing 401"}


def _cells() -> list[Any]:
    cells = []
    for fault in FAULTS:
        for mode in MODES:
            for column in ("alone", "fallback"):
                marks = []
                if mode == "stream mid" and fault in AT_THE_HEADERS:
                    reason = f"not applicable: {fault} happens at the headers, before any event"
                    marks.append(pytest.mark.skip(reason=reason))
                cells.append(pytest.param(fault, mode, column, id=f"{fault}-{mode}-{column}", marks=marks))
    return cells


@pytest.fixture(scope="module")
def good() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture(autouse=True)
def _fresh(fake: FakeUpstream, good: FakeUpstream) -> Iterator[None]:
    good.clear()
    yield
    fake.release_hanging()


def _alias(backend: Backend, column: str, fault: str) -> str:
    return f"{backend.name}-{column}" + ("-slow" if FAULTS[fault] is SILENT else "")


@pytest.fixture(scope="module")
def gateway(
    fake: FakeUpstream, good: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayServer]:
    """Per backend: `<name>-alone` (only the bad deployment) and `<name>-fallback` (the bad one first,
    then a good one), each also as `…-slow` whose bad deployment times out after TIMEOUT."""
    entries = []
    for backend in BACKENDS:
        for slow in (False, True):
            timeout = {"timeout": TIMEOUT} if slow else {}
            bad = backend.entry(fake.url, model="bad", order=1, api_key=SECRET, **timeout)
            behind = backend.entry(good.url, model="good", order=2)
            suffix = "-slow" if slow else ""
            entries.append({**bad, "model_name": f"{backend.name}-alone{suffix}"})
            entries.append({**bad, "model_name": f"{backend.name}-fallback{suffix}"})
            entries.append({**behind, "model_name": f"{backend.name}-fallback{suffix}"})
    config = {"model_list": entries, "router_settings": {"allowed_fails": 100_000}}
    with running_gateway(
        tmp_path_factory.mktemp("fault-matrix"),
        config,
        max_upstream_answer_bytes=LIMIT,
        max_stream_event_bytes=LIMIT,
        usage_flush_interval=0.05,
    ) as server:
        yield server


@pytest.fixture(scope="module")
def db(gateway: GatewayServer) -> Iterator[Engine]:
    with request_log_db(gateway) as engine:
        yield engine


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
@pytest.mark.parametrize(("fault", "mode", "column"), _cells())
def test_fault(
    http: httpx.Client,
    db: Engine,
    fake: FakeUpstream,
    good: FakeUpstream,
    backend: Backend,
    fault: str,
    mode: str,
    column: str,
) -> None:
    stream = mode != "whole"
    fake.add("POST", backend.path, **script(fault, mode, backend))
    if stream:
        good.add("POST", backend.path, stream=golden_stream(backend.name, "stream_text"))
    else:
        good.add("POST", backend.path, json=golden_json(backend.name, "simple.response.json"))
    body = {"model": _alias(backend, column, fault), "messages": HI, "stream": stream}
    answer = http.post("/v1/chat/completions", json=body, timeout=30)

    assert SECRET not in answer.text and SECRET not in str(answer.headers)
    assert "Traceback" not in answer.text
    expected, began = FAULTS[fault], mode == "stream mid"
    if began:  # the answer had begun: it is the answer, ended by an error event
        assert answer.status_code == 200
        last = sse_events(answer.content)[-1]
        assert last["error"]["code"] == expected.code, last
        assert not good.requests
    elif column == "fallback":
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-turnout-deployment"] == f"{backend.name}/good"
        assert answer.headers["x-turnout-attempted"].startswith(f"{backend.name}/bad=")
        assert len(good.requests) == 1
        if stream:
            assert sse_events(answer.content)[-1] == "[DONE]"
    else:
        assert_error(answer, expected.status, type=expected.type, code=expected.code)
        assert not good.requests
    row = row_for(db, answer.headers["x-turnout-request-id"])
    assert row.status == answer.status_code
    assert SECRET not in f"{row.error_type} {row.error_code}"


def test_the_echoed_key_stays_out_of_the_operator_view(
    http: httpx.Client, fake: FakeUpstream, backend: Backend
) -> None:
    fake.add("POST", backend.path, **_echo_401(backend))
    http.post("/v1/chat/completions", json={"model": f"{backend.name}-alone", "messages": HI})
    view = http.get("/turnout/deployments")
    assert view.status_code == 200
    assert SECRET not in view.text and "Incorrect API key provided: ***" in view.text
