"""engine.logs: the two line formats, the request id from the context, and redaction of every line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from engine.logs import JsonFormatter, RequestIds, TextFormatter, configure_logging, redacting_with
from engine.logs.formats import redact_outside_gateway
from engine.redact import GENERIC, Redactor

PROVIDER_KEY = (
    "Nw4Kq9Zt2Xm7Lp3Rv8Bc5Hd1Jf6Gs0YeUiOo"  # no telling prefix: only a known-credential match finds it
)


@pytest.fixture
def log() -> Iterator[tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("turnout.test-logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream, handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
        redact_outside_gateway(GENERIC)


def _in_a_request(logger: logging.Logger, message: str, *args: object) -> str:
    """Log from inside an HTTP request as RequestIds runs it; the request's id."""
    seen: list[str] = []

    async def app(scope: object, receive: object, send: object) -> None:
        from engine.logs import current_request_id

        seen.append(str(current_request_id()))
        logger.info(message, *args)

    asyncio.run(RequestIds(app)({"type": "http"}, None, None))  # type: ignore[arg-type]
    return seen[0]


def test_a_text_line(log: tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]]) -> None:
    logger, stream, handler = log
    handler.setFormatter(TextFormatter())
    logger.warning("outside %s", "a request")
    request_id = _in_a_request(logger, "model %s", "evil\nINFO forged line\x00")
    first, second = stream.getvalue().splitlines()
    assert first.endswith(" WARNING turnout.test-logs: outside a request")
    assert first[:24].count("-") == 2 and first[23] == "Z"  # 2026-12-06T18:40:01.123Z
    assert second.endswith(f" INFO turnout.test-logs [{request_id}]: model evil\\nINFO forged line\\x00")
    assert len(request_id) == 32


def test_a_json_line(log: tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]]) -> None:
    logger, stream, handler = log
    handler.setFormatter(JsonFormatter())
    logger.info("imported %d", 3, extra={"import": {"created": 3, "source": "config"}, "took_ms": 1.5})
    request_id = _in_a_request(logger, "in a request")
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert set(first) == {"time", "level", "logger", "message", "request_id", "import", "took_ms"}
    assert first["message"] == "imported 3" and first["request_id"] is None and first["level"] == "INFO"
    assert first["import"] == {"created": 3, "source": "config"} and first["took_ms"] == 1.5
    assert second["request_id"] == request_id
    assert third["level"] == "ERROR" and "ValueError: boom" in third["exception"]


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()], ids=["text", "json"])
def test_every_line_is_redacted(
    formatter: logging.Formatter, log: tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]]
) -> None:
    logger, stream, handler = log
    handler.setFormatter(formatter)
    redact_outside_gateway(Redactor(["sk-master-Hv3Rk8Lq2Wz6"]))
    logger.debug("the master key sk-master-Hv3Rk8Lq2Wz6 at debug")
    with redacting_with(lambda: Redactor([PROVIDER_KEY])):
        logger.info("upstream said: bad key %s", PROVIDER_KEY, extra={"echo": [PROVIDER_KEY]})
        try:
            raise RuntimeError(f"rejected {PROVIDER_KEY[:20]}")
        except RuntimeError:
            logger.exception("in a traceback")
    logger.info("after the gateway stopped: %s", PROVIDER_KEY)  # no longer known: it would show again
    written = stream.getvalue()
    assert "sk-master-Hv3Rk8Lq2Wz6" not in written
    lines = written.splitlines()
    assert not any(PROVIDER_KEY[:16] in line for line in lines[:-1]), written
    assert PROVIDER_KEY in lines[-1]  # so the redaction above is the redactor's doing
    assert "***" in written


def test_configure_replaces_only_its_own_handler() -> None:
    root = logging.getLogger()
    before = list(root.handlers)  # an earlier in-process `turnout` command may have left its own
    others = [handler for handler in before if not _ours(handler)]
    level = root.level
    first, second = io.StringIO(), io.StringIO()
    try:
        configure_logging("warning", "text", stream=first)
        configure_logging("debug", "json", stream=second)
        assert [handler for handler in root.handlers if not _ours(handler)] == others
        assert len([handler for handler in root.handlers if _ours(handler)]) == 1
        logging.getLogger("turnout.test-root").debug("hello")
        assert first.getvalue() == "" and json.loads(second.getvalue())["message"] == "hello"
        assert logging.getLogger("asyncio").level == logging.INFO  # its machinery stays quiet at debug
    finally:
        root.handlers[:] = before
        root.setLevel(level)
        redact_outside_gateway(GENERIC)


def _ours(handler: logging.Handler) -> bool:
    return type(handler).__name__ == "_TurnoutHandler"
