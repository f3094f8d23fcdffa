"""A provider mapping once loaded: its operations with their compiled sections and parameter policy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from engine.mapping.compiler import CompiledSection

__all__ = ["Discovery", "Framing", "Operation", "ParamPolicy", "ProviderMapping", "StreamSpec"]

Framing = Literal["sse", "ndjson"]
Action = Literal["pass", "drop", "reject"]


@dataclass(frozen=True, slots=True)
class Limit:
    minimum: float | None = None
    maximum: float | None = None
    clamp: bool = False  # clamp into range; otherwise a value out of range is a 400
    one_of: tuple[Any, ...] | None = None  # the values allowed (e.g. response formats); others are a 400


@dataclass(frozen=True, slots=True)
class ParamPolicy:
    """What happens to each request parameter before the request section sees it."""

    actions: Mapping[str, Action]  # canonical and native parameters
    other: Action  # parameters neither canonical nor native
    limits: Mapping[str, Limit] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)  # lowest precedence


@dataclass(frozen=True, slots=True)
class StreamSpec:
    framing: Framing
    passthrough: bool  # forward the upstream bytes unchanged (already canonical SSE)
    start: CompiledSection | None = None  # (request, deployment) -> initial state
    # (event, event_type, state, request, deployment) -> step: {chunks, state, done, envelope?}, each
    # chunk sent laid over `envelope` (the fields all of this event's chunks share)
    event: CompiledSection | None = None
    error: CompiledSection | None = None  # same variables -> a truthy value marks an in-band error


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    method: str
    url: CompiledSection  # (request, deployment) -> str
    headers: CompiledSection | None  # (request, deployment) -> mapping
    request: CompiledSection  # (request, deployment) -> body
    response: CompiledSection | None  # (response, request, deployment); None = passthrough or raw
    stream: StreamSpec | None
    params: ParamPolicy
    inline_images: bool = False  # fetch http(s) image URLs and hand the mapping data: URLs
    # (response, request, deployment) -> truthy when a 200 answer is really an error (e.g. a blocked prompt)
    response_error: CompiledSection | None = None
    request_format: Literal["json", "multipart"] = "json"  # how the request section's value is sent
    raw_response: bool = False  # `response: raw`: bytes and content type forwarded as they arrive


@dataclass(frozen=True, slots=True)
class Discovery:
    """How to ask a backend which models it serves."""

    method: str
    url: CompiledSection  # (request, deployment) -> str; `request` is empty here
    models: CompiledSection  # (response, request, deployment) -> list of upstream model names


@dataclass(frozen=True, slots=True)
class ProviderMapping:
    name: str
    file: str
    description: str
    privacy_tier: str
    api_base: str | None
    prefixes: tuple[str, ...]
    operations: Mapping[str, Operation]
    errors: CompiledSection | None  # (status, body, text, deployment) -> {message, type, code, param}
    headers: CompiledSection | None = None  # provider-level headers, (request, deployment) -> mapping
    discovery: Discovery | None = None
    gen_ai_provider: str | None = None  # `gen_ai.provider.name` in traces, when not `name` (semconv's value)
