"""Hypothesis strategies from JSON Schemas: bodies that fit a route's schema, and mutations of them.

Reads the subset the gateway's schemas are written in (the dialects' `schema` sections and what
msgspec.json.schema makes of the canonical request structs): type, enum, const, anyOf, $ref/$defs,
properties/required, items, and the numeric, length and count bounds. Generated values stay small
(short strings, few items) so that a fuzz run sends many bodies quickly.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

__all__ = ["HOSTILE_VALUES", "encode", "from_schema", "json_values", "mutated"]

_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
_SCALARS = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | _TEXT


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


# what a hostile client puts in a field: wrong kinds, numbers no column holds, NUL, size and depth
HOSTILE_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    1.5,
    10**30,
    -(2**64),
    1e308,
    "",
    "x" * 5000,
    "nul\x00byte",
    "3000000d",
    "9999-12-31",
    [],
    [None],
    {},
    {"type": "unknown"},
    _nested(20),
    _nested(150),  # past the gateway's nesting bound
    "\x00nested 5000 deep\x00",  # encode() puts 5,000 nested arrays here: too deep to build as a value
]
_DEEP = json.dumps(HOSTILE_VALUES[-1]).encode()


def encode(body: Any) -> bytes:
    """A generated body as JSON bytes, with 5,000 nested arrays where a mutation asked for them."""
    raw = json.dumps(body).encode()
    return raw.replace(_DEEP, b"[" * 5000 + b"]" * 5000) if _DEEP in raw else raw


def json_values(depth: int = 2) -> st.SearchStrategy[Any]:
    """Any small JSON value."""
    if depth <= 0:
        return _SCALARS
    inner = json_values(depth - 1)
    return _SCALARS | st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3)


def from_schema(schema: dict[str, Any], defs: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """A strategy for values that fit `schema` (`defs`: the document's $defs)."""
    defs = {**(defs or {}), **schema.get("$defs", {})}
    if "$ref" in schema:
        return from_schema(defs[schema["$ref"].removeprefix("#/$defs/")], defs, depth)
    if "anyOf" in schema:
        return st.one_of([from_schema(alternative, defs, depth) for alternative in schema["anyOf"]])
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kinds = schema.get("type")
    if kinds is None:
        return json_values(1)
    kinds = kinds if isinstance(kinds, list) else [kinds]
    return st.one_of([_of_kind(kind or "null", schema, defs, depth) for kind in kinds])


def _of_kind(kind: str, schema: dict[str, Any], defs: dict[str, Any], depth: int) -> Any:
    if kind == "object":
        return _object(schema, defs, depth)
    if kind == "array":
        items = from_schema(schema["items"], defs, depth + 1) if "items" in schema else json_values(1)
        low = schema.get("minItems", 0)
        return st.lists(items, min_size=low, max_size=max(low, schema.get("maxItems", 3 if depth < 4 else 1)))
    if kind == "string":
        low = schema.get("minLength", 0)
        return st.text(
            st.characters(codec="utf-8", exclude_categories=["Cs"]),
            min_size=low,
            max_size=min(schema.get("maxLength", 12), max(low, 12)),
        )
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2**31)), schema.get("maximum", 2**31))
    if kind == "number":
        low, high = schema.get("minimum"), schema.get("maximum")
        return st.floats(low, high, allow_nan=False, allow_infinity=False) | st.integers(
            int(low) if low is not None else -1000, int(high) if high is not None else 1000
        )
    if kind == "boolean":
        return st.booleans()
    return st.none()


def _object(schema: dict[str, Any], defs: dict[str, Any], depth: int) -> Any:
    properties = schema.get("properties", {})
    required = list(schema.get("required", ()))  # a list: a set's order changes with the hash seed
    fields = {name: from_schema(sub, defs, depth + 1) for name, sub in properties.items()}
    optional = {} if depth > 5 else {name: s for name, s in fields.items() if name not in required}
    return st.fixed_dictionaries(
        {name: fields.get(name, json_values(1)) for name in required}, optional=optional
    )


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value a mutation can change, outermost first."""
    found = [at]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*at, index))
    return found


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replaced(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replaced(value[head], rest, new)
    return copy


def _removed(value: Any, path: tuple[Any, ...]) -> Any:
    head, rest = path[0], path[1:]
    if rest:
        copy = dict(value) if isinstance(value, dict) else list(value)
        copy[head] = _removed(value[head], rest)
        return copy
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k != head}
    return [v for i, v in enumerate(value) if i != head]


@st.composite
def mutated(draw: st.DrawFn, bodies: st.SearchStrategy[Any]) -> Any:
    """A body that fit the schema, with one place changed: a hostile value, another JSON value, or
    left out."""
    body = draw(bodies)
    path = draw(st.sampled_from(_paths(body)))
    action = draw(st.sampled_from(["hostile", "hostile", "random", "remove"]))
    if action == "remove" and path:
        return _removed(body, path)
    new = draw(st.sampled_from(HOSTILE_VALUES) if action != "random" else json_values())
    return _replaced(body, path, new)
