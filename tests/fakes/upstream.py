"""A scriptable fake upstream LLM server on a real local socket.

Tests point a deployment's base URL at ``fake.url`` and script answers per (method, path)::

    with FakeUpstream() as fake:
        fake.add("POST", "/api/chat", json={"message": {"role": "assistant", "content": "hi"}})
        fake.add("POST", "/v1/chat/completions", stream=[b"data: {}\\n\\n", b"data: [DONE]\\n\\n"])
        fake.add("GET", "/cat.png", body=png_bytes, content_type="image/png")
        ...  # drive the gateway
        assert fake.last.json["model"] == "llama3.2"

The server runs aiohttp in a background thread with its own event loop, so it serves both sync
and async test code. Later scripts for the same (method, path) win; a script with ``times`` is
used that many times and then falls through to earlier ones; unscripted paths answer 404 JSON.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

__all__ = ["FakeUpstream", "RecordedRequest", "Script"]

Chunk = bytes | str


def _to_bytes(data: Chunk) -> bytes:
    return data.encode() if isinstance(data, str) else data


@dataclass
class Script:
    """One scripted answer; see :meth:`FakeUpstream.add` for the meaning of each field."""

    method: str
    path: str
    status: int = 200
    json: Any = None
    body: Chunk | None = None
    headers: dict[str, str] = field(default_factory=dict)
    stream: Sequence[Chunk] | None = None
    chunk_delay: float = 0.0
    content_type: str | None = None
    times: int | None = None
    delay: float = 0.0
    close_after: int | None = None
    hang: bool = False
    hang_after: int | None = None
    cut_after: int | None = None
    hold: bool = False


@dataclass(frozen=True)
class RecordedRequest:
    """What the fake received: header names are lower-cased; ``json`` is None unless the body parses."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any


class FakeUpstream:
    """A fake HTTP upstream bound to 127.0.0.1 on a free port, scripted with :meth:`add`."""

    def __init__(self) -> None:
        self._scripts: list[Script] = []
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._release: asyncio.Event | None = None
        self._unhold: asyncio.Event | None = None
        self._holding = 0
        self._port = 0
        self._disconnects = 0
        self.disconnected = threading.Event()
        """Set when a client goes away before its answer is complete (mid-stream, delayed or hanging)."""

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> FakeUpstream:
        if self._thread is not None:
            return self
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="fake-upstream", daemon=True)
        self._thread.start()
        if not ready.wait(10) or not self._port:
            raise RuntimeError("fake upstream failed to start")
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._thread = self._loop = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if not self._port:
            raise RuntimeError("fake upstream is not started")
        return f"http://127.0.0.1:{self._port}"

    def _run(self, ready: threading.Event) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._startup())
        ready.set()
        self._loop.run_forever()

    async def _startup(self) -> None:
        self._release = asyncio.Event()
        self._unhold = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a client that goes away cancels its handler, which is how
        # `disconnects` notices a gateway that dropped its upstream request mid-stream.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    async def _shutdown(self) -> None:
        if self._release is not None:
            self._release.set()
        if self._unhold is not None:
            self._unhold.set()
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- scripting and recording ------------------------------------------------------------
    def add(
        self,
        method: str,
        path: str,
        *,
        status: int = 200,
        json: Any = None,
        body: Chunk | None = None,
        headers: dict[str, str] | None = None,
        stream: Sequence[Chunk] | None = None,
        chunk_delay: float = 0.0,
        content_type: str | None = None,
        times: int | None = None,
        delay: float = 0.0,
        close_after: int | None = None,
        hang: bool = False,
        hang_after: int | None = None,
        cut_after: int | None = None,
        hold: bool = False,
    ) -> Script:
        """Script the answer to ``method path`` (any query string in ``path`` is ignored).

        ``json`` / ``body`` / ``stream`` pick the body (JSON, raw bytes or text, or chunks written one by
        one with ``chunk_delay`` seconds between them). ``delay`` waits before the headers; ``hang``
        never answers; ``hold`` waits until :meth:`release_held` (then answers as scripted);
        ``close_after=N`` aborts the connection after N stream chunks; ``hang_after=N``
        sends N stream chunks and then nothing more, without ending the body (a body that never ends);
        ``cut_after=N`` announces the whole ``json``/``body`` in content-length but sends only its first
        N bytes and drops the connection (a body that breaks off); ``times=N`` retires the script after
        N uses. ``content_type`` defaults from the body's kind. ``release_hanging`` ends the waits.
        """
        script = Script(
            method.upper(),
            urlsplit(path).path,
            status,
            json,
            body,
            dict(headers or {}),
            stream,
            chunk_delay,
            content_type,
            times,
            delay,
            close_after,
            hang,
            hang_after,
            cut_after,
            hold,
        )
        with self._lock:
            self._scripts.append(script)
        return script

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def last(self) -> RecordedRequest:
        with self._lock:
            if not self._requests:
                raise AssertionError("the fake upstream has received no request")
            return self._requests[-1]

    @property
    def holding(self) -> int:
        """How many requests wait in a ``hold`` script now."""
        with self._lock:
            return self._holding

    def release_held(self) -> None:
        """Let every request held by a ``hold`` script answer (and later ones pass straight on, until
        :meth:`clear`)."""
        assert self._loop is not None and self._unhold is not None
        self._loop.call_soon_threadsafe(self._unhold.set)

    @property
    def disconnects(self) -> int:
        return self._disconnects

    def release_hanging(self) -> None:
        """Let every answer waiting in ``hang`` / ``hang_after`` go on (later ones wait again)."""
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self._release_waiters(), self._loop).result(10)

    async def _release_waiters(self) -> None:
        released, self._release = self._release, asyncio.Event()
        if released is not None:
            released.set()

    def wait_for_disconnect(self, timeout: float = 5.0) -> bool:
        return self.disconnected.wait(timeout)

    def clear(self) -> None:
        """Forget scripts, recorded requests and disconnects; hold scripts hold again."""
        with self._lock:
            self._scripts.clear()
            self._requests.clear()
            self._disconnects = 0
        self.disconnected.clear()
        if self._loop is not None and self._unhold is not None:
            asyncio.run_coroutine_threadsafe(self._hold_again(), self._loop).result(10)

    async def _hold_again(self) -> None:
        assert self._unhold is not None
        self._unhold.clear()

    def _take(self, method: str, path: str) -> Script | None:
        with self._lock:
            for script in reversed(self._scripts):
                if script.method == method and script.path == path and script.times != 0:
                    if script.times is not None:
                        script.times -= 1
                    return script
        return None

    def _note_disconnect(self) -> None:
        with self._lock:
            self._disconnects += 1
        self.disconnected.set()

    # ---- serving ----------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            parsed = jsonlib.loads(body) if body else None
        except ValueError:
            parsed = None
        record = RecordedRequest(
            request.method,
            request.path,
            dict(request.query),
            {k.lower(): v for k, v in request.headers.items()},
            body,
            parsed,
        )
        with self._lock:
            self._requests.append(record)
        script = self._take(request.method, request.path)
        if script is None:
            message = f"no script for {request.method} {request.path}"
            return web.json_response({"error": message}, status=404)
        try:
            if script.hang:
                assert self._release is not None
                await self._release.wait()
                return web.Response(status=503)
            if script.hold:
                await self._held()
            if script.cut_after is not None:
                return await self._cut(request, script)
            if script.delay:
                await asyncio.sleep(script.delay)
            if script.stream is not None:
                return await self._stream(request, script)
        except (asyncio.CancelledError, ConnectionResetError):
            self._note_disconnect()
            raise
        return self._whole(script)

    async def _held(self) -> None:
        assert self._unhold is not None
        with self._lock:
            self._holding += 1
        try:
            await self._unhold.wait()
        finally:
            with self._lock:
                self._holding -= 1

    def _whole(self, script: Script) -> web.Response:
        data, ctype = self._body(script)
        response = web.Response(status=script.status, body=data, headers=script.headers)
        response.content_type = script.content_type or ctype
        return response

    @staticmethod
    def _body(script: Script) -> tuple[bytes, str]:
        if script.json is not None:
            return jsonlib.dumps(script.json).encode(), "application/json"
        if script.body is not None:
            ctype = "text/plain" if isinstance(script.body, str) else "application/octet-stream"
            return _to_bytes(script.body), ctype
        return b"", "application/octet-stream"

    async def _cut(self, request: web.Request, script: Script) -> web.StreamResponse:
        """The whole body announced, only its start sent, then the connection dropped."""
        assert script.cut_after is not None
        data, ctype = self._body(script)
        response = web.StreamResponse(status=script.status, headers=script.headers)
        response.content_type = script.content_type or ctype
        response.content_length = len(data)
        await response.prepare(request)
        await response.write(data[: script.cut_after])
        if request.transport is not None:
            request.transport.abort()
        return response

    async def _stream(self, request: web.Request, script: Script) -> web.StreamResponse:
        assert script.stream is not None
        chunks = [_to_bytes(c) for c in script.stream]
        sse = bool(chunks) and chunks[0].lstrip().startswith((b"data:", b"event:", b":"))
        default_type = "text/event-stream" if sse else "application/x-ndjson"
        response = web.StreamResponse(status=script.status, headers=script.headers)
        response.content_type = script.content_type or default_type
        await response.prepare(request)
        limit = script.close_after if script.hang_after is None else script.hang_after
        for index, chunk in enumerate(chunks if limit is None else chunks[:limit]):
            if index and script.chunk_delay:
                await asyncio.sleep(script.chunk_delay)
            await response.write(chunk)
        if script.hang_after is not None:  # the body goes on, silently, until released
            assert self._release is not None
            await self._release.wait()
            await response.write_eof()
            return response
        if limit is not None and request.transport is not None:
            request.transport.abort()  # a broken stream: the body never terminates properly
            return response
        await response.write_eof()
        return response
