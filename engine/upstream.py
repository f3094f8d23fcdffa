"""The one pooled HTTP client of the request path, and the only module that knows which library it is.

Measured on the 2-core reference machine (DESIGN.md): httpx's default transport collapses under
concurrency (184 req/s at c=32), its aiohttp transport reaches 730, aiohttp directly 2,059. The request
path therefore uses aiohttp here; everything else (tests, admin, discovery) may use httpx. Callers see
only `UpstreamClient` and `UpstreamResponse`, so the choice can change in this file alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec
from aiohttp.abc import AbstractResolver

from engine.errors import UpstreamBadResponse, UpstreamTimeout, UpstreamUnavailable
from engine.tracing import AttemptTrace

__all__ = ["UpstreamClient", "UpstreamResponse", "decode_json"]

_decode = msgspec.json.Decoder().decode
_PIECE = 1024 * 1024  # a larger request body is written in pieces of this size, each as the socket takes it


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    headers: Mapping[str, str]
    _response: aiohttp.ClientResponse
    _label: str

    async def read(self, limit: int) -> bytes:
        """The whole body; one longer than `limit` bytes is an UpstreamBadResponse (not read further)."""
        declared = self._response.content_length
        if declared is not None and declared > limit:
            self._response.close()
            raise self._too_large(limit)
        body = await self._read(limit)
        if len(body) > limit:
            raise self._too_large(limit)
        return body

    async def read_start(self, limit: int) -> bytes:
        """At most the first `limit` bytes of the body (an error's message), the rest left unread."""
        return (await self._read(limit))[:limit]

    async def _read(self, limit: int) -> bytes:
        """The body until its end or until more than `limit` bytes came; the connection is released
        (closed, when the body was not read to its end)."""
        parts: list[bytes] = []
        size = 0
        try:
            async for data in self._response.content.iter_any():
                parts.append(data)
                size += len(data)
                if size > limit:
                    break
        except TimeoutError as exc:
            raise UpstreamTimeout(f"{self._label} timed out while sending its answer") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamBadResponse(f"{self._label} broke off its answer: {type(exc).__name__}") from exc
        finally:
            self._response.release()
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _too_large(self, limit: int) -> UpstreamBadResponse:
        return UpstreamBadResponse(
            f"{self._label} answered with more than {limit} bytes (TURNOUT_MAX_UPSTREAM_ANSWER_BYTES)"
        )

    async def chunks(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive. Errors become UpstreamBadResponse/UpstreamTimeout."""
        try:
            async for data in self._response.content.iter_any():
                yield data
        except TimeoutError as exc:
            raise UpstreamTimeout(f"{self._label} stopped sending (timeout)") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamBadResponse(f"{self._label} broke off the stream: {type(exc).__name__}") from exc

    def close(self) -> None:
        """Drop the connection (used when the client went away mid-stream: the upstream stops too)."""
        self._response.close()


class UpstreamClient:
    """A pooled aiohttp session; create inside the running event loop (app lifespan)."""

    def __init__(
        self,
        *,
        pool_size: int,
        pool_size_per_host: int,
        connect_timeout: float,
        resolver: AbstractResolver | None = None,  # e.g. engine.guarded_dns for client-chosen URLs
    ) -> None:
        connector = aiohttp.TCPConnector(
            limit=pool_size,
            limit_per_host=pool_size_per_host,
            ttl_dns_cache=300,
            keepalive_timeout=60,
            resolver=resolver,
        )
        # no cookie jar: a cookie one answer sets must never reach another client's request
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self._connect_timeout = connect_timeout

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float,
        label: str,
        streaming: bool = False,
        trace: AttemptTrace | None = None,
    ) -> UpstreamResponse:
        """Send one request and wait for the status line and headers. `label` names the backend in errors.

        `timeout` bounds the whole exchange, except for streams, where it bounds each silence (the wait
        for headers, and between chunks): a long generation that keeps talking is not cut off. With
        `trace`, the request carries the try's trace context (traceparent) and the span notes the address.
        """
        if trace is not None:
            headers = trace.outgoing(url, headers)
        client_timeout = aiohttp.ClientTimeout(
            total=None if streaming else timeout,
            sock_connect=self._connect_timeout,
            sock_read=timeout if streaming else None,
        )
        data: bytes | AsyncIterator[memoryview] | None = body
        if body is not None and len(body) > _PIECE:  # written whole, the transport would copy it first
            data, headers = _pieces(body), {**headers, "content-length": str(len(body))}
        try:
            response = await self._session.request(
                method, url, data=data, headers=headers, timeout=client_timeout, allow_redirects=False
            )
        except TimeoutError as exc:
            raise UpstreamTimeout(f"{label} did not answer within {timeout:g} s") from exc
        except aiohttp.InvalidURL as exc:
            raise UpstreamUnavailable(f"{label} has an invalid URL; check its api_base") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"{label} is unreachable ({type(exc).__name__})") from exc
        return UpstreamResponse(response.status, response.headers, response, label)

    async def close(self) -> None:
        await self._session.close()


async def _pieces(body: bytes) -> AsyncIterator[memoryview]:
    """A large body in pieces, written one by one as the socket drains (no copy of the whole)."""
    view = memoryview(body)
    for start in range(0, len(view), _PIECE):
        yield view[start : start + _PIECE]


def decode_json(data: bytes, label: str) -> Any:
    """An upstream's JSON answer; malformed or too deep to read, it is the backend's fault (a 502)."""
    try:
        return _decode(data)
    except msgspec.DecodeError as exc:
        raise UpstreamBadResponse(f"{label} answered with malformed JSON ({exc})") from None
    except RecursionError:  # the backend's fault, like malformed JSON, not the gateway's 500
        raise UpstreamBadResponse(f"{label} answered with JSON nested too deep to read") from None
