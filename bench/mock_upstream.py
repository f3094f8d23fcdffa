"""A fast mock LLM backend for `make bench`: OpenAI Chat Completions and Ollama's native /api/chat.

Raw asyncio Protocol (uvloop when importable), HTTP/1.1 keep-alive and pipelining, every response
rendered once at start-up, so that a request costs one header scan and one `transport.write()`.

    POST /v1/chat/completions   chat.completion JSON; with "stream": true an SSE stream of --chunks
                                chat.completion.chunk events, a finish event, a usage event when
                                stream_options.include_usage is true, then `data: [DONE]`
    POST /api/chat              Ollama JSON; unless "stream": false (Ollama streams by default) an
                                NDJSON stream of --chunks lines, the last with done: true,
                                done_reason, prompt_eval_count and eval_count
    GET  /health                {"status":"ok"}

Binds loopback addresses only. Usage: python bench/mock_upstream.py --port 8099
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from dataclasses import dataclass
from typing import Any, cast

LOOPBACK = ("127.0.0.1", "localhost", "::1")
CREATED = 1700000000
CREATED_AT = "2023-11-14T22:13:20.000000Z"
STREAM_TRUE = re.compile(rb'"stream"\s*:\s*true')
STREAM_FALSE = re.compile(rb'"stream"\s*:\s*false')
INCLUDE_USAGE = re.compile(rb'"include_usage"\s*:\s*true')
CHAT_ID = "chatcmpl-mock0000000000000000000000"


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _response(status: bytes, content_type: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\ncontent-type: "
        + content_type
        + b"\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\nconnection: keep-alive\r\n\r\n"
        + body
    )


def _chunked(content_type: bytes, parts: list[bytes]) -> bytes:
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: "
        + content_type
        + b"\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\nconnection: keep-alive\r\n\r\n"
    )
    return head + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


@dataclass(frozen=True)
class Responses:
    """Every answer the mock gives, as complete HTTP/1.1 responses."""

    openai_json: bytes
    openai_sse: bytes
    openai_sse_usage: bytes
    ollama_json: bytes
    ollama_ndjson: bytes
    health: bytes
    not_found: bytes


def _openai(model: str, words: list[str]) -> tuple[bytes, bytes, bytes]:
    usage = {"prompt_tokens": 9, "completion_tokens": len(words), "total_tokens": 9 + len(words)}
    body = {
        "id": CHAT_ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "system_fingerprint": "fp_mock",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(words), "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
    }
    head = {
        "id": CHAT_ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "system_fingerprint": "fp_mock",
    }

    def event(choices: list[Any], **extra: Any) -> bytes:
        return b"data: " + _dumps({**head, "choices": choices, **extra}) + b"\n\n"

    deltas = [{"role": "assistant", "content": words[0]}] + [{"content": w} for w in words[1:]]
    events = [event([{"index": 0, "delta": d, "logprobs": None, "finish_reason": None}]) for d in deltas]
    events.append(event([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]))
    done = b"data: [DONE]\n\n"
    sse = _chunked(b"text/event-stream", [*events, done])
    sse_usage = _chunked(b"text/event-stream", [*events, event([], usage=usage), done])
    return _response(b"200 OK", b"application/json", _dumps(body)), sse, sse_usage


def _ollama(model: str, words: list[str]) -> tuple[bytes, bytes]:
    final = {
        "done": True,
        "done_reason": "stop",
        "total_duration": 123456789,
        "load_duration": 1234567,
        "prompt_eval_count": 9,
        "prompt_eval_duration": 2345678,
        "eval_count": len(words),
        "eval_duration": 98765432,
    }
    body = {
        "model": model,
        "created_at": CREATED_AT,
        "message": {"role": "assistant", "content": "".join(words)},
        **final,
    }
    lines = [
        _dumps(
            {
                "model": model,
                "created_at": CREATED_AT,
                "message": {"role": "assistant", "content": w},
                "done": False,
            }
        )
        + b"\n"
        for w in words
    ]
    lines.append(
        _dumps(
            {
                "model": model,
                "created_at": CREATED_AT,
                "message": {"role": "assistant", "content": ""},
                **final,
            }
        )
        + b"\n"
    )
    ndjson = _chunked(b"application/x-ndjson", lines)
    return _response(b"200 OK", b"application/json; charset=utf-8", _dumps(body)), ndjson


def build_responses(model: str, chunks: int) -> Responses:
    words = [f"tok{i} " for i in range(chunks)]
    openai_json, openai_sse, openai_sse_usage = _openai(model, words)
    ollama_json, ollama_ndjson = _ollama(model, words)
    return Responses(
        openai_json=openai_json,
        openai_sse=openai_sse,
        openai_sse_usage=openai_sse_usage,
        ollama_json=ollama_json,
        ollama_ndjson=ollama_ndjson,
        health=_response(b"200 OK", b"application/json", b'{"status":"ok"}'),
        not_found=_response(
            b"404 Not Found",
            b"application/json",
            b'{"error":{"message":"not found","type":"invalid_request_error"}}',
        ),
    )


def answer(responses: Responses, method: bytes, path: bytes, body: bytes) -> bytes:
    """The pre-rendered response for one request."""
    path = path.split(b"?", 1)[0]
    if method == b"POST" and path.endswith(b"/chat/completions"):
        if not STREAM_TRUE.search(body):
            return responses.openai_json
        return responses.openai_sse_usage if INCLUDE_USAGE.search(body) else responses.openai_sse
    if method == b"POST" and path == b"/api/chat":
        return responses.ollama_json if STREAM_FALSE.search(body) else responses.ollama_ndjson
    if method == b"GET" and path in (b"/health", b"/"):
        return responses.health
    return responses.not_found


class MockProtocol(asyncio.Protocol):
    """One keep-alive connection: parse as many complete requests as the buffer holds, answer each."""

    def __init__(self, responses: Responses) -> None:
        self.responses = responses
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer = self.buffer + data if self.buffer else data
        while self.transport is not None:
            parsed = self._next_request()
            if parsed is None:
                return
            head, body = parsed
            first = head[: head.find(b"\r\n")] if b"\r\n" in head else head
            method, _, rest = first.partition(b" ")
            path = rest.partition(b" ")[0]
            self.transport.write(answer(self.responses, method, path, body))
            if b"\r\nconnection: close" in head.lower():
                self.transport.close()
                return

    def _next_request(self) -> tuple[bytes, bytes] | None:
        buffer = self.buffer
        end_of_head = buffer.find(b"\r\n\r\n")
        if end_of_head < 0:
            return None
        head = buffer[:end_of_head]
        lower = head.lower()
        start = end_of_head + 4
        i = lower.find(b"\r\ncontent-length:")
        if i >= 0:
            j = lower.find(b"\r\n", i + 17)
            end = start + int(lower[i + 17 : j if j >= 0 else len(lower)])
            if len(buffer) < end:
                return None
            body = buffer[start:end]
        elif b"\r\ntransfer-encoding: chunked" in lower:
            decoded = _dechunk(buffer, start)
            if decoded is None:
                return None
            body, end = decoded
        else:
            body, end = b"", start
        self.buffer = buffer[end:]
        return head, body


def _dechunk(buffer: bytes, pos: int) -> tuple[bytes, int] | None:
    """A chunked request body starting at pos: (body, end offset), or None while incomplete."""
    parts: list[bytes] = []
    while True:
        line_end = buffer.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(buffer[pos:line_end].split(b";")[0], 16)
        if size == 0:
            trailer_end = buffer.find(b"\r\n\r\n", line_end)
            return None if trailer_end < 0 else (b"".join(parts), trailer_end + 4)
        if len(buffer) < line_end + 2 + size + 2:
            return None
        parts.append(buffer[line_end + 2 : line_end + 2 + size])
        pos = line_end + 2 + size + 2


async def serve(host: str, port: int, responses: Responses) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: MockProtocol(responses), host, port, backlog=4096, reuse_address=True
    )
    print(f"mock upstream pid={os.getpid()} on http://{host}:{port} loop={type(loop).__module__}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--model", default="mock-model", help="model name echoed in responses")
    parser.add_argument("--chunks", type=int, default=20, help="content chunks per stream (default 20)")
    args = parser.parse_args(argv)
    if args.host not in LOOPBACK:
        print("mock_upstream: refusing to bind a non-loopback address", file=sys.stderr)
        return 2
    main_task = serve(args.host, args.port, build_responses(args.model, max(args.chunks, 1)))
    try:
        try:
            import uvloop
        except ImportError:
            asyncio.run(main_task)
        else:
            uvloop.run(main_task)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
