"""Values and helpers that compiled mapping code calls at run time.

`MISSING` is the "absent" sentinel: what a lookup of an absent key yields, what makes a mapping key or
list item disappear from the output, and what `x is defined` tests for. It is falsy, and lookups on it
yield it again, so `request.stream_options.include_usage` is simply absent when `stream_options` is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from jinja2.sandbox import SandboxedEnvironment

__all__ = ["MISSING", "RUNTIME_GLOBALS", "MappingRejected", "MappingRuntimeError", "Missing"]


class Missing:
    """The type of MISSING, a singleton."""

    _instance: Missing | None = None
    __slots__ = ()

    def __new__(cls) -> Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "MISSING"

    def __iter__(self) -> Any:
        return iter(())

    def __len__(self) -> int:
        return 0


MISSING: Final = Missing()


class MappingRuntimeError(Exception):
    """An expression failed while evaluating; `where` is the mapping file and line."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.detail = message

    @property
    def location(self) -> str:
        """`where` relative to the mappings folder ("dialects/toy.yaml:12"): no server path."""
        return "/".join(self.where.replace("\\", "/").split("/")[-2:])


class MappingRejected(MappingRuntimeError):
    """A mapping refused the request on purpose, with `reject(message, param)`: the client's 400."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__("reject()", message)
        self.param = param


_SANDBOX = SandboxedEnvironment()


def get_attr(obj: Any, name: str) -> Any:
    """`a.b`: a dict key first (absent -> MISSING); on other objects a sandboxed attribute."""
    if type(obj) is dict:
        return obj.get(name, MISSING)
    if obj is MISSING or obj is None:
        return MISSING
    if isinstance(obj, dict):
        return obj.get(name, MISSING)
    value = _SANDBOX.getattr(obj, name)
    return MISSING if _is_jinja_undefined(value) else value


def get_item(obj: Any, key: Any) -> Any:
    """`a[k]`: dict key or list index/slice; absent or out of range -> MISSING."""
    if obj is MISSING or obj is None:
        return MISSING
    try:
        return obj[key]
    except (KeyError, IndexError, TypeError):
        return MISSING


def call_method(obj: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """`a.m(x)`: only methods the Jinja sandbox deems safe (no underscores, no mutation of builtins)."""
    if obj is MISSING or obj is None:
        return MISSING
    method = getattr(obj, name, None) if not name.startswith("_") else None
    if (
        method is None
        or not _SANDBOX.is_safe_attribute(obj, name, method)
        or not _SANDBOX.is_safe_callable(method)
    ):
        raise TypeError(f"calling {name!r} on a {type(obj).__name__} is not allowed in a mapping")
    if isinstance(obj, (dict, list, set)) and name in _MUTATING:
        raise TypeError(f"{name!r} would modify a value; mappings build new values instead")
    return method(*args, **kwargs)


_MUTATING = frozenset(
    {"append", "extend", "insert", "pop", "popitem", "remove", "clear", "update", "setdefault", "add", "sort"}
)


def _is_jinja_undefined(value: Any) -> bool:
    from jinja2 import Undefined

    return isinstance(value, Undefined)


def build_object(*pairs: Any) -> dict[Any, Any]:
    """A mapping from alternating keys and values, leaving out keys whose value is MISSING."""
    out: dict[Any, Any] = {}
    for i in range(0, len(pairs), 2):
        value = pairs[i + 1]
        if value is not MISSING:
            out[pairs[i]] = value
    return out


def build_list(items: Any) -> list[Any]:
    """A list without its MISSING items."""
    return [item for item in items if item is not MISSING]


def flatten(items: Any) -> list[Any]:
    """`$flat`: each item a list (spliced in), a single value (appended) or MISSING (left out)."""
    out: list[Any] = []
    for item in items:
        if item is MISSING:
            continue
        if isinstance(item, list):
            out.extend(i for i in item if i is not MISSING)
        else:
            out.append(item)
    return out


def iterate(value: Any) -> Any:
    """What `$for` walks: lists as they are, mappings as [key, value] pairs, absent or null as nothing."""
    if value is MISSING or value is None:
        return ()
    if isinstance(value, dict):
        return [[k, v] for k, v in value.items()]
    if isinstance(value, (list, tuple)):
        return value
    raise TypeError(f"$for needs a list, got {type(value).__name__}")


def each(source: Any, build: Callable[[Any], Any]) -> Any:
    """`$for`: MISSING when the source is absent, else what `build` makes of it."""
    return MISSING if source is MISSING else build(source)


def interpolate(*parts: Any) -> Any:
    """A string with text around `{{ }}`: absent when any expression in it is absent or null."""
    pieces: list[str] = []
    for part in parts:
        if part is MISSING or part is None:
            return MISSING
        pieces.append(part if isinstance(part, str) else to_text(part))
    return "".join(pieces)


def concat(*parts: Any) -> str:
    """Jinja's `~`: string conversion of each side, absent as empty text."""
    return "".join("" if p is MISSING or p is None else to_text(p) for p in parts)


def to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def merge_objects(*parts: Any) -> Any:
    """`$merge`: shallow merge of mappings, later wins; absent parts are skipped."""
    out: dict[Any, Any] = {}
    for part in parts:
        if part is MISSING or part is None:
            continue
        if not isinstance(part, dict):
            raise TypeError(f"$merge needs mappings, got {type(part).__name__}")
        for key, value in part.items():
            if value is not MISSING:
                out[key] = value
    return out


def switch(value: Any, cases: dict[Any, Callable[[], Any]], default: Callable[[], Any]) -> Any:
    branch = cases.get(value) if isinstance(value, (str, int, float, bool)) or value is None else None
    return (branch or default)()


RUNTIME_GLOBALS: dict[str, Any] = {
    "MISSING": MISSING,
    "_ga": get_attr,
    "_gi": get_item,
    "_cm": call_method,
    "_obj": build_object,
    "_list": build_list,
    "_flat": flatten,
    "_iter": iterate,
    "_each": each,
    "_interp": interpolate,
    "_cat": concat,
    "_merge": merge_objects,
    "_switch": switch,
}
