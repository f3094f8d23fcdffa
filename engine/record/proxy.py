"""A recording proxy between the gateway and the real backend: it forwards every request and keeps
each exchange's bytes (the request, the answer's status, headers and body chunk by chunk).

It also serves the vision scenario's image at `/cat.png`, as the golden suite's fake upstream does,
so that backends whose mapping fetches images get one from a loopback address nobody else can see.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

__all__ = ["IMAGE_PATH", "Exchange", "RecordingProxy"]

IMAGE_PATH = "/cat.png"
# hop-by-hop and framing headers: the proxy's own connections carry their own
_NOT_FORWARDED = {
    "host",
    "connection",
    "keep-alive",
    "content-length",
    "transfer-encoding",
    "accept-encoding",
    "te",
    "upgrade",
    "proxy-connection",
}
_NOT_RETURNED = {"connection", "keep-alive", "content-length", "transfer-encoding", "content-encoding"}


@dataclass
class Exchange:
    """One upstream exchange as it went over the wire (header names lower-cased, body decompressed)."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    status: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)
    failure: str | None = None  # the backend could not be reached, or broke off its answer

    @property
    def answer(self) -> bytes:
        return b"".join(self.chunks)


class RecordingProxy:
    """Serves on 127.0.0.1 (a free port); forwards everything but the image to `origin`."""

    def __init__(self, origin: str, image: bytes, *, timeout: float) -> None:
        self._origin = origin.rstrip("/")
        self._image = image
        self._timeout = timeout
        self.exchanges: list[Exchange] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            auto_decompress=True, skip_auto_headers=("User-Agent",), cookie_jar=aiohttp.DummyCookieJar()
        )
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET" and request.path == IMAGE_PATH:
            return web.Response(body=self._image, content_type="image/png")
        exchange = Exchange(
            request.method,
            request.path,
            list(request.query.items()),
            {name.lower(): value for name, value in request.headers.items()},
            await request.read(),
        )
        self.exchanges.append(exchange)
        return await self._forward(request, exchange)

    async def _forward(self, request: web.Request, exchange: Exchange) -> web.StreamResponse:
        assert self._session is not None
        headers = {k: v for k, v in exchange.headers.items() if k not in _NOT_FORWARDED}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout, sock_read=self._timeout)
        url = self._origin + request.path_qs
        try:
            async with self._session.request(
                exchange.method,
                url,
                headers=headers,
                data=exchange.body,
                timeout=timeout,
                allow_redirects=False,
            ) as upstream:
                exchange.status = upstream.status
                exchange.response_headers = {k.lower(): v for k, v in upstream.headers.items()}
                answer = web.StreamResponse(
                    status=upstream.status,
                    headers={k: v for k, v in upstream.headers.items() if k.lower() not in _NOT_RETURNED},
                )
                await answer.prepare(request)
                async for data in upstream.content.iter_any():
                    exchange.chunks.append(data)
                    await answer.write(data)
                await answer.write_eof()
                return answer
        except (aiohttp.ClientError, TimeoutError) as exc:
            exchange.failure = f"{type(exc).__name__}: {exc}"
            if exchange.status:  # the answer had begun: it breaks off for the gateway too
                raise
            return web.json_response({"error": {"message": "unreachable"}}, status=502)
