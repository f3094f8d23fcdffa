"""The one token estimate, for when no tokenizer is at hand and no usage came: ceil(characters / 4).

Prompts (`estimate_prompt_tokens`) feed the context-window pre-call check, tpm accounting, budget
reservations and the usage of answers without one; generated text (`generated_characters`, summed
over a whole answer's choices or a stream's deltas alike) the completion side. Real counts come from
the backend. (Pass-through stream events are counted by a typed view in engine.pipeline.stream_usage,
which a test holds to the same count as `generated_characters`.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["CHARS_PER_TOKEN", "answer_characters", "estimate_prompt_tokens", "generated_characters", "tokens"]

CHARS_PER_TOKEN = 4
# what a model generates in a message, a delta or a text completion's choice
_GENERATED_TEXT = ("content", "reasoning_content", "reasoning", "text", "refusal")


def tokens(characters: int) -> int:
    return math.ceil(characters / CHARS_PER_TOKEN)


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
    for key in ("messages", "tools", "prompt", "input", "query"):  # query: a rerank's
        value = request.get(key)
        if key == "input" and isinstance(value, list) and value and isinstance(value[0], int):
            return len(value)  # token ids already
        total += _characters(value)
    documents = request.get("documents")  # a rerank's: strings, or objects whose every field is text
    if isinstance(documents, list):
        for document in documents:
            fields = document.values() if isinstance(document, dict) else (document,)
            total += sum(len(field) for field in fields if isinstance(field, str))
    return tokens(total)


def generated_characters(part: Any) -> int:
    """The generated text of one message or delta (or a text completion's choice): its text fields and
    its tool calls' names and arguments, which are generated tokens too."""
    # a dict (every decoded chunk) is tested first: the Mapping ABC's check costs more than the rest
    # of a stream chunk's count
    if not isinstance(part, (dict, Mapping)):
        return 0
    total = 0
    for name in _GENERATED_TEXT:
        value = part.get(name)
        if isinstance(value, str):
            total += len(value)
    calls = part.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            function = call.get("function") if isinstance(call, (dict, Mapping)) else None
            if isinstance(function, (dict, Mapping)):
                for name in ("name", "arguments"):
                    value = function.get(name)
                    if isinstance(value, str):
                        total += len(value)
    return total


def answer_characters(answer: Any) -> int:
    """The generated text of a whole chat or text completion, counted as its stream's deltas would be."""
    if not isinstance(answer, Mapping):
        return 0
    choices = answer.get("choices")
    if not isinstance(choices, list):
        return 0
    return sum(
        generated_characters(choice.get("message") or choice)
        for choice in choices
        if isinstance(choice, Mapping)
    )
