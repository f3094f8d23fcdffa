"""The request log page's filter: query parameters (a bookmarkable GET form) to a LogFilter, with an
error per field for what does not parse."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from engine.usage.cursor import decode_cursor
from engine.usage.report import LogFilter

__all__ = ["STATUS_CHOICES", "TIME_CHOICES", "RequestQuery", "parse_query"]

STATUS_CHOICES: Final = {"": "All", "2xx": "2xx", "4xx": "4xx", "5xx": "5xx", "499": "499 (client left)"}
_STATUS_RANGES: Final = {"2xx": (200, 299), "4xx": (400, 499), "5xx": (500, 599)}
TIME_CHOICES: Final = {"": "Any time", "hour": "Last hour", "day": "Last day", "30d": "Last 30 days"}
_LOOKBACK: Final = {"hour": timedelta(hours=1), "day": timedelta(days=1), "30d": timedelta(days=30)}
_MAX_TEXT = 200  # an alias column's length: a longer value matches nothing anyway


@dataclass(slots=True)
class RequestQuery:
    """What the form said (to show it again), what it means, and what could not be read."""

    values: dict[str, str]
    where: LogFilter = field(default_factory=LogFilter)
    before_id: int | None = None
    errors: dict[str, str] = field(default_factory=dict)


def _moment(text: str) -> datetime:
    """A datetime-local value (or any ISO datetime), UTC when it has no offset."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _key(text: str, errors: dict[str, str]) -> tuple[int | None, bool]:
    """(key id, only requests without a key) from the key choice."""
    if text == "master":
        return None, True
    if text and not (text.isdigit() and len(text) < 10):
        errors["key"] = "Choose a key from the list."
    return (int(text) if text and "key" not in errors else None), False


def _status(status: str, code: str, errors: dict[str, str]) -> tuple[int | None, tuple[int, int] | None]:
    """(exact status, status range) from the status choice or the exact code (which wins)."""
    if code:
        if code.isdigit() and 100 <= int(code) <= 599:
            return int(code), None
        errors["code"] = "A status code is a number from 100 to 599."
    elif status == "499":
        return 499, None
    elif status in _STATUS_RANGES:
        return None, _STATUS_RANGES[status]
    elif status:
        errors["status"] = "Choose a status from the list."
    return None, None


def _window(
    values: dict[str, str], now: datetime, errors: dict[str, str]
) -> tuple[datetime | None, datetime | None]:
    """(start, end) from the period choice and the from/to fields (the later start wins)."""
    start = end = None
    if values["time"] in _LOOKBACK:
        start = now - _LOOKBACK[values["time"]]
    elif values["time"]:
        errors["time"] = "Choose a period from the list."
    for name in ("from", "to"):
        if not values[name]:
            continue
        try:
            moment = _moment(values[name])
        except ValueError:
            errors[name] = "A date and time, e.g. 2026-12-06T14:30 (UTC)."
            continue
        if name == "from":
            start = max(start, moment) if start else moment
        else:
            end = moment
    if start is not None and end is not None and start > end:
        errors["to"] = "The end is before the start."
    return start, end


def parse_query(params: Mapping[str, str], now: datetime) -> RequestQuery:
    names = ("key", "alias", "status", "code", "time", "from", "to", "cursor")
    values = {name: params.get(name, "").strip()[:_MAX_TEXT] for name in names}
    query = RequestQuery(values)
    errors = query.errors
    key_id, without_key = _key(values["key"], errors)
    status, status_range = _status(values["status"], values["code"], errors)
    start, end = _window(values, now, errors)
    if values["cursor"]:
        try:
            query.before_id = decode_cursor(values["cursor"])
        except ValueError:
            errors["cursor"] = "That page link is broken: start again from the newest."
    query.where = LogFilter(
        start=start,
        end=end,
        key_id=key_id,
        without_key=without_key,
        alias=values["alias"].replace("\x00", "") or None,
        status=status,
        status_range=status_range,
    )
    return query
