"""The constructs of the mapping language: which `$` keys each takes, and what each key holds.

One table for the compiler (which keys a construct may have, which one is its head), the checker (which
keys hold expressions, trees or names) and the error a misspelt key gets: at that key's own line, with
the keys its construct allows. A new construct is one row here and one `construct_<name>` builder in
the compiler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CONSTRUCTS", "HEADS", "KEYS", "Construct", "construct_key_problem", "did_you_mean"]


@dataclass(frozen=True, slots=True)
class Construct:
    """One construct: its head key and the other keys it takes, by what they hold."""

    head: str
    expressions: tuple[str, ...] = ()  # an expression, with or without `{{ }}`
    trees: tuple[str, ...] = ()  # a mapping tree (leaves, lists, mappings, constructs)
    names: tuple[str, ...] = ()  # a plain name bound inside the construct
    flags: tuple[str, ...] = ()  # a plain value read at load

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.head, *self.expressions, *self.trees, *self.names, *self.flags)


CONSTRUCTS: dict[str, Construct] = {
    c.head: c
    for c in (
        Construct("$for", trees=("$do",), expressions=("$where",), names=("$as", "$index"), flags=("$flat",)),
        Construct("$if", trees=("$then", "$else")),
        Construct("$switch", trees=("$cases", "$default")),
        Construct("$merge"),
        Construct("$let", trees=("$in",)),
        # `$use: fragment` with `$with`'s bindings (each a tree, compiled where the fragment is used)
        Construct("$use", flags=("$with",)),
        Construct("$literal"),
        Construct("$replace"),  # an overlay's value that replaces its parent's whole (no merge)
    )
}
HEADS: tuple[str, ...] = tuple(CONSTRUCTS)
KEYS: frozenset[str] = frozenset(key for c in CONSTRUCTS.values() for key in c.keys)


def construct_key_problem(spec: dict[Any, Any]) -> tuple[Any, str] | None:
    """The first problem with a construct's keys: (the key to blame, or None for the construct; message)."""
    heads = [key for key in spec if key in CONSTRUCTS]
    if len(heads) != 1:
        what = f"has {', '.join(heads)}" if heads else "has none"
        return None, f"a construct needs exactly one of {', '.join(HEADS)} ({what})"
    construct = CONSTRUCTS[heads[0]]
    for key in spec:
        if key not in construct.keys:
            allowed = ", ".join(construct.keys)
            if isinstance(key, str) and key.startswith("$"):
                hint = did_you_mean(key, construct.keys)
                return key, f"unknown key {key!r} in a {construct.head} construct{hint} (allowed: {allowed})"
            return key, f"{key!r} beside a {construct.head} construct: a construct takes only {allowed}"
    return None


def did_you_mean(word: str, candidates: Any, cutoff: float = 0.6) -> str:
    """'; did you mean X?' for the closest candidate, or ''."""
    import difflib  # only for a mapping's error: a serving process never needs it

    close = difflib.get_close_matches(word, sorted(str(c) for c in candidates), n=1, cutoff=cutoff)
    return f"; did you mean {close[0]!r}?" if close else ""
