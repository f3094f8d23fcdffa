"""Validation of the canonical requests other than chat: types and ranges by msgspec, OpenAI-style errors.

As for chat, the structs only validate; mappings receive the plain decoded JSON.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from engine.errors import InvalidRequest
from engine.jsonbody import decode_json_body
from engine.pipeline.validate import MAX_TOKEN_COUNT, Int64, TokenCount, invalid_request

__all__ = ["MAX_RERANK_DOCUMENTS", "MAX_RERANK_TEXT", "decode_request"]

NonEmpty = Annotated[str, Meta(min_length=1)]
# text, texts, a token array or token arrays (msgspec takes one list type per union; checked below)
TextsOrTokens = str | Annotated[list[Any], Meta(min_length=1)]


class EmbeddingsRequest(Struct):
    model: NonEmpty
    input: TextsOrTokens
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: TokenCount | None = None
    user: str | None = None


class CompletionsRequest(Struct):
    model: NonEmpty
    prompt: TextsOrTokens
    suffix: str | None = None
    max_tokens: TokenCount | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    n: Annotated[int, Meta(ge=1, le=128)] | None = None
    best_of: Annotated[int, Meta(ge=1, le=128)] | None = None
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    logprobs: Annotated[int, Meta(ge=0, le=5)] | None = None
    echo: bool | None = None
    stop: str | list[str] | None = None
    seed: Int64 | None = None
    presence_penalty: Annotated[float, Meta(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Meta(ge=-2, le=2)] | None = None


class SpeechRequest(Struct):
    model: NonEmpty
    input: Annotated[str, Meta(min_length=1, max_length=4096)]
    voice: NonEmpty | dict[str, Any]
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] | None = None
    speed: Annotated[float, Meta(ge=0.25, le=4.0)] | None = None
    instructions: str | None = None
    stream_format: Literal["sse", "audio"] | None = None


class ImagesRequest(Struct):
    model: NonEmpty
    prompt: Annotated[str, Meta(min_length=1)]
    n: Annotated[int, Meta(ge=1, le=10)] | None = None
    response_format: Literal["url", "b64_json"] | None = None
    size: str | None = None
    quality: str | None = None
    style: str | None = None
    user: str | None = None


# A rerank request is bounded before any backend sees it: rerank APIs advise at most 1,000 documents
# and truncate each to `max_tokens_per_doc` (commonly 4,096 tokens, some 16,000 characters), so these
# bounds only stop what no reranker would take.
MAX_RERANK_DOCUMENTS = 10_000
MAX_RERANK_TEXT = 100_000  # characters of the query, of a document, of one field of an object document
RerankText = Annotated[str, Meta(max_length=MAX_RERANK_TEXT)]
FieldName = Annotated[str, Meta(min_length=1, max_length=200)]


class RerankRequest(Struct):
    model: NonEmpty
    query: Annotated[str, Meta(min_length=1, max_length=MAX_RERANK_TEXT)]
    # strings, or objects of string fields (the v1 API, LiteLLM): ranked on `rank_fields`, else `text`
    documents: Annotated[
        list[RerankText | Annotated[dict[FieldName, RerankText], Meta(max_length=100)]],
        Meta(min_length=1, max_length=MAX_RERANK_DOCUMENTS),
    ]
    top_n: Annotated[int, Meta(ge=1, le=MAX_RERANK_DOCUMENTS)] | None = None
    return_documents: bool | None = None
    max_tokens_per_doc: TokenCount | None = None
    rank_fields: Annotated[list[FieldName], Meta(min_length=1, max_length=100)] | None = None
    max_chunks_per_doc: TokenCount | None = None


_DECODERS: dict[str, Any] = {
    "embeddings": msgspec.json.Decoder(EmbeddingsRequest).decode,
    "completions": msgspec.json.Decoder(CompletionsRequest).decode,
    "speech": msgspec.json.Decoder(SpeechRequest).decode,
    "images": msgspec.json.Decoder(ImagesRequest).decode,
    "rerank": msgspec.json.Decoder(RerankRequest).decode,
}


def decode_request(operation: str, body: bytes | bytearray) -> dict[str, Any]:
    """The request as plain JSON data, after checking it against the operation's canonical schema."""
    data: dict[str, Any] = decode_json_body(body)  # first: it bounds the nesting the typed pass recurses
    try:
        checked = _DECODERS[operation](body)
    except msgspec.ValidationError as exc:
        raise invalid_request(str(exc)) from None
    for field in ("input", "prompt"):
        value = getattr(checked, field, None)
        if isinstance(value, list) and not _texts_or_tokens(value):
            raise InvalidRequest(
                f"{field} must be a string, a list of strings, a list of token ids (0 to {MAX_TOKEN_COUNT})"
                " or a list of those",
                param=field,
            )
    return data


def _texts_or_tokens(items: list[Any]) -> bool:
    def tokens(value: Any) -> bool:
        return (
            isinstance(value, list)
            and bool(value)
            and all(type(t) is int and 0 <= t <= MAX_TOKEN_COUNT for t in value)
        )

    return all(isinstance(i, str) for i in items) or tokens(items) or all(tokens(i) for i in items)
