"""What to send for each golden scenario against a live backend, and what its answer must be to count.

Most scenarios go as they are. Three error scenarios are provoked: `error_401` with a wrong key,
`error_404` with a model the backend does not have, `error_context_length` with a prompt padded past
any context window. The others (a 429, a 5xx, an error in the middle of a stream) cannot be asked of a
live backend, so they are not sent and the backend.yaml written says so.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Literal

from engine.record.scenarios import Scenario

__all__ = [
    "PADDING",
    "Case",
    "Target",
    "case_for",
    "expected_status",
]

Target = Literal["main", "wrong_key", "unknown_model"]
# repeated until the prompt is longer than `context_chars`; the recorded request shows it shortened
PADDING = "Turnout pads this prompt past the model's context window. "
_ERROR = re.compile(r"^error_(\d{3})$")
_PROVOKED: dict[str, Target] = {"error_401": "wrong_key", "error_404": "unknown_model"}


@dataclass(frozen=True)
class Case:
    name: str
    route: str  # the gateway route the request goes to, e.g. /v1/chat/completions
    request: dict[str, Any]
    target: Target = "main"
    padded: bool = False  # the prompt was padded (error_context_length)


def expected_status(name: str) -> tuple[int, int]:
    """The range of upstream statuses that make a recording of scenario `name` (inclusive)."""
    if name == "error_context_length":
        return 400, 499
    found = _ERROR.match(name)
    if found:
        return int(found.group(1)), int(found.group(1))
    return 200, 200


def case_for(scenario: Scenario, context_chars: int) -> Case | str:
    """The case to send for `scenario`, or why it is not sent."""
    name = scenario.name
    request = copy.deepcopy(scenario.request)
    if name == "error_midstream":
        return "a live backend cannot be made to fail in the middle of a stream on demand"
    if name == "error_context_length":
        _pad(request, context_chars)
        return Case(name, "/v1/chat/completions", request, padded=True)
    found = _ERROR.match(name)
    if found and name not in _PROVOKED and found.group(1) != "400":
        return f"a live backend cannot be made to answer HTTP {found.group(1)} on demand"
    return Case(name, "/v1/chat/completions", request, _PROVOKED.get(name, "main"))


def _pad(request: dict[str, Any], context_chars: int) -> None:
    last = request["messages"][-1]
    repeats = context_chars // len(PADDING) + 1
    last["content"] = f"{last['content']}\n\n{PADDING * repeats}"
