"""A whole body goes out as Litestar's Response would send it, without building one."""

from __future__ import annotations

import asyncio
from typing import Any

from engine.api.respond import WholeBody, respond
from engine.pipeline.outcome import Reply


def _sent(app: Any) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    asyncio.run(app({"type": "http"}, receive, send))
    return messages


def test_the_reply_headers_come_first_then_its_type_and_length() -> None:
    app = respond(Reply(body=b'{"a":1}', headers={"X-Turnout-Deployment": "p/m"}))
    assert isinstance(app, WholeBody)
    start, body = _sent(app)
    assert start == {
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"x-turnout-deployment", b"p/m"),
            (b"content-type", b"application/json"),
            (b"content-length", b"7"),
        ],
    }
    assert body == {"type": "http.response.body", "body": b'{"a":1}', "more_body": False}


def test_a_text_type_names_its_charset_and_a_type_the_reply_set_stays() -> None:
    [start, _] = _sent(WholeBody(b"hi", "text/plain", {}))
    assert (b"content-type", b"text/plain; charset=utf-8") in start["headers"]
    [start, _] = _sent(WholeBody(b"hi", "text/plain", {"content-type": "text/vtt"}))
    assert [v for k, v in start["headers"] if k == b"content-type"] == [b"text/vtt"]
