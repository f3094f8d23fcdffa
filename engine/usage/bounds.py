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
    if type(value) is not str:
        value = str(value)  # an upstream error code may be a number or an object
    if len(value) <= limit and value.isascii() and "\x00" not in value:
        return value  # the common case: a short plain name, returned as it is
    value = value[:limit].replace("\x00", "\ufffd")
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")  # a lone surrogate becomes "?"
    return value


def _optional(value: object, limit: int) -> str | None:
    return None if value is None else bounded_text(value, limit)


def _count(value: int | None) -> int | None:
    return value if value is None or value <= MAX_COUNT else MAX_COUNT


def fit(record: UsageRecord) -> UsageRecord:
    """Make `record` storable, in place (and return it)."""
    record.alias = bounded_text(record.alias, _ALIAS)
    record.operation = bounded_text(record.operation, _OPERATION)
    record.provider = _optional(record.provider, _PROVIDER)
    record.upstream_model = _optional(record.upstream_model, _MODEL)
    record.error_type = _optional(record.error_type, _ERROR_TYPE)
    record.error_code = _optional(record.error_code, _ERROR_CODE)
    record.prompt_tokens = _count(record.prompt_tokens)
    record.completion_tokens = _count(record.completion_tokens)
    record.reasoning_tokens = _count(record.reasoning_tokens)
    record.cached_tokens = _count(record.cached_tokens)
    cost = record.cost
    if cost is not None and (cost.is_nan() or abs(cost) > MAX_COST):  # NaN: no order to compare
        record.cost = None if cost.is_nan() else MAX_COST.copy_sign(cost)
    return record


def stripped(record: UsageRecord) -> UsageRecord:
    """The row without any text that came from outside: what was asked, when, by which key, how it
    ended, its counts and cost (so reports and spend stay whole)."""
    return replace(record, alias="", provider=None, upstream_model=None, error_type=None, error_code=None)
