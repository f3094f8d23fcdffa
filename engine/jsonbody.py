"""JSON from clients, decoded once and bounded: malformed JSON, numbers out of range and nesting deeper
than MAX_JSON_DEPTH are the client's 400, never a RecursionError deeper in the gateway.

msgspec decodes recursively, and so do the encoder that builds upstream bodies and some mapping
filters; a bound checked here, right after decoding, keeps all of them far from the interpreter's
recursion limit. Integers are not bounded here (schemas say which fields take which range); floats
outside the double range (1e400) and NaN/Infinity are refused by the decoder itself.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from engine.errors import InvalidRequest

__all__ = ["MAX_JSON_DEPTH", "decode_json_body", "too_deep"]

MAX_JSON_DEPTH: Final = 100  # nested objects and arrays; the body itself is level 1

_decode = msgspec.json.Decoder().decode
_CONTAINERS = (dict, list)


def too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether objects and arrays nest deeper than `limit` in a decoded JSON value.

    Walks level by level without recursion; each container is visited once, and a string or number
    costs one type check, so a chat body of a few hundred nodes takes microseconds."""
    level = [value] if type(value) in _CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[Any] = []
        for item in level:
            below += [c for c in (item.values() if type(item) is dict else item) if type(c) in _CONTAINERS]
        level = below
    return False


def decode_json_body(raw: bytes | bytearray, *, what: str = "the request body") -> Any:
    """The decoded JSON of a client's body; InvalidRequest (400) when it is not JSON or nests too deep."""
    try:
        value = _decode(raw)
    except msgspec.DecodeError as exc:  # ValidationError ("Number out of range") is one too
        raise InvalidRequest(f"{what} is not valid JSON: {exc}", code="invalid_json") from None
    except RecursionError:  # nested past the interpreter's limit: certainly past ours
        value = None
    else:
        if not too_deep(value):
            return value
    raise InvalidRequest(
        f"{what} nests objects and arrays deeper than {MAX_JSON_DEPTH} levels", code="json_too_deep"
    )
