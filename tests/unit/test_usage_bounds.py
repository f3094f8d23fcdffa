"""Records made to fit the request log: what a client or an upstream sends is cut and cleaned once,
before the row is queued, so the database never refuses it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from engine.usage.bounds import MAX_COST, MAX_COUNT, TEXT_LENGTHS, bounded_text, fit, stripped
from engine.usage.record import UsageRecord


def _record(**fields: Any) -> UsageRecord:
    base: dict[str, Any] = {
        "request_id": "r",
        "created_at": datetime.now(UTC),
        "operation": "chat",
        "alias": "a",
    }
    return UsageRecord(**{**base, **fields})


def test_lengths_are_the_columns() -> None:
    assert TEXT_LENGTHS["alias"] == TEXT_LENGTHS["upstream_model"] == 200
    assert TEXT_LENGTHS["error_type"] == TEXT_LENGTHS["error_code"] == 100


def test_plain_short_text_is_kept_as_it_is() -> None:
    name = "gpt-4o-mini"
    assert bounded_text(name, 200) is name  # no copy on the common path
    assert bounded_text("modèle ☃", 200) == "modèle ☃"  # any storable text is kept


def test_text_is_cut_to_its_column_and_cleaned() -> None:
    assert bounded_text("m" * 4_000_000, 200) == "m" * 200
    assert bounded_text("a\x00b", 200) == "a\ufffdb"
    assert bounded_text("a\ud800b", 200) == "a?b"  # a lone surrogate has no UTF-8 form
    assert bounded_text("é" * 300 + "\x00", 200) == "é" * 200
    assert bounded_text(429, 100) == "429"  # an error code sent as a number
    assert bounded_text(10**5000, 100) == "int"  # past str()'s digit limit: no error on the request path


def test_fit_bounds_every_field_from_outside() -> None:
    record = fit(
        _record(
            alias="x" * 300,
            provider="p\x00",
            upstream_model="m" * 201,
            error_type="t" * 101,
            error_code={"nested": "object"},
            prompt_tokens=10**12,
            completion_tokens=5,
            reasoning_tokens=2**31,
            cached_tokens=None,
            cost=Decimal("1e30"),
        )
    )
    assert (len(record.alias), record.provider, len(record.upstream_model or "")) == (200, "p\ufffd", 200)
    assert (len(record.error_type or ""), record.error_code) == (100, "{'nested': 'object'}")
    assert (record.prompt_tokens, record.completion_tokens, record.reasoning_tokens) == (
        MAX_COUNT,
        5,
        MAX_COUNT,
    )
    assert record.cached_tokens is None and record.cost == MAX_COST
    assert fit(_record(cost=Decimal("-1e30"))).cost == -MAX_COST
    assert fit(_record(cost=Decimal("NaN"))).cost is None
    assert fit(_record(cost=Decimal("0.000104"))).cost == Decimal("0.000104")


def test_the_stripped_form_keeps_numbers_and_drops_outside_text() -> None:
    record = _record(
        alias="poison",
        key_id=3,
        provider="p",
        error_type="t",
        error_code="c",
        prompt_tokens=7,
        cost=Decimal(1),
    )
    bare = stripped(record)
    assert (bare.alias, bare.provider, bare.error_type, bare.error_code) == ("", None, None, None)
    assert (bare.request_id, bare.key_id, bare.prompt_tokens, bare.cost) == ("r", 3, 7, Decimal(1))
    assert record.alias == "poison", "a copy: the record itself is unchanged"
