"""The canonical format: OpenAI's Chat Completions JSON plus a few documented extensions.

Every provider mapping translates to and from it. The extensions are `reasoning_content` on messages
and deltas (reasoning text), `thinking_blocks` beside it (signed reasoning blocks a client sends back
unchanged) and the `think` request field (an on/off or level switch for thinking models).
This module describes each operation once (`OPERATIONS`): its canonical parameters, so the loader can
insist that every mapping accounts for every one of them (mapped, dropped with a warning, or rejected),
the alias modes that serve it, how errors name it, and how its usage is counted.

Besides OpenAI's operations there is `rerank`, in the shape LiteLLM's `/rerank` serves (a request of
`query` and `documents`; an answer of `results` ranked by `relevance_score`, with `meta.billed_units`
and `meta.tokens` for its usage; mappings/README.md has the whole shape).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OPERATIONS", "OperationKind"]

CHAT_PARAMETERS = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "n",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "user",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "reasoning_effort",
        "think",  # extension: true/false or a level ("low" | "medium" | "high")
        "metadata",
        "store",
        "service_tier",
        "modalities",
        "audio",
        "prediction",
        "web_search_options",
        "functions",  # deprecated by OpenAI, still sent by old clients
        "function_call",
    }
)

EMBEDDINGS_PARAMETERS = frozenset({"model", "input", "encoding_format", "dimensions", "user"})

COMPLETIONS_PARAMETERS = frozenset(
    {
        "model",
        "prompt",
        "suffix",
        "max_tokens",
        "temperature",
        "top_p",
        "n",
        "stream",
        "stream_options",
        "logprobs",
        "echo",
        "stop",
        "presence_penalty",
        "frequency_penalty",
        "best_of",
        "logit_bias",
        "user",
        "seed",
    }
)

# multipart uploads: `file` is an UploadedFile (filename, content_type, data)
TRANSCRIPTIONS_PARAMETERS = frozenset(
    {
        "model",
        "file",
        "language",
        "prompt",
        "response_format",
        "temperature",
        "timestamp_granularities",
        "chunking_strategy",
        "include",
        "stream",
    }
)
TRANSLATIONS_PARAMETERS = frozenset({"model", "file", "prompt", "response_format", "temperature"})

SPEECH_PARAMETERS = frozenset(
    {"model", "input", "voice", "response_format", "speed", "instructions", "stream_format"}
)

IMAGES_PARAMETERS = frozenset(
    {
        "model",
        "prompt",
        "n",
        "quality",
        "response_format",
        "size",
        "style",
        "user",
        "background",
        "moderation",
        "output_compression",
        "output_format",
    }
)

# the rerank request LiteLLM's `/rerank` takes: the v2 rerank API's fields plus the v1 object documents,
# `rank_fields` and `return_documents`
RERANK_PARAMETERS = frozenset(
    {
        "model",
        "query",
        "documents",  # strings, or objects of string fields (ranked on `rank_fields`, else `text`)
        "top_n",
        "return_documents",
        "max_tokens_per_doc",
        "rank_fields",
        "max_chunks_per_doc",  # the v1 API's, still sent by old clients
    }
)


@dataclass(frozen=True, slots=True)
class OperationKind:
    """What one canonical operation is: everything the pipeline, metering and loaders ask of it."""

    name: str  # as in routes' `opt`, mappings' `operations` and the request log
    title: str  # how errors name it ("the model serves chat requests, not <title>")
    parameters: frozenset[str]  # the canonical parameters every mapping must account for
    modes: frozenset[str]  # the alias modes (LiteLLM's model_info.mode) that serve it
    counts_tokens: bool = False  # usage is in tokens: the prompt is counted (estimated when missing)
    generates: bool = False  # it generates text: completion tokens, and streamed chunks carry usage
    names_model: bool = False  # its answers and chunks name a model (the alias's, when answer_alias)
    usage_at: tuple[str, ...] = ("usage",)  # where a whole answer carries its token usage


_CHAT_MODES = frozenset({"chat", "completion", "responses"})
_AUDIO_IN = frozenset({"audio_transcription"})

OPERATIONS: dict[str, OperationKind] = {
    kind.name: kind
    for kind in (
        OperationKind(
            "chat",
            "chat completions",
            CHAT_PARAMETERS,
            _CHAT_MODES,
            counts_tokens=True,
            generates=True,
            names_model=True,
        ),
        OperationKind(
            "embeddings",
            "embeddings",
            EMBEDDINGS_PARAMETERS,
            frozenset({"embedding"}),
            counts_tokens=True,
            names_model=True,
        ),
        OperationKind(
            "completions",
            "text completions",
            COMPLETIONS_PARAMETERS,
            frozenset({"chat", "completion"}),
            counts_tokens=True,
            generates=True,
            names_model=True,
        ),
        OperationKind("transcriptions", "audio transcriptions", TRANSCRIPTIONS_PARAMETERS, _AUDIO_IN),
        OperationKind("translations", "audio translations", TRANSLATIONS_PARAMETERS, _AUDIO_IN),
        OperationKind("speech", "speech", SPEECH_PARAMETERS, frozenset({"audio_speech"})),
        OperationKind("images", "image generation", IMAGES_PARAMETERS, frozenset({"image_generation"})),
        OperationKind(
            "rerank",
            "rerank",
            RERANK_PARAMETERS,
            frozenset({"rerank"}),
            counts_tokens=True,  # the query and documents: estimated when the backend does not say
            usage_at=("meta", "tokens"),  # {input_tokens, output_tokens}
        ),
    )
}
