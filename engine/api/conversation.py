"""Stored conversations for dialects with a `store` section: load an exchange before, keep one after.

    previous id?  -> load the caller's own history under it (unknown, expired or another key's: the
                     dialect's `missing` error, else a 404)
                  -> the new request's own leading system messages, then that history without its
                     leading system messages, then the rest of the new request
    save?         -> after a complete answer: the canonical messages sent + the assistant message,
                     under the id the dialect gives its answer (`id`, or `stream_id` for a stream)

A request's leading system messages are its own instructions: they are not carried into the next
turn, which states its own (or none). Everything after them, tool calls and results included, is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from engine.errors import NotFound, TurnoutError
from engine.mapping.dialects import DialectMapping, DialectStore
from engine.mapping.runtime import MISSING
from engine.pipeline.translate import evaluate
from engine.store.conversation import ConversationStore

__all__ = ["AssistantAccumulator", "Exchange", "assistant_message", "continue_from", "open_exchange"]

log = logging.getLogger("turnout.dialects")


@dataclass(slots=True)
class Exchange:
    """One request's part in a stored conversation: whether and where to keep its answer."""

    dialect: str
    spec: DialectStore
    store: ConversationStore
    owner: int | None  # the virtual key's id; None: the gateway's own space (see engine.store.conversation)
    model: str
    messages: list[dict[str, Any]]  # the canonical messages sent, earlier turns included

    async def keep(self, exchange_id: Any, assistant: dict[str, Any]) -> None:
        if exchange_id is MISSING or exchange_id is None or exchange_id == "":
            raise TurnoutError(f"the {self.dialect} dialect gave its answer no id to store it under")
        try:
            await self.store.save(
                self.dialect, str(exchange_id), self.owner, self.model, [*self.messages, assistant]
            )
        except SQLAlchemyError:
            log.exception("dialect %s: storing exchange %s failed", self.dialect, exchange_id)
            raise TurnoutError("the answer could not be stored for a later turn") from None


async def open_exchange(
    dialect: DialectMapping,
    spec: DialectStore,
    store: ConversationStore,
    owner: int | None,
    canonical: dict[str, Any],
    body: dict[str, Any],
    headers: dict[str, str],
) -> Exchange | None:
    """Put `owner`'s stored history that `previous` names before `canonical`'s messages (in place); an
    Exchange when the answer is to be kept (for `owner`), else None."""
    previous = evaluate(spec.previous, body, headers)
    if previous is not MISSING and previous is not None and previous != "":
        try:
            history = await store.load(dialect.name, str(previous), owner)
        except SQLAlchemyError:
            log.exception("dialect %s: loading exchange %s failed", dialect.name, previous)
            raise TurnoutError("the stored conversation could not be read") from None
        if history is None:
            raise _missing(dialect, spec, str(previous), body)
        canonical["messages"] = continue_from(history, list(canonical.get("messages") or []))
    if not evaluate(spec.save, body, headers):
        return None
    messages = canonical.get("messages")
    return Exchange(
        dialect.name, spec, store, owner, str(canonical.get("model", "")), list(messages) if messages else []
    )


def continue_from(history: list[dict[str, Any]], messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The new request's leading system messages, the stored history without its own, then the rest."""
    own = _leading_system(messages)
    return messages[:own] + history[_leading_system(history) :] + messages[own:]


def _leading_system(messages: list[dict[str, Any]]) -> int:
    count = 0
    while count < len(messages) and messages[count].get("role") in ("system", "developer"):
        count += 1
    return count


def _missing(
    dialect: DialectMapping, spec: DialectStore, previous: str, body: dict[str, Any]
) -> TurnoutError:
    if spec.missing is None:
        return NotFound(f"no stored exchange has the id {previous!r}", code="not_found")
    fields = evaluate(spec.missing, previous, body) or {}
    return TurnoutError(
        str(fields.get("message") or f"no stored exchange has the id {previous!r}"),
        status=int(fields.get("status") or 404),
        type=str(fields.get("type") or NotFound.type),
        param=_text(fields.get("param")),
        code=_text(fields.get("code")),
    )


def _text(value: Any) -> str | None:
    return None if value is MISSING or value is None else str(value)


_KEPT = ("content", "tool_calls", "reasoning_content", "thinking_blocks")


def assistant_message(answer: Any) -> dict[str, Any]:
    """The canonical assistant message of a non-streamed chat answer, as it is sent back next turn."""
    choices = answer.get("choices") if isinstance(answer, dict) else None
    message = (choices[0].get("message") if choices and isinstance(choices[0], dict) else None) or {}
    kept = {key: message[key] for key in _KEPT if message.get(key) not in (None, "", [])}
    return {"role": "assistant", "content": kept.pop("content", None), **kept}


class AssistantAccumulator:
    """Canonical stream chunks in, the one assistant message they spell out."""

    __slots__ = ("_blocks", "_calls", "_content", "_reasoning")

    def __init__(self) -> None:
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._blocks: list[Any] = []
        self._calls: dict[int, dict[str, Any]] = {}

    def feed(self, chunk: Any) -> None:
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        delta = choices[0].get("delta") if choices and isinstance(choices[0], dict) else None
        if not isinstance(delta, dict):
            return
        if isinstance(delta.get("content"), str):
            self._content.append(delta["content"])
        if isinstance(delta.get("reasoning_content"), str):
            self._reasoning.append(delta["reasoning_content"])
        self._blocks += delta.get("thinking_blocks") or []
        for position, call in enumerate(delta.get("tool_calls") or []):
            self._feed_call(call, position)

    def _feed_call(self, piece: dict[str, Any], position: int) -> None:
        index = piece.get("index", position)
        call = self._calls.setdefault(index, {"id": None, "type": "function", "name": "", "arguments": []})
        function = piece.get("function") or {}
        call["id"] = piece.get("id") or call["id"]
        call["name"] = function.get("name") or call["name"]
        call["arguments"].append(function.get("arguments") or "")
        if piece.get("extra_content"):
            call["extra_content"] = piece["extra_content"]

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self._content) or None}
        calls = [self._calls[index] for index in sorted(self._calls)]
        if calls:
            message["tool_calls"] = [_call(call) for call in calls]
        if self._reasoning:
            message["reasoning_content"] = "".join(self._reasoning)
        if self._blocks:
            message["thinking_blocks"] = list(self._blocks)
        return message


def _call(call: dict[str, Any]) -> dict[str, Any]:
    out = {
        "id": call["id"],
        "type": call["type"],
        "function": {"name": call["name"], "arguments": "".join(call["arguments"])},
    }
    if "extra_content" in call:
        out["extra_content"] = call["extra_content"]
    return out
