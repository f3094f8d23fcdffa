"""`estimate_tokens`: a tokenizer-free count, ceil(characters / 4) over a JSON value's text."""

from __future__ import annotations

from engine.mapping.filters import FILTERS
from engine.mapping.runtime import MISSING

estimate = FILTERS["estimate_tokens"]


def test_counts_strings_keys_and_scalars_rounding_up() -> None:
    assert estimate("abcd") == 1
    assert estimate("abcde") == 2
    assert estimate({"role": "user", "n": 12}) == 3  # role + user + n + 12 = 11 characters
    assert estimate(["ab", ["cd", None], MISSING]) == 1
    assert estimate("abcdef", 2) == 3


def test_nothing_counts_nothing_and_absent_stays_absent() -> None:
    assert estimate([]) == 0
    assert estimate(MISSING) is MISSING
