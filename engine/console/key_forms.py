"""The console's key form: typed strings into the admin API's key fields, checked by the same
`engine.keys.key_changes` that /key/generate and /key/update use, every field on its own so that each
error is shown next to its field.

Also `key_view`, what the console shows (and the audit log records) of a key: never the key, only its
8-character prefix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.errors import InvalidRequest
from engine.keys import KeyChanges, key_changes
from engine.keys.ring import aware
from engine.store.api_key import ApiKeyRow

__all__ = ["KEY_FIELDS", "NEVER", "KeyForm", "key_view", "read_key_form"]

# the form's text fields, named as the admin API names them; `models` comes as checkboxes
KEY_FIELDS = (
    "key_alias",
    "max_budget",
    "budget_duration",
    "rpm_limit",
    "tpm_limit",
    "max_parallel_requests",
    "privacy",
    "duration",
)
_WHOLE_NUMBERS = ("rpm_limit", "tpm_limit", "max_parallel_requests")
NEVER = "never"  # typed as the expiry of a key being edited: remove its expiry
_MAX_TYPED = 1000  # longer input is refused whole, before any parsing


@dataclass
class KeyForm:
    """What was typed (to show again), the checked changes, and an error per field."""

    typed: dict[str, str]
    models: list[str]
    changes: KeyChanges = field(default_factory=lambda: KeyChanges({}))
    errors: dict[str, str] = field(default_factory=dict)


def _value(name: str, text: str, *, editing: bool) -> tuple[bool, Any]:
    """(whether the field is sent, its value) for one typed field."""
    if name == "duration":
        if not text:
            return not editing, None  # a new key without expiry never expires; an edit keeps it
        return True, None if editing and text.lower() == NEVER else text
    if not text:
        return True, None
    if name in _WHOLE_NUMBERS:
        return True, int(text) if text.isascii() and text.isdigit() and len(text) < 12 else text
    return True, text


def _unchanged(row: ApiKeyRow, values: dict[str, Any]) -> dict[str, Any]:
    """Only what differs from the stored key: an untouched budget period must not restart."""
    kept = {column: value for column, value in values.items() if getattr(row, column) != value}
    if "budget_duration" not in kept:
        kept.pop("budget_reset_at", None)
    return kept


def read_key_form(form: Mapping[str, Any], models: Sequence[str], *, row: ApiKeyRow | None = None) -> KeyForm:
    """The form of a new key, or of `row` being edited, checked field by field."""
    typed = {name: str(form.get(name) or "").strip() for name in KEY_FIELDS}
    found = KeyForm(typed=typed, models=sorted(set(models)))
    body: dict[str, Any] = {"models": found.models}
    for name, text in typed.items():
        if len(text) > _MAX_TYPED:
            found.errors[name] = f"at most {_MAX_TYPED} characters"
            continue
        sent, value = _value(name, text, editing=row is not None)
        if sent:
            body[name] = value
    values: dict[str, Any] = {}
    for name, value in body.items():
        try:
            values.update(key_changes({name: value}).values)
        except InvalidRequest as error:
            found.errors[name] = error.message
    found.changes = KeyChanges(values if row is None else _unchanged(row, values))
    return found


def _money(amount: Decimal) -> str:
    """10.0000000000 as "10", 0.5 as "0.5" (never "1E+1")."""
    return format(amount.normalize(), "f")


def _iso(moment: datetime | None) -> str | None:
    moment = aware(moment)
    return None if moment is None else moment.isoformat(timespec="seconds")


def key_view(row: ApiKeyRow) -> dict[str, Any]:
    """A key as the console lists it and the audit log records it: the prefix, never the key."""
    return {
        "prefix": f"{row.key_prefix}...",
        "key_alias": row.key_alias,
        "models": list(row.models),
        "max_budget": None if row.max_budget is None else _money(row.max_budget),
        "budget_duration": row.budget_duration,
        "rpm_limit": row.rpm_limit,
        "tpm_limit": row.tpm_limit,
        "max_parallel_requests": row.max_parallel_requests,
        "privacy": row.privacy,
        "expires": _iso(row.expires_at),
        "revoked": _iso(row.revoked_at),
    }
