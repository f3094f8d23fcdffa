"""The upstream of `bench/hostile.py`: an OpenAI- and Ollama-speaking server that also misbehaves.

It runs aiohttp in a thread of its own (its own event loop), on 127.0.0.1 and ::1, and counts what
the gateway does to it:

    POST /v1/chat/completions            a normal answer (10 + 12 tokens), or an SSE stream with usage
    POST /hang/v1/chat/completions       never answers; `hanging` counts the calls still held open
    POST /echo/v1/chat/completions       401 (a stream: an in-band error event) echoing the key it got
    POST /big/v1/chat/completions        a 50 MB answer
    POST /bigerr/v1/chat/completions     a 30 MB error body
    POST /bigevent/v1/chat/completions   a stream of one 50 MB event that never ends
    POST /api/chat                       an Ollama answer
    GET  /secret.png                     a "private" image; `secret_hits` counts the fetches
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

__all__ = ["SECRET_KEY", "AttackUpstream"]

SECRET_KEY = "sk-hostile-SECRET-0123456789abcdef"
_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
_USAGE = {"prompt_tokens": 10, "completion_tokens": 12, "total_tokens": 22}


def _answer(content: str = "Hello!") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "test-model",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": _USAGE,
    }


def _chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> bytes:
    chunk: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "test-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if usage is None else [],
    }
    if usage is not None:
        chunk["usage"] = usage
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


class AttackUpstream:
    def __init__(self) -> None:
        self.hanging = 0
        self.secret_hits = 0
        self.last_chat: Any = None
        self.url = ""
        self.port = 0
        self._release: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._big = json.dumps(_answer("b" * (50 * 1024 * 1024))).encode()

    def __enter__(self) -> AttackUpstream:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        loop = self._loop
        if loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)

    def _serve(self, ready: threading.Event) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._release = asyncio.Event()
        app = web.Application(client_max_size=1024**3)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/hang/v1/chat/completions", self._hang)
        app.router.add_post("/echo/v1/chat/completions", self._echo)
        app.router.add_post("/big/v1/chat/completions", self._big_answer)
        app.router.add_post("/bigerr/v1/chat/completions", self._big_error)
        app.router.add_post("/bigevent/v1/chat/completions", self._big_event)
        app.router.add_post("/api/chat", self._ollama)
        app.router.add_get("/secret.png", self._secret)
        self._runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            loop.run_until_complete(web.TCPSite(self._runner, "::1", self.port).start())
        except OSError:
            pass  # no IPv6 loopback here: the [::1] spellings then fail to connect either way
        self.url = f"http://127.0.0.1:{self.port}"
        ready.set()
        loop.run_forever()

    async def wait_for(self, condition: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    def release_hanging(self) -> None:
        if self._loop is not None and self._release is not None:
            self._loop.call_soon_threadsafe(self._release.set)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.last_chat = body
        if not body.get("stream"):
            return web.json_response(_answer())
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await response.write(_chunk({"role": "assistant", "content": ""}))
        for word in ("Hello", " there", "!"):
            await response.write(_chunk({"content": word}))
        await response.write(_chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            await response.write(_chunk({}, usage=_USAGE))
        await response.write(b"data: [DONE]\n\n")
        return response

    async def _hang(self, request: web.Request) -> web.Response:
        assert self._release is not None
        self.hanging += 1
        try:
            while not self._release.is_set():
                transport = request.transport
                if transport is None or transport.is_closing():
                    break
                try:
                    await asyncio.wait_for(self._release.wait(), 0.05)
                except TimeoutError:
                    pass
        finally:
            self.hanging -= 1
        return web.json_response(_answer())

    async def _echo(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        error = {"error": {"message": f"Incorrect API key provided: {key}.", "type": "invalid_request_error"}}
        if not body.get("stream"):
            return web.json_response(error, status=401)
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await response.write(_chunk({"role": "assistant", "content": ""}))
        await response.write(b"data: " + json.dumps(error).encode() + b"\n\n")
        return response

    async def _big_answer(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=self._big, content_type="application/json")

    async def _big_error(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b"e" * (30 * 1024 * 1024), status=500, content_type="text/plain")

    async def _big_event(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"x": "')
        block = b"a" * 65536
        try:
            for _ in range(800):  # 50 MB, no event boundary
                await response.write(block)
        except ConnectionError:  # the gateway gave up on the event: what is measured
            pass
        return response

    async def _ollama(self, request: web.Request) -> web.Response:
        self.last_chat = await request.json()
        return web.json_response(
            {
                "model": "llava",
                "created_at": "2025-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": "A cat."},
                "done": True,
                "done_reason": "stop",
                "prompt_eval_count": 10,
                "eval_count": 3,
            }
        )

    async def _secret(self, _request: web.Request) -> web.Response:
        self.secret_hits += 1
        return web.Response(body=_PNG, content_type="image/png")
