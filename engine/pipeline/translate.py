"""Calling compiled mapping sections, with their failures turned into the right errors."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import msgspec

from engine.errors import InvalidRequest, MappingFailed, UpstreamStatus
from engine.mapping.compiler import CompiledSection
from engine.mapping.runtime import MISSING, MappingRejected, MappingRuntimeError

__all__ = [
    "encode_json",
    "evaluate",
    "mapped_error",
    "mapping_failed",
    "report_mapping_failure",
    "upstream_error",
]

log = logging.getLogger("turnout.mapping")

encode_json = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def evaluate(section: CompiledSection, *args: Any) -> Any:
    try:
        return section(*args)
    except MappingRejected as exc:  # `reject(message, param)`: the mapping refused the request
        raise InvalidRequest(exc.detail, param=exc.param) from None
    except MappingRuntimeError as exc:
        raise mapping_failed(exc) from exc


def mapping_failed(exc: MappingRuntimeError) -> MappingFailed:
    """The client's 502 for a mapping that failed, owned by the file's provider or dialect until the
    caller names the deployment; nothing internal (no path, no exception text) goes to the client."""
    folder, _, file = exc.location.rpartition(":")[0].rpartition("/")
    name = file.removesuffix(".yaml")
    owner = f"the {name} dialect" if folder == "dialects" else name
    failure = MappingFailed(owner, exc.where, exc.detail)
    failure.__cause__ = exc.__cause__ or exc
    return failure


def report_mapping_failure(failure: MappingFailed, request_id: str | None) -> None:
    """Name the request in the client's message, and log where and why the mapping failed under that
    request id: the one place the server's path appears. Once per failure."""
    if failure.logged:
        return
    failure.logged = True
    failure.name_request(request_id)
    log.error(
        "request %s: the mapping for %s failed at %s: %s",
        request_id or "-",
        failure.owner,
        failure.where,
        failure.detail,
        exc_info=failure.__cause__,
    )


def upstream_error(
    errors: CompiledSection | None,
    status: int,
    raw: bytes,
    headers: Mapping[str, str],
    view: dict[str, Any],
    label: str,
) -> UpstreamStatus:
    """The backend's error answer as an OpenAI-style error that names the backend."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        body: Any = _decode(raw) if raw else MISSING
    except msgspec.DecodeError:
        body = MISSING
    fields: dict[str, Any] = {}
    if errors is not None:
        try:
            fields = errors(status, body, text, dict(headers), view) or {}
        except MappingRuntimeError:
            fields = {}
    message = fields.get("message") or text[:500] or f"HTTP {status}"
    passed = {"retry-after": headers["retry-after"]} if "retry-after" in headers else {}
    if not passed and fields.get("retry_after") not in (None, MISSING, ""):
        passed = _retry_after(fields["retry_after"])
    code = fields.get("code")
    return UpstreamStatus(
        status,
        f"{label} returned HTTP {status}: {message}",
        code=str(code) if code is not None else None,
        param=fields.get("param") if isinstance(fields.get("param"), str) else None,
        headers=passed,
    )


def mapped_error(problem: Any, label: str, when: str) -> UpstreamStatus:
    """An error a mapping recognised inside an answer: text, or {message, code, status}."""
    if isinstance(problem, dict):
        message = str(problem.get("message") or problem)
        code = problem.get("code")
        given = problem.get("status")
        status = given if isinstance(given, int) else 502
    else:
        message, code, status = str(problem), None, 502
    return UpstreamStatus(status, f"{label} {when}: {message}", code=str(code) if code is not None else None)


def _retry_after(value: Any) -> dict[str, str]:
    """A `retry_after` a mapping read from an error body (seconds, or "28s"), as a whole-seconds header."""
    try:
        seconds = float(str(value).strip().removesuffix("s"))
    except ValueError:
        return {}
    return {"retry-after": str(max(0, math.ceil(seconds)))}
