"""The checks a compiled request schema is made of: one closure per schema node, and the violation
they raise (engine.mapping.schema compiles a dialect's `schema` into them).

Each check visits its node once and raises SchemaViolation naming what is wrong; containers add
their segment of the path (`messages[0].role`) on the way out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "Check",
    "SchemaViolation",
    "anything",
    "array",
    "by_kind",
    "exactly",
    "kind_of",
    "number",
    "object_of",
    "one_of",
    "shown",
    "string",
    "tagged",
    "wrong_type",
]

Check = Callable[[Any], None]

_INT64 = (-(2**63), 2**63 - 1)
_KINDS = {str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null"}
_KINDS.update({dict: "object", list: "array"})
_ARTICLES = {"integer": "an integer", "array": "an array", "object": "an object"}


class SchemaViolation(Exception):
    """The body does not fit the schema: what is wrong, and where (`param`, e.g. messages[0].role)."""

    def __init__(self, message: str, *segments: str | int) -> None:
        super().__init__(message)
        self.message = message
        self.segments = list(segments)  # innermost first; containers append theirs on the way out

    @property
    def param(self) -> str:
        out = ""
        for segment in reversed(self.segments):
            out += f"[{segment}]" if isinstance(segment, int) else f".{segment}" if out else segment
        return out

    def __str__(self) -> str:
        return f"{self.param}: {self.message}" if self.segments else f"the body {self.message}"


def kind_of(value: Any) -> str:
    return _KINDS.get(type(value), "something else")


def shown(value: Any) -> str:
    """A client's value in an error message, cut short."""
    text = repr(value) if isinstance(value, (str, int, float, bool)) or value is None else _a(kind_of(value))
    return text if len(text) <= 60 else text[:57] + "..."


def _a(kind: str) -> str:
    return _ARTICLES.get(kind, f"a {kind}" if kind != "null" else "null")


def _expected(kinds: Iterable[str]) -> str:
    return " or ".join(_a(kind) for kind in sorted(kinds, key=lambda kind: (kind == "null", kind)))


def wrong_type(kinds: Iterable[str], value: Any) -> SchemaViolation:
    return SchemaViolation(f"must be {_expected(kinds)}; got {shown(value)}")


def anything(value: Any) -> None:
    return None


def by_kind(checks: dict[str, Check]) -> Check:
    """One check per JSON type (each checks its type itself), dispatched on the value's type."""
    if len(checks) == 1:
        return next(iter(checks.values()))
    table = {t: checks[kind] for t, kind in _KINDS.items() if kind in checks}
    shown = [kind for kind in checks if not (kind == "integer" and "number" in checks)]

    def dispatch(value: Any) -> None:
        check = table.get(type(value))
        if check is None:
            raise wrong_type(shown, value)
        check(value)

    return dispatch


def exactly(kind: str) -> Check:
    wanted = next(t for t, k in _KINDS.items() if k == kind)

    def check(value: Any) -> None:
        if type(value) is not wanted:
            raise wrong_type([kind], value)

    return check


def one_of(choices: list[Any], base: Check | None) -> Check:
    # (kind, value): in Python True == 1, in JSON they differ
    allowed = {(kind_of(v) if kind_of(v) != "integer" else "number", v) for v in choices}
    listed = ", ".join(shown(v) for v in choices)

    def check(value: Any) -> None:
        if base is not None:
            base(value)
        kind = kind_of(value)
        # an object or array is never one of the (scalar) choices, and cannot be hashed to look it up
        if kind in ("object", "array") or (kind if kind != "integer" else "number", value) not in allowed:
            raise SchemaViolation(f"must be one of {listed}; got {shown(value)}")

    return check


def string(low: int | None, high: int | None) -> Check:
    def check(value: Any) -> None:
        if type(value) is not str:
            raise wrong_type(["string"], value)
        if low is not None and len(value) < low:
            raise SchemaViolation(f"must have at least {low} character(s)")
        if high is not None and len(value) > high:
            raise SchemaViolation(f"must have at most {high} character(s)")

    return check


def number(kind: str, low: float | None, high: float | None) -> Check:
    kinds = (int,) if kind == "integer" else (int, float)

    def check(value: Any) -> None:
        if type(value) not in kinds:
            raise wrong_type([kind], value)
        if type(value) is int and not _INT64[0] <= value <= _INT64[1]:
            raise SchemaViolation(f"must be {_a(kind)} that fits in 64 bits")
        if low is not None and value < low:
            raise SchemaViolation(f"must be at least {low}; got {shown(value)}")
        if high is not None and value > high:
            raise SchemaViolation(f"must be at most {high}; got {shown(value)}")

    return check


def array(items: Check, low: int | None, high: int | None) -> Check:
    def check(value: Any) -> None:
        if type(value) is not list:
            raise wrong_type(["array"], value)
        if low is not None and len(value) < low:
            raise SchemaViolation(f"must have at least {low} item(s)")
        if high is not None and len(value) > high:
            raise SchemaViolation(f"must have at most {high} item(s)")
        if items is anything:
            return
        for index, item in enumerate(value):
            try:
                items(item)
            except SchemaViolation as exc:
                exc.segments.append(index)
                raise

    return check


def object_of(checks: dict[str, Check], required: tuple[str, ...], other: Check | bool | None) -> Check:
    if other is None:  # fields that take anything need no call, like fields not named
        checks = {name: sub for name, sub in checks.items() if sub is not anything}

    def check(value: Any) -> None:
        if type(value) is not dict:
            raise wrong_type(["object"], value)
        for name in required:
            if name not in value:
                raise SchemaViolation("is required", name)
        for name, item in value.items():
            sub = checks.get(name, other)
            if sub is None:
                continue
            if sub is False:
                raise SchemaViolation("is not a known field", name)
            try:
                sub(item)  # type: ignore[operator]
            except SchemaViolation as exc:
                exc.segments.append(name)
                raise

    return check


def tagged(tag: str, by_tag: dict[Any, Check], default: Check | None) -> Check:
    listed = ", ".join(repr(v) for v in by_tag)

    def check(value: Any) -> None:
        if type(value) is not dict:
            raise wrong_type(["object"], value)
        if tag not in value:
            if default is None:
                raise SchemaViolation("is required", tag)
            default(value)
            return
        found = value[tag]
        chosen = by_tag.get(found) if type(found) is str else None
        if chosen is None:
            raise SchemaViolation(f"must be one of {listed}; got {shown(found)}", tag)
        chosen(value)

    return check
