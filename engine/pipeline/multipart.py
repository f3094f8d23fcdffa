"""Uploaded files, and multipart/form-data bodies for backends that take uploads (audio)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.mapping.runtime import MISSING

__all__ = ["UploadedFile", "encode_multipart"]


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file a client uploaded; mappings see `filename`, `content_type` and `size`, and pass it on whole."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)


def _escape(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")


def encode_multipart(fields: Mapping[str, Any]) -> tuple[bytes, str]:
    """A multipart/form-data body and its content type. Lists repeat their field; files become file parts."""
    boundary = f"turnout-{uuid.uuid4().hex}"
    parts: list[bytes] = []
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            if item is None or item is MISSING:
                continue
            head = f'--{boundary}\r\nContent-Disposition: form-data; name="{_escape(name)}"'
            if isinstance(item, UploadedFile):
                head += f'; filename="{_escape(item.filename)}"\r\nContent-Type: {item.content_type}'
                payload = item.data
            else:
                payload = (str(item).lower() if isinstance(item, bool) else str(item)).encode()
            parts.append(head.encode() + b"\r\n\r\n" + payload + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
