"""Logs an operator can read: one line per event, the request id on every line written while handling a
request, text or JSON, and no credential at any level."""

from __future__ import annotations

from engine.logs.context import RequestIds, current_request_id, new_request_id
from engine.logs.formats import JsonFormatter, TextFormatter, redacting_with
from engine.logs.setup import LogFormat, configure_logging

__all__ = [
    "JsonFormatter",
    "LogFormat",
    "RequestIds",
    "TextFormatter",
    "configure_logging",
    "current_request_id",
    "new_request_id",
    "redacting_with",
]
