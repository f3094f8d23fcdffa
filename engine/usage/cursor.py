"""The request log's page cursor: an opaque token for "rows older than this one" (keyset pagination
by row id), shared by GET /turnout/requests and the console's request log."""

from __future__ import annotations

import base64
import binascii

__all__ = ["decode_cursor", "encode_cursor"]

_ROW_IDS = (1, 2**63 - 1)  # request_log.id is a BIGINT


def encode_cursor(row_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{row_id}".encode()).decode().rstrip("=")


def decode_cursor(text: str) -> int:
    """The row id a cursor stands for; ValueError when it is not one `encode_cursor` gave out."""
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (ValueError, binascii.Error):  # UnicodeDecodeError is a ValueError
        raise ValueError("not a cursor") from None
    kind, _, number = decoded.partition(":")
    if kind != "id" or not number.isdigit() or not _ROW_IDS[0] <= int(number[:20]) <= _ROW_IDS[1]:
        raise ValueError("not a cursor")
    return int(number)
