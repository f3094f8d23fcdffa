"""The generic filters, tests and functions mappings may use. None is written for one provider.

Every filter except `default` passes MISSING through unchanged, so chains over absent values stay absent.
The table in mappings/README.md lists them; keep it in step.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NoReturn

import msgspec

from engine.jsonbody import MAX_JSON_DEPTH, too_deep
from engine.mapping.runtime import MISSING, MappingRejected, to_text

__all__ = ["FILTERS", "FUNCTIONS", "SELECT_TESTS", "TESTS", "UNWRAPPED_FILTERS"]

_json_encode = msgspec.json.Encoder().encode
_json_decode = msgspec.json.Decoder().decode


def _default(value: Any, fallback: Any = "", if_null: bool = True) -> Any:
    if value is MISSING or (if_null and value is None):
        return fallback
    return value


def _text(content: Any, separator: str = "") -> Any:
    """Text of a message content: a string as is; a list of parts -> their text parts joined."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        return separator.join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") in ("text", None)
        )
    return to_text(content)


def _image_urls(content: Any) -> list[str]:
    """URLs of the image parts of a content list (OpenAI `image_url` parts)."""
    if not isinstance(content, list):
        return []
    urls: list[str] = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str):
                urls.append(url)
    return urls


def _data_url_base64(url: Any) -> str:
    """The base64 payload of a `data:<mime>;base64,<payload>` URL; any other URL is the client's 400."""
    head, sep, payload = url.partition(",") if isinstance(url, str) else ("", "", "")
    if not (head.startswith("data:") and sep and head.endswith(";base64")):
        # http(s) URLs were fetched and inlined first when the operation asks for it
        raise MappingRejected("an image is not a base64 data: URL (data:<type>;base64,<data>)", "messages")
    return payload


def _data_url_mime(url: str) -> str:
    head = url.partition(",")[0]
    return head[5:].split(";", 1)[0] if head.startswith("data:") else ""


def _tojson(value: Any) -> str:
    return _json_encode(value).decode()


def _fromjson(text: Any) -> Any:
    """Parse JSON text (often the client's tool arguments), held to the nesting bound of client bodies:
    what it gives goes into an upstream body, whose encoder recurses."""
    if isinstance(text, (dict, list)):
        return text
    try:
        value = _json_decode(text)
    except RecursionError:
        value = None
    else:
        if not too_deep(value):
            return value
    raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")


def _fromjson_or(text: Any, fallback: Any = None) -> Any:
    """Parse JSON, or give `fallback` for text that is not JSON (e.g. half-written tool arguments)."""
    try:
        return _fromjson(text)
    except (ValueError, TypeError):  # msgspec.DecodeError is a ValueError
        return fallback


def _without(mapping: dict[str, Any], *keys: str) -> dict[str, Any]:
    drop = set(keys)
    return {k: v for k, v in mapping.items() if k not in drop}


def _pick(mapping: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: mapping[k] for k in keys if k in mapping}


def _find(items: Any, attribute: str, value: Any) -> Any:
    """The first mapping in a list whose `attribute` (dotted path allowed) equals `value`, else MISSING."""
    path = attribute.split(".")
    for item in items or ():
        current = item
        for step in path:
            current = current.get(step, MISSING) if isinstance(current, dict) else MISSING
        if current == value:
            return item
    return MISSING


def _map_attribute(items: Any, attribute: str) -> list[Any]:
    return [item.get(attribute, MISSING) if isinstance(item, dict) else MISSING for item in items]


def _map(items: Any, name: str | None = None, *args: Any, attribute: str | None = None) -> list[Any]:
    """Jinja's `map`: apply a filter by name to each item, or take `attribute` of each."""
    if attribute is not None:
        return _map_attribute(items, attribute)
    if name is None or name not in FILTERS:
        raise ValueError(f"map needs a known filter name, got {name!r}")
    fn = FILTERS[name]
    return [fn(item, *args) for item in items]


def _tool_call_name(messages: Any, call_id: Any) -> Any:
    """The function name of the assistant tool call with this id in a canonical message list."""
    for message in messages or ():
        for call in (message.get("tool_calls") or ()) if isinstance(message, dict) else ():
            if isinstance(call, dict) and call.get("id") == call_id:
                return (call.get("function") or {}).get("name", MISSING)
    return MISSING


def _nonempty(value: Any) -> Any:
    """The value, or MISSING when it is an empty string, list or mapping (so its key is left out)."""
    if value is None or (isinstance(value, (str, list, dict)) and not value):
        return MISSING
    return value


_SELECT_TESTS: dict[str, Callable[[Any, Any], bool]] = {
    "equalto": lambda a, b: a == b,
    "==": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "!=": lambda a, b: a != b,
    "in": lambda a, b: a in b,
    "defined": lambda a, _b: a is not MISSING,
    "truthy": lambda a, _b: bool(a),
}


def _attr_path(item: Any, attribute: str) -> Any:
    current = item
    for step in attribute.split("."):
        current = current.get(step, MISSING) if isinstance(current, dict) else MISSING
    return current


def _selectattr(items: Any, attribute: str, test: str = "truthy", value: Any = None) -> list[Any]:
    """Jinja's selectattr: the items whose (dotted) attribute passes the test (equalto, ne, in, ...)."""
    check = _SELECT_TESTS[test]
    return [item for item in items if check(_attr_path(item, attribute), value)]


def _rejectattr(items: Any, attribute: str, test: str = "truthy", value: Any = None) -> list[Any]:
    check = _SELECT_TESTS[test]
    return [item for item in items if not check(_attr_path(item, attribute), value)]


def _group_consecutive(items: Any, attribute: str) -> list[list[Any]]:
    """Runs of neighbouring items with the same attribute value, e.g. messages of the same role."""
    groups: list[list[Any]] = []
    for item in items:
        if groups and _attr_path(groups[-1][0], attribute) == _attr_path(item, attribute):
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def _flatten(items: Any) -> list[Any]:
    """A list of lists as one list (single values kept, absent ones left out)."""
    out: list[Any] = []
    for item in items:
        if isinstance(item, list):
            out.extend(i for i in item if i is not MISSING)
        elif item is not MISSING:
            out.append(item)
    return out


def _merge(mapping: Any, *others: Any) -> dict[Any, Any]:
    """A new mapping: this one updated with the others (absent ones skipped)."""
    out = dict(mapping)
    for other in others:
        if isinstance(other, dict):
            out.update(other)
    return out


def _strip_keys(value: Any, *keys: str) -> Any:
    """The value with these keys removed from every mapping inside it (e.g. unsupported schema keywords)."""
    drop = set(keys)
    if isinstance(value, dict):
        return {k: _strip_keys(v, *keys) for k, v in value.items() if k not in drop}
    if isinstance(value, list):
        return [_strip_keys(v, *keys) for v in value]
    return value


def _with_suffix(text: str, suffix: str) -> str:
    """`text` ending in `suffix` (added unless already there), trailing slashes folded."""
    base = text.rstrip("/")
    return base if base.endswith(suffix) else base + suffix


def _strip_suffix(text: str, suffix: str) -> str:
    base = text.rstrip("/")
    return base[: -len(suffix)] if suffix and base.endswith(suffix) else base


def _short_hash(value: Any, length: int = 24) -> str:
    """A stable hex digest of any JSON-able value (for ids that must repeat across chunks)."""
    return hashlib.sha256(_json_encode(value)).hexdigest()[:length]


def _listify(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _b64encode(text: Any) -> str:
    raw = text if isinstance(text, bytes) else to_text(text).encode()
    return base64.b64encode(raw).decode()


def _floats_base64(vector: Any) -> str:
    """A list of numbers as little-endian float32 bytes in base64: OpenAI's `encoding_format: base64`."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def _estimate_tokens(value: Any, chars_per_token: int = 4) -> int:
    """A tokenizer-free estimate: ceil(characters / chars_per_token) over every string, key and scalar
    inside a JSON value (absent and null parts count nothing)."""

    def chars(item: Any) -> int:
        if item is MISSING or item is None:
            return 0
        if isinstance(item, dict):
            return sum(chars(k) + chars(v) for k, v in item.items())
        if isinstance(item, list):
            return sum(chars(v) for v in item)
        return len(to_text(item))

    return -(-chars(value) // chars_per_token)


def _rank_text(document: Any, fields: Any = None) -> Any:
    """The text a reranker ranks for one document: a string as is; an object's `fields` (else its `text`,
    else all its fields) as YAML `name: value` lines, the form rerankers advise for structured data."""
    if not isinstance(document, dict):
        return document if isinstance(document, str) else to_text(document)
    if not isinstance(fields, list):
        text = document.get("text")
        if isinstance(text, str):
            return text
        fields = list(document)
    return "\n".join(f"{name}: {to_text(document[name])}" for name in fields if name in document)


def _item_at(items: Any, index: Any) -> Any:
    """The item of a list at a whole-number position from 0; absent for anything else (no counting from
    the end: an index in an upstream's answer names one item or none)."""
    if isinstance(items, list) and type(index) is int and 0 <= index < len(items):
        return items[index]
    return MISSING


def _passes_missing(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(value: Any, *args: Any, **kwargs: Any) -> Any:
        if value is MISSING:
            return MISSING
        return fn(value, *args, **kwargs)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


_RAW_FILTERS: dict[str, Callable[..., Any]] = {
    # Jinja's familiar ones
    "length": len,
    "count": len,
    "join": lambda items, sep="": sep.join(to_text(i) for i in items if i is not MISSING),
    "lower": lambda s: s.lower(),
    "upper": lambda s: s.upper(),
    "trim": lambda s: s.strip(),
    "replace": lambda s, old, new: s.replace(old, new),
    "first": lambda items: items[0] if items else MISSING,
    "last": lambda items: items[-1] if items else MISSING,
    "list": list,
    "int": lambda v: int(v),
    "float": lambda v: float(v),
    "string": to_text,
    "bool": bool,
    "abs": abs,
    "round": lambda v, digits=0: round(v, digits),
    "min": lambda items: min(items),
    "max": lambda items: max(items),
    "sum": lambda items: sum(items),
    "items": lambda m: [[k, v] for k, v in m.items()],
    "keys": lambda m: list(m.keys()),
    "values": lambda m: list(m.values()),
    "map_attribute": _map_attribute,
    "map": _map,
    "tool_call_name": _tool_call_name,
    "nonempty": _nonempty,
    "selectattr": _selectattr,
    "rejectattr": _rejectattr,
    "group_consecutive": _group_consecutive,
    "flatten": _flatten,
    "merge": _merge,
    "strip_keys": _strip_keys,
    "split": lambda s, sep=None, limit=-1: s.split(sep, limit),
    "startswith": lambda s, prefix: isinstance(s, str) and s.startswith(prefix),
    "endswith": lambda s, suffix: isinstance(s, str) and s.endswith(suffix),
    # Turnout's
    "text": _text,
    "image_urls": _image_urls,
    "data_url_base64": _data_url_base64,
    "data_url_mime": _data_url_mime,
    "tojson": _tojson,
    "fromjson": _fromjson,
    "fromjson_or": _fromjson_or,
    "without": _without,
    "pick": _pick,
    "find": _find,
    "with_suffix": _with_suffix,
    "strip_suffix": _strip_suffix,
    "short_hash": _short_hash,
    "listify": _listify,
    "b64encode": _b64encode,
    "estimate_tokens": _estimate_tokens,
    "floats_base64": _floats_base64,
    "rank_text": _rank_text,
    "item_at": _item_at,
}

FILTERS: dict[str, Callable[..., Any]] = {name: _passes_missing(fn) for name, fn in _RAW_FILTERS.items()}
# the filters as written, before the wrapper that passes absent values on: their signatures are what
# `turnout mappings check` holds each call to (engine.mapping.checks)
UNWRAPPED_FILTERS: dict[str, Callable[..., Any]] = {**_RAW_FILTERS, "default": _default, "d": _default}
SELECT_TESTS = frozenset(_SELECT_TESTS)  # the tests `selectattr` and `rejectattr` take by name
FILTERS["default"] = _default
FILTERS["d"] = _default

TESTS: dict[str, Callable[..., bool]] = {
    "defined": lambda v: v is not MISSING,
    "undefined": lambda v: v is MISSING,
    "none": lambda v: v is None,
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, float),
    "boolean": lambda v: isinstance(v, bool),
    "mapping": lambda v: isinstance(v, dict),
    "sequence": lambda v: isinstance(v, (list, tuple)),
    "data_url": lambda v: isinstance(v, str) and v.startswith("data:"),
    "true": lambda v: v is True,
    "false": lambda v: v is False,
}


def _reject(message: Any, param: Any = None) -> NoReturn:
    raise MappingRejected(to_text(message), None if param in (None, MISSING) else to_text(param))


def _now() -> int:
    return int(time.time())


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "uuid": lambda: uuid.uuid4().hex,
    "now": _now,
    "now_iso": _now_iso,
    "range": lambda *args: list(range(*args)),
    "dict": lambda **kwargs: dict(kwargs),
    "reject": _reject,
}
