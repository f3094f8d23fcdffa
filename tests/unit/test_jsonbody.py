"""The nesting bound of client JSON (engine.jsonbody) and of the `fromjson` filters that parse JSON
text a client sent (tool arguments), which ends up in upstream bodies too."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import InvalidRequest
from engine.jsonbody import MAX_JSON_DEPTH, decode_json_body, too_deep
from engine.mapping.filters import FILTERS


def nested(depth: int) -> Any:
    value: Any = 1
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def test_the_bound_is_exact() -> None:
    assert not too_deep(nested(MAX_JSON_DEPTH))
    assert too_deep(nested(MAX_JSON_DEPTH + 1))
    assert not too_deep("text") and not too_deep(5) and not too_deep({}) and not too_deep([[]], 2)
    assert too_deep([[[]]], 2)
    # the deepest branch counts, wherever it is
    assert too_deep({"a": 1, "b": [1, {"c": [2]}], "z": nested(MAX_JSON_DEPTH)})


def test_decoding_refuses_what_it_cannot_bound() -> None:
    assert decode_json_body(b'{"a": [1, 2]}') == {"a": [1, 2]}
    for raw in (b"[" * 10_000 + b"]" * 10_000, b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)):
        with pytest.raises(InvalidRequest) as caught:
            decode_json_body(raw)
        assert caught.value.code == "json_too_deep" and caught.value.status == 400
    for raw in (b"{", b"[1e400]", b"NaN", b""):
        with pytest.raises(InvalidRequest) as caught:
            decode_json_body(raw)
        assert caught.value.code == "invalid_json"


def test_fromjson_holds_client_text_to_the_same_bound() -> None:
    deep = "[" * 5000 + "]" * 5000
    assert FILTERS["fromjson_or"](deep, {}) == {}
    assert FILTERS["fromjson_or"]("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, {}) != {}
    with pytest.raises(ValueError, match="deeper"):
        FILTERS["fromjson"](deep)
