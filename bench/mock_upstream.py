"""A fast mock LLM backend for `make bench`: OpenAI Chat Completions, Ollama's /api/chat, Anthropic's
Messages API and Google's Gemini generateContent.

Raw asyncio Protocol (uvloop when importable), HTTP/1.1 keep-alive and pipelining, every response
rendered once at start-up, so that a request costs one header scan and one `transport.write()`.

    POST /v1/chat/completions   chat.completion JSON; with "stream": true an SSE stream of --chunks
                                chat.completion.chunk events, a finish event, a usage event when
                                stream_options.include_usage is true, then `data: [DONE]`
    POST /api/chat              Ollama JSON; unless "stream": false (Ollama streams by default) an
                                NDJSON stream of --chunks lines, the last with done: true,
                                done_reason, prompt_eval_count and eval_count
    POST /v1/messages           Anthropic message JSON; with "stream": true Anthropic's event-typed SSE
                                stream: message_start, content_block_start, ping, --chunks
                                content_block_delta text deltas, content_block_stop, message_delta
                                (stop_reason, usage), message_stop
    POST .../models/<m>:generateContent
                                Gemini GenerateContentResponse JSON
    POST .../models/<m>:streamGenerateContent
                                with ?alt=sse an SSE stream of --chunks GenerateContentResponse events
                                (CRLF-terminated, as Google sends them), each with one text part and
                                the running usageMetadata, the last with finishReason STOP; without
                                alt=sse the same chunks as one JSON array
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
# a model whose name contains "paced" streams one event per --paced-ms, as a real token stream does
PACED = re.compile(rb'"model"\s*:\s*"[^"]*paced')
PACED_SECONDS = 0.005
INCLUDE_USAGE = re.compile(rb'"include_usage"\s*:\s*true')
ALT_SSE = re.compile(rb"(?:^|&)alt=sse(?:&|$)")
CHAT_ID = "chatcmpl-mock0000000000000000000000"
MESSAGE_ID = "msg_mock00000000000000000000"
RESPONSE_ID = "mockResponseId0000000000"
PROMPT_TOKENS = 9


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
    anthropic_json: bytes
    anthropic_sse: bytes
    gemini_json: bytes
    gemini_sse: bytes
    gemini_array: bytes
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


def _anthropic(model: str, words: list[str]) -> tuple[bytes, bytes]:
    """Messages API: the message JSON, and the event-typed SSE stream (Anthropic's "Streaming Messages")."""
    body = {
        "id": MESSAGE_ID,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "".join(words)}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": len(words)},
    }

    def event(kind: str, data: dict[str, Any]) -> bytes:
        return b"event: " + kind.encode() + b"\ndata: " + _dumps({"type": kind, **data}) + b"\n\n"

    start = {
        **body,
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": 1},
    }
    events = [
        event("message_start", {"message": start}),
        event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        event("ping", {}),
        *(
            event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": w}})
            for w in words
        ),
        event("content_block_stop", {"index": 0}),
        event(
            "message_delta",
            {
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(words)},
            },
        ),
        event("message_stop", {}),
    ]
    sse = _chunked(b"text/event-stream; charset=utf-8", events)
    return _response(b"200 OK", b"application/json", _dumps(body)), sse


def _gemini(model: str, words: list[str]) -> tuple[bytes, bytes, bytes]:
    """generateContent JSON, streamGenerateContent?alt=sse, and streamGenerateContent's JSON array."""

    def usage(output: int) -> dict[str, int]:
        return {
            "promptTokenCount": PROMPT_TOKENS,
            "candidatesTokenCount": output,
            "totalTokenCount": PROMPT_TOKENS + output,
        }

    def chunk(text: str, output: int, last: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
        if last:
            candidate["finishReason"] = "STOP"
        return {
            "candidates": [candidate],
            "usageMetadata": usage(output),
            "modelVersion": model,
            "responseId": RESPONSE_ID,
        }

    body = _dumps(chunk("".join(words), len(words), True))
    chunks = [_dumps(chunk(w, i + 1, i == len(words) - 1)) for i, w in enumerate(words)]
    sse = _chunked(b"text/event-stream", [b"data: " + c + b"\r\n\r\n" for c in chunks])
    array = _response(b"200 OK", b"application/json; charset=UTF-8", b"[" + b",\r\n".join(chunks) + b"]")
    return _response(b"200 OK", b"application/json; charset=UTF-8", body), sse, array


def build_responses(model: str, chunks: int) -> Responses:
    words = [f"tok{i} " for i in range(chunks)]
    openai_json, openai_sse, openai_sse_usage = _openai(model, words)
    ollama_json, ollama_ndjson = _ollama(model, words)
    anthropic_json, anthropic_sse = _anthropic(model, words)
    gemini_json, gemini_sse, gemini_array = _gemini(model, words)
    return Responses(
        openai_json=openai_json,
        openai_sse=openai_sse,
        openai_sse_usage=openai_sse_usage,
        ollama_json=ollama_json,
        ollama_ndjson=ollama_ndjson,
        anthropic_json=anthropic_json,
        anthropic_sse=anthropic_sse,
        gemini_json=gemini_json,
        gemini_sse=gemini_sse,
        gemini_array=gemini_array,
        health=_response(b"200 OK", b"application/json", b'{"status":"ok"}'),
        not_found=_response(
            b"404 Not Found",
            b"application/json",
            b'{"error":{"message":"not found","type":"invalid_request_error"}}',
        ),
    )


def answer(responses: Responses, method: bytes, path: bytes, body: bytes) -> bytes:
    """The pre-rendered response for one request."""
    path, _, query = path.partition(b"?")
    if method == b"POST" and path.endswith(b"/chat/completions"):
        if not STREAM_TRUE.search(body):
            return responses.openai_json
        return responses.openai_sse_usage if INCLUDE_USAGE.search(body) else responses.openai_sse
    if method == b"POST" and path == b"/api/chat":
        return responses.ollama_json if STREAM_FALSE.search(body) else responses.ollama_ndjson
    if method == b"POST" and path == b"/v1/messages":
        return responses.anthropic_sse if STREAM_TRUE.search(body) else responses.anthropic_json
    if method == b"POST" and path.endswith(b":generateContent"):
        return responses.gemini_json
    if method == b"POST" and path.endswith(b":streamGenerateContent"):
        return responses.gemini_sse if ALT_SSE.search(query) else responses.gemini_array
    if method == b"GET" and path in (b"/health", b"/"):
        return responses.health
    return responses.not_found


class MockProtocol(asyncio.Protocol):
    """One keep-alive connection: parse as many complete requests as the buffer holds, answer each."""

    def __init__(self, responses: Responses, paced_seconds: float = PACED_SECONDS) -> None:
        self.responses = responses
        self.paced_seconds = paced_seconds
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
            response = answer(self.responses, method, path, body)
            if PACED.search(body) and b"\r\ntransfer-encoding: chunked" in response:
                self._paced(_frames(response))
            else:
                self.transport.write(response)
            if b"\r\nconnection: close" in head.lower():
                self.transport.close()
                return

    def _paced(self, frames: list[bytes]) -> None:
        """Write the head and first frame now, each next frame `paced_seconds` later (the client, one
        request at a time per connection, waits for the end before it sends the next)."""
        if self.transport is None or not frames:
            return
        self.transport.write(frames[0])
        if len(frames) > 1:
            asyncio.get_running_loop().call_later(self.paced_seconds, self._paced, frames[1:])

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


def _frames(response: bytes) -> list[bytes]:
    """A pre-rendered chunked response cut into its head with the first chunk frame, each next frame,
    and the last one with the terminating zero-size frame (so that each event is one write)."""
    pos = response.find(b"\r\n\r\n") + 4
    frames = []
    while True:
        line_end = response.find(b"\r\n", pos)
        size = int(response[pos:line_end], 16)
        end = line_end + 2 + size + 2
        if size == 0:
            frames[-1] += response[pos:]
            break
        frames.append(response[pos:end])
        pos = end
    frames[0] = response[: response.find(b"\r\n\r\n") + 4] + frames[0]
    return frames


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


async def serve(host: str, port: int, responses: Responses, paced_seconds: float = PACED_SECONDS) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: MockProtocol(responses, paced_seconds), host, port, backlog=4096, reuse_address=True
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
    parser.add_argument(
        "--paced-ms", type=float, default=PACED_SECONDS * 1000, help="a paced stream's gap between events"
    )
    args = parser.parse_args(argv)
    if args.host not in LOOPBACK:
        print("mock_upstream: refusing to bind a non-loopback address", file=sys.stderr)
        return 2
    main_task = serve(
        args.host, args.port, build_responses(args.model, max(args.chunks, 1)), args.paced_ms / 1000
    )
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
