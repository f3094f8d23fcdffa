"""One handler on the root logger, on standard error, in the format the settings ask for.

The server's own lines (uvicorn's start, stop and access lines) go through it too: `turnout serve`
gives uvicorn no logging configuration of its own.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Literal, TextIO

from engine.logs.formats import JsonFormatter, TextFormatter, redact_outside_gateway
from engine.redact import Redactor

__all__ = ["LogFormat", "configure_logging"]

LogFormat = Literal["text", "json"]

# libraries whose debug lines are about their own machinery (event loop, SQLite thread, HTTP/2 frames),
# not about what the gateway does: at TURNOUT_LOG_LEVEL=debug they still say only what is INFO or more
_CHATTY = ("asyncio", "aiosqlite", "hpack", "httpcore", "multipart", "python_multipart")


class _TurnoutHandler(logging.StreamHandler[TextIO]):
    """Ours, so that configuring again replaces it and leaves other handlers (a test runner's) alone."""


def configure_logging(
    level: str,
    log_format: LogFormat = "text",
    *,
    credentials: Iterable[str | None] = (),
    stream: TextIO | None = None,
) -> None:
    """Lines of `level` and above, to `stream` (standard error), without `credentials` (the master and
    salt keys) even before a gateway serves (a serving gateway redacts every credential it holds)."""
    redact_outside_gateway(Redactor(credentials))
    handler = _TurnoutHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _TurnoutHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    quiet = max(root.level, logging.INFO)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(quiet)
