"""What the checker knows each section's variables hold: the canonical request's parameters, a
deployment's fields, a stream's state, a canonical answer's and chunk's fields, an error's fields."""

from __future__ import annotations

from typing import Any, Literal

from engine.canonical import OPERATIONS
from engine.mapping.checks.sections import Keys
from engine.mapping.spec import ParamPolicy

__all__ = [
    "DEPLOYMENT",
    "DEPLOYMENT_KEYS",
    "ERROR",
    "answer_keys",
    "chunk_keys",
    "request_keys",
    "schema_keys",
    "state_keys",
]

# what engine.routing.view gives mappings as `deployment` (a test keeps the two the same)
DEPLOYMENT_KEYS = frozenset(
    {
        "model",
        "alias",
        "provider",
        "api_base",
        "api_key",
        "api_version",
        "params",
        "timeout",
        "max_output_tokens",
        "capabilities",
    }
)
DEPLOYMENT = Keys(DEPLOYMENT_KEYS, "error", "a deployment field")
ERROR = Keys(frozenset({"message", "type", "param", "code"}), "error", "a field of an error")

_ANSWERS = {
    "chat": {"id", "object", "created", "model", "choices", "usage", "system_fingerprint", "service_tier"},
    "completions": {"id", "object", "created", "model", "choices", "usage", "system_fingerprint"},
    "embeddings": {"object", "data", "model", "usage"},
    "images": {"created", "data", "usage", "background", "output_format", "quality", "size"},
}


def request_keys(operation: str, policy: ParamPolicy) -> Keys:
    """The canonical request as a provider's sections see it, after the operation's `params`: what it
    lets through (and its defaults) may be there; what it drops or rejects never is; anything else
    only with `other: pass`."""
    passed = {name for name, action in policy.actions.items() if action == "pass"} | set(policy.defaults)
    absent = {
        name: f"this operation's params {'drop' if action == 'drop' else 'reject'} it"
        for name, action in policy.actions.items()
        if action != "pass" and name not in policy.defaults and name in OPERATIONS[operation].parameters
    }
    unknown: Literal["hint", "error"] = "hint" if policy.other == "pass" else "error"
    return Keys(frozenset(passed), unknown, f"a {operation} parameter this operation lets through", absent)


def state_keys(stream: Any, *parts: str) -> Keys | None:
    """A stream's `state`: the keys its `start` and `update` set, when both are plain mappings."""
    keys: set[str] = set()
    for part in parts:
        value = stream.get(part) if isinstance(stream, dict) else None
        if value is None:
            continue
        if not isinstance(value, dict) or any(str(key).startswith("$") for key in value):
            return None  # computed: the checker cannot know its keys
        keys |= {str(key) for key in value}
    return Keys(frozenset(keys), "error", f"set by this stream's {' or '.join(parts)}")


def answer_keys(operation: str) -> Keys | None:
    known = _ANSWERS.get(operation)
    return Keys(frozenset(known), "hint", f"a field of a canonical {operation} answer") if known else None


def chunk_keys(operation: str) -> Keys | None:
    known = _ANSWERS.get(operation) if operation in ("chat", "completions") else None
    return Keys(frozenset(known), "hint", f"a field of a canonical {operation} chunk") if known else None


def schema_keys(schema: Any, what: str) -> Keys | None:
    """A request body's top-level fields, from its schema's `properties`: reading another is an error
    when the schema allows no others, else a warning (the schema should name every field read)."""
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return None
    closed = schema.get("additionalProperties") is False
    fields = frozenset(str(key) for key in schema["properties"])
    return Keys(fields, "error" if closed else "warning", f"a field of {what}")
