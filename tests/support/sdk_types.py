"""Every answer checked against the official SDKs' own types, strictly (openai and anthropic).

The SDKs parse answers leniently (`construct`): a missing required field or a value of the wrong type
reaches the caller as an absent attribute or a string where a number was promised, and breaks it later
(typed clients such as the Vercel AI SDK or a pydantic user break at once). Here each whole answer,
each stream chunk or event, and each error body is validated with pydantic's
`model_validate_json(..., strict=True)` against the type the SDK declares for that route:

- every required field is present, and every value has its declared type, with no coercion (`"1"` is
  not an int, nor is `1.0`; a Literal such as `object: "chat.completion.chunk"` must match exactly);
- extra fields are allowed, as the SDK models themselves allow them (`extra="allow"`): Turnout's
  documented extensions (`reasoning_content`, `thinking_blocks`, `extra_content`) and a provider's own
  additions (Azure's `content_filter_results`) travel there, and clients read them as extras;
- rerank answers (no openai or anthropic type) against Cohere's documented shape, written here;
- unions with a `type` discriminator (Responses stream events, Anthropic stream events and errors) are
  validated against the one variant their `type` names, so a failure names the field that is wrong.

Use `openai_client` / `anthropic_client` / `strict_http` to get clients whose every response is
checked as it arrives (streams event by event, as they pass), or `problems(response)` on a response
already read. What fails is collected in PROBLEMS; the e2e suite asserts after each test that it
stayed empty (tests that drive a deliberately broken upstream through a pass-through stream opt out
with the `sdk_types_unchecked` marker).
"""

from __future__ import annotations

import base64
import functools
import struct
from collections.abc import Callable, Iterator
from typing import Annotated, Any, get_args, get_origin

import anthropic
import httpx
import httpx2
import msgspec
import openai
import pydantic
from anthropic.types import Message, MessageTokensCount, RawMessageStreamEvent
from anthropic.types.shared import ErrorResponse as AnthropicErrorResponse
from openai.types import Completion, CreateEmbeddingResponse, ImagesResponse, Model
from openai.types.audio import Transcription, TranscriptionVerbose, Translation, TranslationVerbose
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from openai.types.shared import ErrorObject

__all__ = [
    "PROBLEMS",
    "StrictTransport",
    "anthropic_client",
    "check_body",
    "check_event",
    "get",
    "openai_client",
    "post",
    "problems",
    "strict_http",
]

PROBLEMS: list[str] = []  # what failed since the e2e suite last looked (each test starts with it empty)

_decode = msgspec.json.decode


def _route(path: str) -> str:
    """The SDK route a URL path is (`chat/completions`, `messages`, ...), without the /v1 prefix."""
    path = path.rstrip("/")
    return path.removeprefix("/v1/") if path.startswith("/v1/") else path.removeprefix("/")


def _validate(model: Any, raw: bytes) -> str | None:
    try:
        _adapter(model).validate_json(raw, strict=True)
    except pydantic.ValidationError as exc:
        name = getattr(model, "__name__", str(model))
        found = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']} (got {str(e['input'])[:80]!r})"
            for e in exc.errors(include_url=False)
        )
        return f"not a valid {name}: {found}"
    return None


@functools.cache
def _adapter(model: Any) -> pydantic.TypeAdapter[Any]:
    return pydantic.TypeAdapter(model)


@functools.cache
def _variants(union: Any) -> dict[str, Any]:
    """A discriminated union's variants by the value of their `type` Literal."""
    if get_origin(union) is Annotated:
        union = get_args(union)[0]
    by_type = {}
    for member in get_args(union):
        for value in get_args(member.model_fields["type"].annotation):
            by_type[value] = member
    return by_type


def _by_type(union: Any, raw: bytes, data: Any) -> str | None:
    kind = data.get("type") if isinstance(data, dict) else None
    variant = _variants(union).get(kind) if isinstance(kind, str) else None
    if variant is None:
        return f"`type` {kind!r} names no variant of the SDK's union"
    return _validate(variant, raw)


def _openai_error(raw: bytes, data: Any) -> str | None:
    if not isinstance(data, dict) or set(data) != {"error"}:
        return f"an OpenAI error body is {{'error': {{...}}}}, not {data!r}"
    return _validate(ErrorObject, msgspec.json.encode(data["error"]))


def _anthropic_error(raw: bytes, data: Any) -> str | None:
    # the SDK's ErrorObject is a union by `type`: the error first, against the variant it names
    error = data.get("error") if isinstance(data, dict) else None
    return _by_type(_ERROR_UNION, msgspec.json.encode(error), error) or _validate(AnthropicErrorResponse, raw)


_ERROR_UNION = AnthropicErrorResponse.model_fields["error"].annotation


def _transcript(verbose: Any, plain: Any) -> Callable[[bytes, Any], str | None]:
    def check(raw: bytes, data: Any) -> str | None:
        is_verbose = isinstance(data, dict) and bool({"segments", "words", "duration"} & set(data))
        return _validate(verbose if is_verbose else plain, raw)

    return check


def _models_list(raw: bytes, data: Any) -> str | None:
    if not isinstance(data, dict) or data.get("object") != "list" or not isinstance(data.get("data"), list):
        return "a model list is {'object': 'list', 'data': [...]}"
    for item in data["data"]:
        problem = _validate(Model, msgspec.json.encode(item))
        if problem:
            return problem
    return None


def _embeddings(raw: bytes, data: Any) -> str | None:
    """`encoding_format: base64` (the SDK's default) answers each vector as base64 of float32s, which the
    SDK decodes before it builds its type: checked the same way."""
    items = data.get("data") if isinstance(data, dict) else None
    if isinstance(items, list) and any(
        isinstance(i, dict) and isinstance(i.get("embedding"), str) for i in items
    ):
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("embedding"), str):
                packed = base64.b64decode(item["embedding"], validate=True)
                if len(packed) % 4:
                    return "a base64 embedding is not a whole number of float32s"
                item["embedding"] = list(struct.unpack(f"<{len(packed) // 4}f", packed))
        raw = msgspec.json.encode(data)
    return _validate(CreateEmbeddingResponse, raw)


def _completion_chunk(raw: bytes, data: Any) -> str | None:
    """The SDK types a streamed completion as `Completion`, whose `finish_reason` is required, but
    OpenAI's own streams send null until the last chunk (openai/openai-openapi#100, not merged): null is
    allowed there, everything else is checked."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if isinstance(choices, list) and any(
        isinstance(c, dict) and c.get("finish_reason") is None for c in choices
    ):
        for choice in choices:
            if isinstance(choice, dict) and choice.get("finish_reason", "stop") is None:
                choice["finish_reason"] = "stop"
        raw = msgspec.json.encode(data)
    return _validate(Completion, raw)


class _Open(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")


class RerankApiVersion(_Open):
    version: str
    is_deprecated: bool | None = None
    is_experimental: bool | None = None


class RerankBilledUnits(_Open):
    search_units: float | None = None
    input_tokens: float | None = None
    output_tokens: float | None = None


class RerankTokens(_Open):
    input_tokens: float | None = None
    output_tokens: float | None = None


class RerankMeta(_Open):
    api_version: RerankApiVersion | None = None
    billed_units: RerankBilledUnits | None = None
    tokens: RerankTokens | None = None
    warnings: list[str] | None = None


class RerankResult(_Open):
    index: int
    relevance_score: float
    document: dict[str, str] | None = None


class RerankResponse(_Open):
    """Cohere's documented rerank answer (`V2RerankResponse` in its SDK, which is not a test dependency),
    which LiteLLM's /rerank answers too."""

    id: str | None = None
    results: list[RerankResult]
    meta: RerankMeta | None = None


def _whole(model: Any) -> Callable[[bytes, Any], str | None]:
    return lambda raw, data: _validate(model, raw)


# route -> how its 200 JSON answer is checked
_ANSWERS: dict[str, Callable[[bytes, Any], str | None]] = {
    "chat/completions": _whole(ChatCompletion),
    "completions": _whole(Completion),
    "embeddings": _embeddings,
    "images/generations": _whole(ImagesResponse),
    "audio/transcriptions": _transcript(TranscriptionVerbose, Transcription),
    "audio/translations": _transcript(TranslationVerbose, Translation),
    "models": _models_list,
    "responses": _whole(Response),
    "messages": _whole(Message),
    "messages/count_tokens": _whole(MessageTokensCount),
    "rerank": _whole(RerankResponse),
    "v2/rerank": _whole(RerankResponse),
}
_ANTHROPIC_ROUTES = frozenset({"messages", "messages/count_tokens"})


def check_body(route: str, status: int, content_type: str, raw: bytes) -> str | None:
    """What is wrong with a whole answer of `route` (None: nothing, or not a route an SDK types)."""
    if route not in _ANSWERS and not route.startswith("models"):
        return None
    if not content_type.startswith("application/json"):
        return None if status < 400 else f"an error answered as {content_type!r}, not JSON"
    try:
        data = _decode(raw)
    except msgspec.DecodeError as exc:
        return f"not JSON: {exc}"
    if status >= 400:
        return (_anthropic_error if route in _ANTHROPIC_ROUTES else _openai_error)(raw, data)
    if route.startswith("models/"):  # GET /v1/models/{id}
        return _validate(Model, raw)
    return _ANSWERS[route](raw, data)


def check_event(route: str, event: str | None, raw: bytes) -> str | None:
    """What is wrong with one SSE event (its `event:` name and `data:` payload) of a stream of `route`."""
    if raw == b"[DONE]":
        return None if route in ("chat/completions", "completions") else "[DONE] in a typed-event stream"
    try:
        data = _decode(raw)
    except msgspec.DecodeError as exc:
        return f"not JSON: {exc}"
    if route in ("chat/completions", "completions"):
        if isinstance(data, dict) and "error" in data:  # the in-band error that ends a stream
            return _openai_error(raw, data)
        if route == "completions":
            return _completion_chunk(raw, data)
        return _validate(ChatCompletionChunk, raw)
    if route == "responses":
        problem = _by_type(ResponseStreamEvent, raw, data)
        return problem or _named(event, data)
    if route == "messages":
        if event == "ping":
            return None if data == {"type": "ping"} else f"a ping is {{'type': 'ping'}}, not {data!r}"
        if event == "error":
            return _anthropic_error(raw, data)
        return _by_type(RawMessageStreamEvent, raw, data) or _named(event, data)
    return None


def _named(event: str | None, data: Any) -> str | None:
    kind = data.get("type") if isinstance(data, dict) else None
    return None if event == kind else f"event {event!r} carries data of type {kind!r}"


def _sse_events(raw: bytes) -> Iterator[tuple[str | None, bytes]]:
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        name, data = None, []
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data.append(line[5:].removeprefix(b" "))
        if data:
            yield name, b"\n".join(data)


def problems(response: httpx.Response) -> list[str]:
    """Everything wrong with a response already read (whole, or a whole stream)."""
    route = _route(response.request.url.path)
    found = []
    content_type = response.headers.get("content-type", "")
    if content_type.startswith("text/event-stream") and response.status_code == 200:
        for event, data in _sse_events(response.content):
            problem = check_event(route, event, data)
            if problem:
                found.append(f"{route} {event or 'chunk'}: {problem} -- in {data[:160]!r}")
    else:
        problem = check_body(route, response.status_code, content_type, response.content)
        if problem:
            found.append(f"{route} {response.status_code}: {problem} -- in {response.content[:160]!r}")
    return found


class _Events:
    """Complete SSE events out of a byte stream, each checked as it passes."""

    def __init__(self, route: str) -> None:
        self._route = route
        self._held = b""

    def feed(self, chunk: bytes) -> None:
        held = (self._held + chunk).replace(b"\r\n", b"\n")
        cut = held.rfind(b"\n\n")
        if cut >= 0:
            self._check(held[: cut + 2])
            held = held[cut + 2 :]
        self._held = held

    def close(self) -> None:
        if self._held.strip():
            self._check(self._held)
        self._held = b""

    def _check(self, events: bytes) -> None:
        for event, data in _sse_events(events):
            problem = check_event(self._route, event, data)
            if problem:
                PROBLEMS.append(f"{self._route} {event or 'chunk'}: {problem} -- in {data[:160]!r}")


def _transport(http: Any) -> Any:
    """A transport class for `http` (httpx, or httpx2 which the SDKs use) that checks each response
    of an SDK route against the SDK's types: whole answers when they arrive, streams event by event."""

    class CheckedStream(http.SyncByteStream):  # type: ignore[misc, name-defined]
        def __init__(self, inner: Any, route: str) -> None:
            self._inner = inner
            self._events = _Events(route)

        def __iter__(self) -> Iterator[bytes]:
            for chunk in self._inner:
                self._events.feed(chunk)
                yield chunk
            self._events.close()

        def close(self) -> None:
            self._inner.close()

    class Transport(http.BaseTransport):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            self._inner = http.HTTPTransport()

        def handle_request(self, request: Any) -> Any:
            response = self._inner.handle_request(request)
            route = _route(request.url.path)
            if route not in _ANSWERS and not route.startswith("models"):
                return response
            content_type = response.headers.get("content-type", "")
            if content_type.startswith("text/event-stream") and response.status_code == 200:
                response.stream = CheckedStream(response.stream, route)
                return response
            raw = response.read()
            problem = check_body(route, response.status_code, content_type, raw)
            if problem:
                PROBLEMS.append(f"{route} {response.status_code}: {problem} -- in {raw[:160]!r}")
            return response

        def close(self) -> None:
            self._inner.close()

    return Transport


StrictTransport = _transport(httpx)
_StrictTransport2 = _transport(httpx2)


def strict_http(base_url: str = "", **options: Any) -> httpx.Client:
    """An httpx client whose every answer of an SDK route is checked."""
    return httpx.Client(base_url=base_url, transport=StrictTransport(), **options)


def _sdk_http() -> httpx2.Client:
    return httpx2.Client(transport=_StrictTransport2())


def openai_client(base_url: str, api_key: str = "unused", **options: Any) -> openai.OpenAI:
    options.setdefault("max_retries", 0)
    options.setdefault("timeout", 10)
    return openai.OpenAI(base_url=base_url, api_key=api_key, http_client=_sdk_http(), **options)


def anthropic_client(base_url: str, api_key: str = "unused", **options: Any) -> anthropic.Anthropic:
    options.setdefault("max_retries", 0)
    options.setdefault("timeout", 10)
    return anthropic.Anthropic(base_url=base_url, api_key=api_key, http_client=_sdk_http(), **options)


def post(url: str, **options: Any) -> httpx.Response:
    """httpx.post, with the answer checked."""
    with strict_http(timeout=options.pop("timeout", 10)) as http:
        return http.post(url, **options)


def get(url: str, **options: Any) -> httpx.Response:
    """httpx.get, with the answer checked."""
    with strict_http(timeout=options.pop("timeout", 10)) as http:
        return http.get(url, **options)
