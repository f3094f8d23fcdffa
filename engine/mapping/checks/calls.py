"""Filter, test and function calls held to the signatures in engine.mapping.filters."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import cache
from typing import Any

from engine.mapping.checks.reading import COMPUTED, Call
from engine.mapping.filters import FUNCTIONS, SELECT_TESTS, TESTS, UNWRAPPED_FILTERS

__all__ = ["call_problem"]

_TABLES: dict[str, tuple[dict[str, Callable[..., Any]], int]] = {
    "filter": (UNWRAPPED_FILTERS, 1),  # a filter and a test also take the value they are applied to
    "test": (TESTS, 1),
    "function": (FUNCTIONS, 0),
}


def call_problem(call: Call) -> str | None:
    """Why this call would fail whenever it runs (wrong number of arguments, an unknown name passed
    where a filter or a select test is named), or None."""
    problem = _arity_problem(call.kind, call.name, len(call.arguments), call.keywords)
    if problem is not None or call.kind != "filter":
        return problem
    if call.name == "map" and call.arguments and "attribute" not in call.keywords:
        named = call.arguments[0]
        if isinstance(named, str):
            if named not in UNWRAPPED_FILTERS:
                return f"map names no filter {named!r}"
            return _arity_problem("filter", named, len(call.arguments) - 1, (), via="map")
    if call.name in ("selectattr", "rejectattr") and len(call.arguments) >= 2:
        test = call.arguments[1]
        if test is not COMPUTED and test not in SELECT_TESTS:
            return f"{call.name} takes one of the tests {', '.join(sorted(SELECT_TESTS))}, not {test!r}"
    return None


def _arity_problem(kind: str, name: str, given: int, keywords: tuple[str, ...], via: str = "") -> str | None:
    table, implicit = _TABLES[kind]
    signature = _signature(kind, name) if name in table else None
    if signature is None:
        return None  # unknown names are the compiler's error; builtins without a signature go unchecked
    try:
        signature.bind(*([None] * (implicit + given)), **dict.fromkeys(keywords))
    except TypeError:
        shown = [str(p.replace(annotation=p.empty)) for p in list(signature.parameters.values())[implicit:]]
        takes = f"{name}({', '.join(shown)})" if shown else f"{name} with no arguments"
        called = f" through {via}" if via else ""
        named = f" and {', '.join(k + '=' for k in keywords)}" if keywords else ""
        return f"{kind} {name!r} called{called} with {given} argument(s){named}; it takes {takes}"
    return None


@cache
def _signature(kind: str, name: str) -> inspect.Signature | None:
    try:
        return inspect.signature(_TABLES[kind][0][name])
    except (TypeError, ValueError):
        return None
