"""The two shapes of a log line, both with the request id and both without credentials.

- text (the default): `2026-12-06T18:40:01.123Z INFO turnout [3f2a…]: message`, the id in brackets only
  on lines written while handling a request; the message on one line (control characters escaped), a
  traceback after it on its own lines.
- json (`TURNOUT_LOG_FORMAT=json`, for log shippers): one object per line with `time`, `level`,
  `logger`, `message`, `request_id` (null outside a request), `exception` when there is one, and the
  fields a call passed in `extra=`.

Every line is run through the redactor of the credentials the gateway holds (engine.redact) after it is
formatted, whichever code wrote it, at every level: a library's debug line, a traceback, an upstream's
error text. Only lines that pass the level are formatted, so a level that is off costs nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from engine.logs.context import current_request_id
from engine.redact import GENERIC, Redactor

__all__ = ["JsonFormatter", "TextFormatter", "redact_outside_gateway", "redacting_with"]

# the attributes every LogRecord has; anything else on a record came from `extra=`
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",  # Python 3.12+
    "color_message",  # uvicorn's coloured copy of its message
}

_outside: Redactor = GENERIC  # credential shapes, and the credentials the process settings hold
_serving: Callable[[], Redactor] | None = None  # a serving gateway's: every credential it holds


def _redactor() -> Redactor:
    return _serving() if _serving is not None else _outside


def redact_outside_gateway(redactor: Redactor) -> None:
    """The redactor for lines written while no gateway serves (start, import, commands)."""
    global _outside
    _outside = redactor


@contextmanager
def redacting_with(redactor: Callable[[], Redactor]) -> Iterator[None]:
    """Log lines are redacted with `redactor()` (asked per line: the credentials change with the routing
    table) until the block ends; the gateway holds it while it serves."""
    global _serving
    previous, _serving = _serving, redactor
    try:
        yield
    finally:
        _serving = previous


# a message stays on its line: control characters (a client's text in a message, say) are escaped
_ONE_LINE = {code: f"\\x{code:02x}" for code in range(32) if code != 9} | {10: "\\n", 13: "\\r", 127: "\\x7f"}


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        request_id = current_request_id()
        where = f"{record.name} [{request_id}]" if request_id else record.name
        message = record.getMessage().translate(_ONE_LINE)
        line = f"{_timestamp(record)} {record.levelname} {where}: {message}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return _redactor().text(line)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        redactor = _redactor()
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": redactor.text(record.getMessage()),
            "request_id": current_request_id(),
        }
        if record.exc_info:
            entry["exception"] = redactor.text(self.formatException(record.exc_info))
        for name, value in vars(record).items():
            if name not in _STANDARD and name not in entry:
                entry[name] = _plain(value, redactor)
        return json.dumps(entry, ensure_ascii=False, default=lambda other: redactor.text(str(other)))


def _plain(value: Any, redactor: Redactor) -> Any:
    """An `extra=` value as JSON can hold it, its text redacted."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_plain(item, redactor) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item, redactor) for key, item in value.items()}
    return redactor.text(str(value))
