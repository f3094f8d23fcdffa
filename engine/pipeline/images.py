"""Fetch http(s) image URLs into data: URLs, for backends that only take inline images.

Only runs when the operation asks for it. The URLs are the client's, fetched from inside the operator's
network, so (engine.netguard) only public addresses are fetched unless the operator allows more, URLs
with credentials are refused, redirects are not followed (a 3xx is a failed fetch), no cookies are kept,
and each request may have at most `max_images` fetched, of `max_bytes` each and `max_total_bytes` in all.
Errors name the image by its position among the request's images and never say what is behind the
address (no status, no connection error, no resolved address): the log has the details.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass
from typing import Any

from engine.errors import InvalidRequest, UpstreamError
from engine.guarded_dns import GuardedResolver
from engine.netguard import AddressPolicy, Refused
from engine.upstream import UpstreamClient

__all__ = ["ImageFetcher", "ImageLimits", "inline_remote_images"]

log = logging.getLogger("turnout")

_REMOTE = ("http://", "https://")


@dataclass(frozen=True, slots=True)
class ImageLimits:
    timeout: float = 10.0  # seconds for one image
    max_bytes: int = 20 * 1024 * 1024  # one image
    max_images: int = 16  # images fetched for one request
    max_total_bytes: int = 50 * 1024 * 1024  # all the images fetched for one request


class ImageFetcher:
    """The gateway's own client for image URLs (separate from the backends' pool, guarded resolver);
    create inside the running event loop, close at shutdown."""

    def __init__(
        self, limits: ImageLimits, policy: AddressPolicy, *, connect_timeout: float, pool_size: int
    ) -> None:
        self.limits = limits
        self.policy = policy
        self._resolver = GuardedResolver(policy)
        self.client = UpstreamClient(
            pool_size=pool_size,
            pool_size_per_host=pool_size,
            connect_timeout=connect_timeout,
            resolver=self._resolver,
        )

    async def close(self) -> None:
        await self.client.close()
        await self._resolver.close()


def _image_parts(messages: Any) -> list[dict[str, Any]]:
    """The image parts of the messages, in order (their position is the image's number in errors)."""
    parts = []
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            parts += [p for p in content if isinstance(p, dict) and p.get("type") == "image_url"]
    return parts


def _url(part: dict[str, Any]) -> Any:
    image = part.get("image_url")
    return image.get("url") if isinstance(image, dict) else image


def _remote_positions(parts: list[dict[str, Any]]) -> list[int]:
    """Indexes of the parts to fetch; a URL that is neither http(s) nor a base64 data: URL is a 400."""
    remote = []
    for index, part in enumerate(parts):
        url = _url(part)
        if not isinstance(url, str):
            continue  # not ours to judge: validation or the mapping answers for it
        if url.startswith("data:"):
            comma = url.find(",")
            if comma < 0 or not url.endswith(";base64", 0, comma):
                raise _invalid(f"image {index + 1} is not a base64 data: URL (data:<type>;base64,<data>)")
        elif url[:8].lower().startswith(_REMOTE):
            remote.append(index)
        else:
            raise _invalid(f"image {index + 1} is not an http(s) or base64 data: URL")
    return remote


async def inline_remote_images(request: dict[str, Any], fetcher: ImageFetcher | None) -> dict[str, Any]:
    """The request with remote image URLs replaced by data: URLs (a copy; the input is not changed).
    Without a fetcher, a remote image URL is refused."""
    parts = _image_parts(request.get("messages"))
    remote = _remote_positions(parts) if parts else []
    if not remote:
        return request
    if fetcher is None:
        raise _invalid(f"image {remote[0] + 1} was refused: image URLs are not fetched here")
    limits = fetcher.limits
    if len(remote) > limits.max_images:
        raise _invalid(
            f"this request has {len(remote)} image URLs to fetch; at most {limits.max_images} are fetched "
            "per request (send the others as data: URLs)",
            code="too_many_images",
        )
    for index in remote:  # every URL judged before anything is fetched
        _check(fetcher.policy, index + 1, _url(parts[index]))
    messages = [_copy_message(m) for m in request["messages"]]
    copies = _image_parts(messages)
    budget = _Budget(limits.max_total_bytes)
    tasks = [asyncio.ensure_future(_fetch(fetcher, i + 1, _url(copies[i]), budget)) for i in remote]
    try:
        fetched = await asyncio.gather(*tasks)
    finally:  # one failed: the others stop
        for task in tasks:
            task.cancel()
    for index, data_url in zip(remote, fetched, strict=True):
        image = copies[index]["image_url"]
        copies[index]["image_url"] = {**(image if isinstance(image, dict) else {}), "url": data_url}
    return {**request, "messages": messages}


def _copy_message(message: Any) -> Any:
    if isinstance(message, dict) and isinstance(message.get("content"), list):
        return {**message, "content": [dict(p) if isinstance(p, dict) else p for p in message["content"]]}
    return message


def _invalid(message: str, code: str = "invalid_image_url") -> InvalidRequest:
    return InvalidRequest(message, param="messages", code=code)


def _check(policy: AddressPolicy, position: int, url: str) -> None:
    try:
        policy.check_url(url)
    except Refused as exc:
        log.info("image URL refused: %s", exc.detail)
        raise _invalid(f"image {position} was refused: {exc.reason}") from None


class _Budget:
    """The bytes the images of one request may still take, shared by their concurrent fetches."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.left = total

    def take(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise _invalid(
                f"the images of this request are larger than {self.total} bytes in all",
                code="images_too_large",
            )


async def _fetch(fetcher: ImageFetcher, position: int, url: str, budget: _Budget) -> str:
    limits = fetcher.limits
    unavailable = _invalid(f"image {position} could not be fetched")
    try:
        response = await fetcher.client.send(
            "GET", url, headers={}, body=None, timeout=limits.timeout, label="image fetch"
        )
    except Refused as exc:  # from the resolver: the name resolved to addresses that are not allowed
        log.info("image URL refused: %s", exc.detail)
        raise _invalid(f"image {position} was refused: {exc.reason}") from None
    except UpstreamError as exc:
        log.info("image %d could not be fetched: %s", position, exc.message)
        raise unavailable from None
    try:
        if response.status != 200:
            log.info("image %d could not be fetched: HTTP %d", position, response.status)
            raise unavailable
        too_large = _invalid(
            f"image {position} is larger than {limits.max_bytes} bytes", code="image_too_large"
        )
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limits.max_bytes:
            raise too_large
        data = bytearray()
        async for chunk in response.chunks():
            data += chunk
            if len(data) > limits.max_bytes:
                raise too_large
            budget.take(len(chunk))
    except UpstreamError as exc:
        log.info("image %d could not be fetched: %s", position, exc.message)
        raise unavailable from None
    finally:
        response.close()
    mime = response.headers.get("content-type", "image/png").split(";", 1)[0].strip() or "image/png"
    if not mime.startswith("image/"):
        raise _invalid(f"image {position} is not an image")
    return f"data:{mime};base64,{base64.b64encode(bytes(data)).decode()}"
