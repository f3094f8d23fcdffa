"""`turnout probe`: one fixed sequence of chat requests sent to every deployment, so backends can be compared.

Each deployment gets the same five canonical requests, one after the other, straight through
`Attempter.attempt` (no routing, no retries, no fallbacks). Its stored capability flags are set aside for
the probe, so that the backend itself answers rather than Turnout's capability gate:

    step       request                                       supported when
    chat       "Reply with the word pong."                   the answer has content
    tools      a get_weather tool, tool_choice "required"     the answer has tool_calls
    vision     a tiny PNG as a data URL                       a 200 with content
    reasoning  a question with reasoning_effort "low"        the answer carries reasoning_content
    streaming  the chat question, streamed                   SSE chunks arrive and end with [DONE]

Each step ends in a verdict: supported, unsupported (a refusal, or an answer without the feature), or
inconclusive (a timeout, an unreachable backend, 408/429/5xx: worth retrying, and it says nothing about
the capability). When the chat step does not succeed, the other steps are skipped. Latency is the time
to the whole answer; for streaming, the time to the first chunk. `write_verdicts` stores the conclusive
verdicts of deployments that answered the chat step in their SQL capability rows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from engine.canonical import OPERATIONS
from engine.errors import InvalidRequest, TurnoutError, UpstreamBadResponse, UpstreamError, UpstreamStatus
from engine.pipeline.dispatch import Attempts
from engine.pipeline.outcome import Reply
from engine.pipeline.stream_events import openai_sse
from engine.routing.table import Deployment

__all__ = ["CHAT_MODES", "STEPS", "DeploymentReport", "Step", "Verdict", "probe_deployment"]

CHAT_MODES = OPERATIONS["chat"].modes  # alias modes that serve chat requests

# an 8x8 red square
_PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEUlEQVR42mP4z8CAFTEMLQkAKP8/wc53"
    "yE8AAAAASUVORK5CYII="
)
_WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}
_PICTURE = [
    {"type": "text", "text": "What colour is this image? Answer in one word."},
    {"type": "image_url", "image_url": {"url": _PNG}},
]


@dataclass(frozen=True, slots=True)
class Step:
    """One request of the sequence; `check` names what the answer's message lacks (None: supported)."""

    name: str
    request: dict[str, Any]
    check: Callable[[dict[str, Any]], str | None] = lambda message: None
    column: str | None = None  # the capability column in SQL it verifies
    model_info: str | None = None  # the same flag in a LiteLLM config's model_info


def _ask(content: Any, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": content}], **extra}


def _has(key: str, missing: str) -> Callable[[dict[str, Any]], str | None]:
    return lambda message: None if message.get(key) else missing


_PING = "Reply with the word pong."
_TOOLS = _ask("What is the weather in Paris, France?", tools=[_WEATHER_TOOL], tool_choice="required")
_THINK = _ask("Is 221 a prime number? Answer yes or no.", reasoning_effort="low")
STEPS = (
    Step("chat", _ask(_PING), _has("content", "empty answer")),
    Step("tools", _TOOLS, _has("tool_calls", "no tool call"), "supports_tools", "supports_tools"),
    Step("vision", _ask(_PICTURE), _has("content", "empty answer"), "supports_vision", "supports_vision"),
    Step(
        "reasoning",
        _THINK,
        _has("reasoning_content", "no reasoning_content"),
        "supports_reasoning",
        "supports_reasoning",
    ),
    Step(
        "streaming",
        _ask(_PING, stream=True),
        column="supports_streaming",
        model_info="supports_native_streaming",
    ),
)


@dataclass(frozen=True, slots=True)
class Verdict:
    supported: bool | None  # None: inconclusive (or skipped); never written to SQL
    reason: str = ""  # short, for the table
    seconds: float | None = None
    detail: str = ""  # the full error message, printed below the table


@dataclass(frozen=True, slots=True)
class DeploymentReport:
    deployment: Deployment
    verdicts: dict[str, Verdict]

    @property
    def label(self) -> str:
        return f"{self.deployment.provider}/{self.deployment.upstream_model}"

    @property
    def conclusive(self) -> bool:
        """Only a deployment that answered plain chat says anything about its capabilities."""
        return self.verdicts["chat"].supported is True


# ---- probing --------------------------------------------------------------------------------------


def _for_probe(deployment: Deployment) -> Deployment:
    """The deployment with the probed flags unstated (the gate lets everything through) and the probe's
    own timeout in force."""
    unstated = replace(deployment.capabilities, tools=None, vision=None, reasoning=None, streaming=None)
    return replace(deployment, capabilities=unstated, timeout=None)


def _failure(exc: TurnoutError) -> Verdict:
    if isinstance(exc, UpstreamStatus):
        return Verdict(None if exc.retryable else False, f"HTTP {exc.upstream_status}", detail=exc.message)
    if isinstance(exc, UpstreamError):  # a malformed or oversized answer is a "no", though retryable
        retryable = exc.retryable and not isinstance(exc, UpstreamBadResponse)
        return Verdict(None if retryable else False, exc.code or "upstream error", detail=exc.message)
    if isinstance(exc, InvalidRequest):  # the mapping cannot express it: refused before sending
        return Verdict(False, "refused by Turnout", detail=exc.message)
    return Verdict(False, exc.code or type(exc).__name__, detail=exc.message)


def _judge_answer(step: Step, reply: Reply, seconds: float) -> Verdict:
    try:
        message = reply.answer["choices"][0]["message"]
    except (ValueError, LookupError, TypeError):
        return Verdict(False, "not a chat completion")
    missing = step.check(message)
    return Verdict(False, missing) if missing else Verdict(True, seconds=seconds)


def _sse_payloads(raw: bytes) -> list[str]:
    payloads = []
    for block in raw.decode("utf-8", "replace").split("\n\n"):
        data = "\n".join(line[5:].strip() for line in block.splitlines() if line.startswith("data:"))
        if data:
            payloads.append(data)
    return payloads


async def _judge_stream(reply: Reply, started: float) -> Verdict:
    if reply.stream is None:
        return Verdict(False, "not streamed")
    first: float | None = None
    received = bytearray()
    async for chunk in openai_sse(reply.stream):
        first = time.perf_counter() - started if first is None else first
        received += chunk
    payloads = _sse_payloads(bytes(received))
    for payload in payloads:
        if payload.startswith('{"error"'):
            return Verdict(False, "error mid-stream", detail=payload)
    if not payloads or payloads[-1] != "[DONE]":
        return Verdict(False, "no [DONE]")
    if len(payloads) < 2:
        return Verdict(False, "no chunks")
    return Verdict(True, seconds=first)


async def _run_step(attempts: Attempts, step: Step, deployment: Deployment, timeout: float) -> Verdict:
    request = {"model": deployment.alias, **step.request}
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            reply = (await attempts.attempt(OPERATIONS["chat"], request, deployment)).reply
            if request.get("stream"):
                return await _judge_stream(reply, started)
            return _judge_answer(step, reply, time.perf_counter() - started)
    except TimeoutError:
        return Verdict(None, "timeout", detail=f"no answer within {timeout:g} s")
    except TurnoutError as exc:
        return _failure(exc)


async def probe_deployment(attempts: Attempts, deployment: Deployment, timeout: float) -> DeploymentReport:
    """The whole sequence on one deployment, in order; after a failed chat step the rest is skipped."""
    probed = _for_probe(deployment)
    verdicts: dict[str, Verdict] = {}
    for step in STEPS:
        if verdicts and verdicts["chat"].supported is not True:
            verdicts[step.name] = Verdict(None, "skipped")
        else:
            verdicts[step.name] = await _run_step(attempts, step, probed, timeout)
    return DeploymentReport(deployment, verdicts)
