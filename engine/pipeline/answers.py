"""The canonical answers the gateway checks after translation, for the operations that declare a shape.

OpenAI's answers mostly pass through as their servers send them, and their clients' SDKs are lenient.
A rerank answer is built by a mapping from whatever the backend sent, and its clients index into it:
one without a list of `results`, each with a whole-number `index` and a numeric `relevance_score`,
is the backend's fault (a 502 that lets the next deployment answer), not something to forward.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from engine.errors import UpstreamBadResponse

__all__ = ["check_answer"]


class _RerankResult(Struct):
    index: Annotated[int, Meta(ge=0)]
    relevance_score: float
    document: dict[str, Any] | None = None


class RerankAnswer(Struct):
    results: list[_RerankResult]
    id: str | None = None
    meta: dict[str, Any] | None = None


_SHAPES: dict[str, Callable[[Any], Any]] = {
    "rerank": lambda answer: msgspec.convert(answer, RerankAnswer),
}


def check_answer(operation: str, answer: Any, label: str) -> None:
    """Raise UpstreamBadResponse when `answer` is not the canonical shape of `operation` (if it has one)."""
    shape = _SHAPES.get(operation)
    if shape is None:
        return
    try:
        shape(answer)
    except msgspec.ValidationError as exc:
        raise UpstreamBadResponse(
            f"{label} answered with something that is not a {operation} answer ({exc})"
        ) from None
