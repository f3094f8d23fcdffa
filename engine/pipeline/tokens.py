"""A documented token estimate for routing decisions when no tokenizer is at hand: ceil(characters / 4).

Used for the context-window pre-call check and for tpm accounting; real counts come from the backend.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["estimate_prompt_tokens"]

CHARS_PER_TOKEN = 4


def _characters(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_characters(item) for item in value)
    if isinstance(value, dict):
        # message text and tool definitions count; image data does not (providers price it apart)
        return sum(
            _characters(v)
            for k, v in value.items()
            if k in ("content", "text", "function", "arguments", "name", "description", "parameters")
        )
    return 0


def estimate_prompt_tokens(request: dict[str, Any]) -> int:
    total = 0
    for key in ("messages", "tools", "prompt", "input"):
        value = request.get(key)
        if key == "input" and isinstance(value, list) and value and isinstance(value[0], int):
            return len(value)  # token ids already
        total += _characters(value)
    return math.ceil(total / CHARS_PER_TOKEN)
