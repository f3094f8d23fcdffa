"""The reporting API over the request log, for operators (the master key; a virtual key gets 403).

    GET /turnout/usage     group_by=key,alias,deployment,day  start  end  key_id  alias  deployment_id
                           -> {"object": "list", "group_by", "start", "end", "data": [group fields + totals]}
    GET /turnout/requests  limit  cursor  key_id  alias  deployment_id  status  errors  start  end
                           -> {"object": "list", "data": [rows], "next_cursor"}  newest first
    GET /spend/logs        api_key  start_date  end_date  request_id  -> LiteLLM's spend-log objects

`start` is inclusive and `end` exclusive; either is an ISO date or datetime (UTC when it has no
offset), and a date as `end` means the end of that day. Bad input is a 400 naming the parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from litestar import Request, Response, get

from engine.api.auth import require_operator
from engine.api.state import gateway_of
from engine.errors import InvalidRequest, NotFound
from engine.keys.ring import hash_key
from engine.pipeline.translate import encode_json
from engine.store.base import as_utc, utcnow
from engine.store.request_log import RequestLogRow
from engine.usage.cursor import decode_cursor, encode_cursor
from engine.usage.report import GROUPS, LogFilter, UsageReport, UsageTotals

__all__ = ["request_log", "spend_logs", "usage_report"]

DEFAULT_DAYS = 30  # the usage report's window when `start` is not given
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000  # also the cap of /spend/logs, which LiteLLM does not paginate
_COLUMNS = tuple(column.key for column in RequestLogRow.__table__.columns)
_INT32 = (-(2**31), 2**31 - 1)  # key_id, deployment_id and status are INTEGER columns

Params = Mapping[str, str]


def _report(request: Request[Any, Any, Any]) -> UsageReport:
    return UsageReport(gateway_of(request).sessions)


def _json(body: Any) -> Response[bytes]:
    return Response(encode_json(body), media_type="application/json")


def _text(params: Params, name: str) -> str | None:
    value = params.get(name)
    if value and "\x00" in value:  # PostgreSQL cannot compare text holding NUL: say so, not a 500
        raise InvalidRequest(f"{name} must not contain NUL characters", param=name)
    return value if value else None  # an empty parameter counts as absent


def _integer(params: Params, name: str, *, low: int = _INT32[0], high: int = _INT32[1]) -> int | None:
    """A whole-number parameter, within what its column holds (32 bits unless told)."""
    text = _text(params, name)
    if text is None:
        return None
    try:
        value = int(text) if len(text) <= 20 else None
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise InvalidRequest(
            f"{name} must be a whole number from {low} to {high}; got {text[:40]!r}", param=name
        )
    return value


def _flag(params: Params, name: str) -> bool:
    text = (_text(params, name) or "false").lower()
    if text not in ("true", "false", "1", "0"):
        raise InvalidRequest(f"{name} must be true or false; got {text!r}", param=name)
    return text in ("true", "1")


def _moment(params: Params, name: str, *, end: bool) -> datetime | None:
    """An ISO date or datetime as an aware UTC datetime; a date `end` is the next midnight (exclusive)."""
    text = _text(params, name)
    if text is None:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        return datetime.combine(day + timedelta(days=1) if end else day, time(), UTC)
    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError:
        # a "+" in a query string arrives as a space: say so, it is the usual cause
        hint = " (encode '+' as %2B, or use Z for UTC)" if " " in text else ""
        raise InvalidRequest(
            f"{name} must be an ISO date (YYYY-MM-DD) or datetime; got {text[:40]!r}{hint}", param=name
        ) from None


def _bounded_moment(params: Params, name: str, *, end: bool) -> datetime | None:
    """_moment, with the edges of the calendar (the day after 9999-12-31) a 400 too."""
    try:
        return _moment(params, name, end=end)
    except OverflowError:
        raise InvalidRequest(f"{name} is outside the dates the log can hold", param=name) from None


def _window(
    params: Params, start_name: str, end_name: str, *, default_days: int | None = None
) -> tuple[datetime | None, datetime | None]:
    start = _bounded_moment(params, start_name, end=False)
    end = _bounded_moment(params, end_name, end=True)
    if default_days is not None:
        end = end or utcnow()
        try:
            start = start or end - timedelta(days=default_days)
        except OverflowError:
            raise InvalidRequest(
                f"{end_name} is too early for a {default_days}-day window", param=end_name
            ) from None
    if start is not None and end is not None and start > end:
        raise InvalidRequest(f"{start_name} must not be after {end_name}", param=start_name)
    return start, end


def _group_by(params: Params) -> list[str]:
    text = params.get("group_by", "day")
    names = [name.strip() for name in text.split(",")]
    unknown = [name for name in names if name not in GROUPS]
    if unknown:
        raise InvalidRequest(
            f"group_by is a comma list of {', '.join(GROUPS)}; unknown: {', '.join(map(repr, unknown))}",
            param="group_by",
        )
    return list(dict.fromkeys(names))  # a repeated word groups once


def _filter(params: Params, start: datetime | None, end: datetime | None, **more: Any) -> LogFilter:
    return LogFilter(
        start=start,
        end=end,
        key_id=_integer(params, "key_id"),
        alias=_text(params, "alias"),
        deployment_id=_integer(params, "deployment_id"),
        **more,
    )


def _decimal_text(value: Decimal) -> str:
    """Exact and plain: "0.00012", "3", "0" (never "1.2E-4" or "0E-10")."""
    return format(value.normalize(), "f")


def _iso(moment: datetime) -> str:
    return as_utc(moment).isoformat()


def _usage_item(totals: UsageTotals) -> dict[str, Any]:
    group = {
        name: value.isoformat() if isinstance(value, date) else value for name, value in totals.group.items()
    }
    average = totals.latency_ms_avg
    return {
        **group,
        "requests": totals.requests,
        "errors": totals.errors,
        "prompt_tokens": totals.prompt_tokens,
        "completion_tokens": totals.completion_tokens,
        "reasoning_tokens": totals.reasoning_tokens,
        "cached_tokens": totals.cached_tokens,
        "cost": _decimal_text(totals.cost),
        "latency_ms_avg": None if average is None else round(average, 2),
    }


@get("/turnout/usage", guards=[require_operator])
async def usage_report(request: Request[Any, Any, Any]) -> Response[bytes]:
    params = request.query_params
    group_by = _group_by(params)
    start, end = _window(params, "start", "end", default_days=DEFAULT_DAYS)
    assert start is not None and end is not None
    groups = await _report(request).usage(group_by, _filter(params, start, end))
    return _json(
        {
            "object": "list",
            "group_by": group_by,
            "start": _iso(start),
            "end": _iso(end),
            "data": [_usage_item(totals) for totals in groups],
        }
    )


def _decode_cursor(params: Params) -> int | None:
    text = _text(params, "cursor")
    if text is None:
        return None
    try:
        return decode_cursor(text)
    except ValueError:
        raise InvalidRequest(
            "cursor is not one this API gave out (use next_cursor as it is)", param="cursor"
        ) from None


def _row_item(row: RequestLogRow) -> dict[str, Any]:
    item = {name: getattr(row, name) for name in _COLUMNS}
    item["cost"] = None if row.cost is None else _decimal_text(row.cost)
    item["created_at"] = _iso(row.created_at)
    return item


@get("/turnout/requests", guards=[require_operator])
async def request_log(request: Request[Any, Any, Any]) -> Response[bytes]:
    params = request.query_params
    limit = _integer(params, "limit", low=1, high=MAX_LIMIT) or DEFAULT_LIMIT
    before_id = _decode_cursor(params)
    start, end = _window(params, "start", "end")
    where = _filter(
        params, start, end, status=_integer(params, "status"), errors_only=_flag(params, "errors")
    )
    # one row more than asked says whether another page follows
    rows = await _report(request).requests(where, limit=limit + 1, before_id=before_id)
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].id) if len(rows) > limit else None
    return _json({"object": "list", "data": [_row_item(row) for row in page], "next_cursor": next_cursor})


def _spend_item(row: RequestLogRow, key_hash: str | None) -> dict[str, Any]:
    prompt, completion = row.prompt_tokens or 0, row.completion_tokens or 0
    started = as_utc(row.created_at)
    first_chunk = None if row.ttft_ms is None else started + timedelta(milliseconds=row.ttft_ms)
    return {
        "request_id": row.request_id,
        "call_type": row.operation,
        "api_key": key_hash,
        "model": row.upstream_model,
        "model_id": None if row.deployment_id is None else str(row.deployment_id),
        "model_group": row.alias,
        "custom_llm_provider": row.provider,
        "spend": float(row.cost or 0),
        "total_tokens": prompt + completion,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "startTime": started.isoformat(),
        "endTime": (started + timedelta(milliseconds=row.latency_ms)).isoformat(),
        "completionStartTime": None if first_chunk is None else first_chunk.isoformat(),
        "status": "success" if row.status < 400 else "failure",
        "cache_hit": "True" if row.cache_hit else "False",  # LiteLLM's spend logs spell it as text
    }


async def _key_filter(report: UsageReport, params: Params) -> int | None:
    """The key id for `api_key`: a whole key, or (as LiteLLM's UI sends it) its SHA-256 hex."""
    key = _text(params, "api_key")
    if key is None:
        return None
    is_hash = len(key) == 64 and all(char in "0123456789abcdef" for char in key)
    key_id = await report.key_id(key if is_hash else hash_key(key))
    if key_id is None:
        raise NotFound("no such key", param="api_key", code="key_not_found")
    return key_id


@get("/spend/logs", guards=[require_operator])
async def spend_logs(request: Request[Any, Any, Any]) -> Response[bytes]:
    params = request.query_params
    report = _report(request)
    start, end = _window(params, "start_date", "end_date")
    key_id = await _key_filter(report, params)
    where = LogFilter(start=start, end=end, key_id=key_id, request_id=_text(params, "request_id"))
    rows = await report.requests_with_key_hash(where, limit=MAX_LIMIT)
    return _json([_spend_item(row, key_hash) for row, key_hash in rows])
