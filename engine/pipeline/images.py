"""Fetch http(s) image URLs into data: URLs, for backends that only take inline images.

Limits (size, time) come from settings; a fetch that fails is the client's problem (400), named by URL.
Only runs when the operation asks for it and a message really holds a remote image.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from engine.errors import InvalidRequest, UpstreamError
from engine.upstream import UpstreamClient

__all__ = ["inline_remote_images"]


def _remote_image_parts(messages: Any) -> list[dict[str, Any]]:
    parts = []
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for part in content:
            if isinstance(part, dict) and part.get("type") == "image_url":
                image = part.get("image_url")
                url = image.get("url") if isinstance(image, dict) else None
                if isinstance(url, str) and url.startswith(("http://", "https://")):
                    parts.append(part)
    return parts


async def inline_remote_images(
    request: dict[str, Any], client: UpstreamClient, *, timeout: float, max_bytes: int
) -> dict[str, Any]:
    """The request with remote image URLs replaced by data: URLs (a copy; the input is not changed)."""
    if not _remote_image_parts(request.get("messages")):
        return request
    messages = [_copy_message(m) for m in request["messages"]]
    parts = _remote_image_parts(messages)
    urls = [part["image_url"]["url"] for part in parts]
    fetched = await asyncio.gather(*(_fetch(client, url, timeout, max_bytes) for url in urls))
    for part, data_url in zip(parts, fetched, strict=True):
        part["image_url"] = {**part["image_url"], "url": data_url}
    return {**request, "messages": messages}


def _copy_message(message: Any) -> Any:
    if isinstance(message, dict) and isinstance(message.get("content"), list):
        return {**message, "content": [dict(p) if isinstance(p, dict) else p for p in message["content"]]}
    return message


async def _fetch(client: UpstreamClient, url: str, timeout: float, max_bytes: int) -> str:
    shown = url if len(url) <= 120 else url[:117] + "..."
    try:
        response = await client.send("GET", url, headers={}, body=None, timeout=timeout, label="image fetch")
    except UpstreamError as exc:
        raise InvalidRequest(f"could not fetch image {shown}: {exc.message}", param="messages") from exc
    try:
        if response.status != 200:
            raise InvalidRequest(f"could not fetch image {shown}: HTTP {response.status}", param="messages")
        declared = int(response.headers.get("content-length") or 0)
        if declared > max_bytes:
            raise InvalidRequest(f"image {shown} is larger than {max_bytes} bytes", param="messages")
        data = bytearray()
        async for chunk in response.chunks():
            data += chunk
            if len(data) > max_bytes:
                raise InvalidRequest(f"image {shown} is larger than {max_bytes} bytes", param="messages")
    except UpstreamError as exc:
        raise InvalidRequest(f"could not fetch image {shown}: {exc.message}", param="messages") from exc
    finally:
        response.close()
    mime = response.headers.get("content-type", "image/png").split(";", 1)[0].strip() or "image/png"
    if not mime.startswith("image/"):
        raise InvalidRequest(f"{shown} is not an image (content-type {mime})", param="messages")
    return f"data:{mime};base64,{base64.b64encode(bytes(data)).decode()}"
