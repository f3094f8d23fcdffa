"""`rank_text` and `item_at`, the generic filters rerank mappings use: documents as text, and an
upstream's index turned back into the client's document without trusting it."""

from __future__ import annotations

from engine.mapping.filters import FILTERS
from engine.mapping.runtime import MISSING

rank_text = FILTERS["rank_text"]
item_at = FILTERS["item_at"]
TICKET = {"title": "Password reset", "text": "I cannot sign in.", "queue": "accounts"}


def test_a_string_document_is_its_text() -> None:
    assert rank_text("plain") == "plain"
    assert rank_text("plain", ["title"]) == "plain"


def test_an_object_is_ranked_on_its_fields_as_yaml_lines() -> None:
    assert rank_text(TICKET, ["title", "text"]) == "title: Password reset\ntext: I cannot sign in."
    assert rank_text(TICKET, ["missing", "queue"]) == "queue: accounts"


def test_without_fields_an_object_is_its_text_else_all_its_fields() -> None:
    assert rank_text(TICKET) == "I cannot sign in."
    assert rank_text(TICKET, MISSING) == "I cannot sign in."
    assert rank_text({"title": "A", "body": "B"}, None) == "title: A\nbody: B"
    assert rank_text({}) == ""


def test_item_at_takes_whole_positions_from_zero_only() -> None:
    items = ["a", "b", "c"]
    assert item_at(items, 0) == "a" and item_at(items, 2) == "c"
    for index in (3, -1, 1.0, "1", True, None, MISSING, 10**30):
        assert item_at(items, index) is MISSING, index
    assert item_at("abc", 0) is MISSING
    assert item_at(MISSING, 0) is MISSING
