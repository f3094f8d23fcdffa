"""What a request-log row can hold, and records made to fit it before they are queued.

Some values of a record come from outside: the alias is the client's `model` field, error types and
codes come from upstream error bodies and stream events, token counts from upstream usage. PostgreSQL
refuses a whole INSERT for one value it cannot store: text longer than its column, a NUL byte, a
lone surrogate (no UTF-8 form), an integer past 32 bits, a cost past its NUMERIC(20, 10). `fit` makes
every record storable once, before it is queued; most values are short plain ASCII and pass as they
are. `stripped` is the last form tried for a row the database still refuses: numbers only.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from sqlalchemy import String

from engine.store.request_log import RequestLogRow
from engine.usage.record import UsageRecord

__all__ = ["MAX_COST", "MAX_COUNT", "TEXT_LENGTHS", "bounded_text", "fit", "stripped"]


def _lengths() -> dict[str, int]:
    lengths = {}
    for column in RequestLogRow.__table__.columns:
        if isinstance(column.type, String) and column.type.length is not None:
            lengths[column.name] = column.type.length
    return lengths


TEXT_LENGTHS = _lengths()  # characters, as PostgreSQL counts VARCHAR(n)
_ALIAS = TEXT_LENGTHS["alias"]
_OPERATION = TEXT_LENGTHS["operation"]
_PROVIDER = TEXT_LENGTHS["provider"]
_MODEL = TEXT_LENGTHS["upstream_model"]
_ERROR_TYPE = TEXT_LENGTHS["error_type"]
_ERROR_CODE = TEXT_LENGTHS["error_code"]
MAX_COUNT = 2**31 - 1  # token columns are INTEGER
MAX_COST = Decimal("9999999999.9999999999")  # NUMERIC(20, 10)


def bounded_text(value: object, limit: int) -> str:
    """`value` as text PostgreSQL stores: at most `limit` characters, no NUL, no lone surrogate."""
    if type(value) is not str:  # an upstream error code may be a number or an object
        try:
            value = str(value)
        except Exception:  # an int past str()'s digit limit, an object nested too deep
            value = type(value).__name__
    if len(value) <= limit and value.isascii() and "\x00" not in value:
        return value  # the common case: a short plain name, returned as it is
    value = value[:limit].replace("\x00", "\ufffd")
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")  # a lone surrogate becomes "?"
    return value


def fit(record: UsageRecord) -> UsageRecord:
    """Make `record` storable, in place (and return it). About a microsecond: on the request path."""
    record.alias = bounded_text(record.alias, _ALIAS)
    record.operation = bounded_text(record.operation, _OPERATION)
    if record.provider is not None:
        record.provider = bounded_text(record.provider, _PROVIDER)
    if record.upstream_model is not None:
        record.upstream_model = bounded_text(record.upstream_model, _MODEL)
    if record.error_type is not None:
        record.error_type = bounded_text(record.error_type, _ERROR_TYPE)
    if record.error_code is not None:
        record.error_code = bounded_text(record.error_code, _ERROR_CODE)
    if (record.prompt_tokens or 0) > MAX_COUNT:
        record.prompt_tokens = MAX_COUNT
    if (record.completion_tokens or 0) > MAX_COUNT:
        record.completion_tokens = MAX_COUNT
    if (record.reasoning_tokens or 0) > MAX_COUNT:
        record.reasoning_tokens = MAX_COUNT
    if (record.cached_tokens or 0) > MAX_COUNT:
        record.cached_tokens = MAX_COUNT
    cost = record.cost
    if cost is not None and (cost.is_nan() or abs(cost) > MAX_COST):  # NaN: no order to compare
        record.cost = None if cost.is_nan() else MAX_COST.copy_sign(cost)
    return record


def stripped(record: UsageRecord) -> UsageRecord:
    """The row without any text that came from outside: what was asked, when, by which key, how it
    ended, its counts and cost (so reports and spend stay whole)."""
    return replace(record, alias="", provider=None, upstream_model=None, error_type=None, error_code=None)
