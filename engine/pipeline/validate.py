"""Validation of canonical chat requests: types and ranges checked by msgspec, errors in OpenAI's shape.

The structs only validate; mappings receive the plain decoded JSON, so unknown (provider-native)
fields survive for the parameter policy to judge. Every field a mapping or the pipeline reads is typed,
and every number bounded: msgspec takes any JSON integer as an `int`, so a token count of 10**30 would
otherwise be forwarded.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from engine.errors import InvalidRequest
from engine.jsonbody import decode_json_body

__all__ = [
    "MAX_TOKEN_COUNT",
    "Int64",
    "TokenCount",
    "check_chat_request",
    "decode_chat_request",
    "invalid_request",
]

MAX_TOKEN_COUNT = 2**31 - 1  # far above any model's window; what a 32-bit column or backend field holds

Temperature = Annotated[float, Meta(ge=0, le=2)]
Probability = Annotated[float, Meta(ge=0, le=1)]
Penalty = Annotated[float, Meta(ge=-2, le=2)]
TokenCount = Annotated[int, Meta(ge=1, le=MAX_TOKEN_COUNT)]
Int64 = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]


class _ImageUrl(Struct):
    url: str
    detail: str | None = None


class TextPart(Struct, tag="text", tag_field="type"):
    text: str


class ImagePart(Struct, tag="image_url", tag_field="type"):
    image_url: _ImageUrl


class AudioPart(Struct, tag="input_audio", tag_field="type"):
    input_audio: dict[str, Any]


class FilePart(Struct, tag="file", tag_field="type"):
    file: dict[str, Any]


class RefusalPart(Struct, tag="refusal", tag_field="type"):
    refusal: str


Part = TextPart | ImagePart | AudioPart | FilePart | RefusalPart


class _FunctionCall(Struct):
    name: str
    arguments: str


class _ToolCall(Struct):
    function: _FunctionCall
    id: str | None = None
    type: str = "function"


class _Message(Struct):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[Part] | None = None
    name: str | None = None
    tool_calls: list[_ToolCall] | None = None
    tool_call_id: str | None = None
    reasoning_content: str | None = None


class _FunctionDef(Struct):
    name: Annotated[str, Meta(min_length=1, max_length=64)]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class _Tool(Struct):
    function: _FunctionDef
    type: Literal["function"] = "function"


class _ToolChoiceFunction(Struct):
    name: str


class _ToolChoice(Struct):
    type: str
    function: _ToolChoiceFunction | None = None


class _StreamOptions(Struct):
    include_usage: bool | None = None


class _ResponseFormat(Struct):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class ChatRequest(Struct):
    model: Annotated[str, Meta(min_length=1)]
    messages: Annotated[list[_Message], Meta(min_length=1)]
    stream: bool | None = None
    stream_options: _StreamOptions | None = None
    temperature: Temperature | None = None
    top_p: Probability | None = None
    max_tokens: TokenCount | None = None
    max_completion_tokens: TokenCount | None = None
    n: Annotated[int, Meta(ge=1, le=128)] | None = None
    stop: str | list[str] | None = None
    seed: Int64 | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    logit_bias: dict[str, Annotated[float, Meta(ge=-100, le=100)]] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None
    tools: list[_Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | _ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: _ResponseFormat | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = None
    think: bool | Literal["low", "medium", "high"] | None = None
    user: str | None = None
    metadata: dict[str, Any] | None = None
    store: bool | None = None
    service_tier: str | None = None
    modalities: list[str] | None = None


_validate = msgspec.json.Decoder(ChatRequest).decode


def decode_chat_request(body: bytes | bytearray) -> dict[str, Any]:
    """The request as plain JSON data, after checking it against the canonical schema."""
    data: dict[str, Any] = decode_json_body(body)  # first: it bounds the nesting the typed pass recurses
    try:
        _validate(body)
    except msgspec.ValidationError as exc:
        raise invalid_request(str(exc)) from None
    return data


def check_chat_request(data: Any) -> dict[str, Any]:
    """A canonical chat request built by a dialect mapping, checked against the same schema."""
    if not isinstance(data, dict):
        raise InvalidRequest("the request could not be translated into a chat request")
    try:
        msgspec.convert(data, ChatRequest)
    except msgspec.ValidationError as exc:
        raise invalid_request(str(exc)) from None
    return data


def invalid_request(detail: str) -> InvalidRequest:
    """An OpenAI-style 400 from a msgspec validation message, naming the offending field as `param`."""
    # msgspec says e.g. "Expected `float` <= 2.0, got `3.5` - at `$.temperature`"
    message, _, where = detail.rpartition(" - at `")
    param = where.rstrip("`").removeprefix("$").lstrip(".") if where else None
    if not message:
        message, param = detail, None
    # "Object missing required field `messages`" names the field in the message, not in the path
    missing = message.partition("missing required field `")[2].rstrip("`")
    if missing:
        param = f"{param}.{missing}" if param else missing
    return InvalidRequest(f"invalid request: {message}" + (f" (at {param})" if param else ""), param=param)
