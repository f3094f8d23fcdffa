"""Virtual keys without a server: key shape, durations, the ring's lookup, the stricter privacy level."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from engine.errors import InvalidRequest
from engine.keys import KeyRing, VirtualKey, hash_key, key_changes, new_key, parse_duration
from engine.pipeline.run import stricter_privacy


def _key(digest: str) -> VirtualKey:
    return VirtualKey(
        1,
        digest,
        "sk-abcde",
        None,
        frozenset({"a"}),
        None,
        None,
        None,
        None,
        Decimal(0),
        None,
        None,
        None,
        None,
    )


def test_new_keys_are_long_random_and_prefixed() -> None:
    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(key.startswith("sk-") and len(key) >= 35 for key in keys)


def test_ring_finds_by_hash_only() -> None:
    key = new_key()
    ring = KeyRing([_key(hash_key(key))])
    found = ring.find(key)
    assert found is not None and found.allows("a") and not found.allows("b")
    assert ring.find(key + "x") is None and ring.find(hash_key(key)) is None


@pytest.mark.parametrize(
    ("text", "delta"),
    [("30s", timedelta(seconds=30)), ("30d", timedelta(days=30)), ("2w", timedelta(weeks=2)),
     (" 12h ", timedelta(hours=12))],
)  # fmt: skip
def test_durations(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta


@pytest.mark.parametrize("text", ["", "30", "d", "0d", "1mo", "-1d", "1.5h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("header", "key", "chosen"),
    [
        (None, None, None),
        ("any", None, "any"),
        (None, "private", "private"),
        ("any", "local", "local"),
        ("local", "private", "local"),
        ("private", "local", "local"),
        ("self-hosted", "private", "self-hosted"),
        ("secret", "private", "secret"),  # left for the dispatcher to reject
    ],
)
def test_the_stricter_privacy_wins(header: str | None, key: str | None, chosen: str | None) -> None:
    assert stricter_privacy(header, key) == chosen


def test_changes_check_every_field() -> None:
    changes = key_changes({"models": ["b", "a", "a"], "max_budget": 1.5, "duration": "1d", "metadata": None})
    assert changes.values["models"] == ["a", "b"] and changes.values["key_metadata"] == {}
    assert changes.values["expires_at"] is not None
    with pytest.raises(InvalidRequest) as caught:
        key_changes({"max_budget": "lots"})
    assert caught.value.param == "max_budget"
