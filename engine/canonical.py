"""The canonical format: OpenAI's Chat Completions JSON plus a few documented extensions.

Every provider mapping translates to and from it. The extensions are `reasoning_content` on messages
and deltas (reasoning text), `thinking_blocks` beside it (signed reasoning blocks a client sends back
unchanged) and the `think` request field (an on/off or level switch for thinking models).
This module lists each operation's canonical parameters so the loader can insist that every mapping
accounts for every one of them (mapped, dropped with a warning, or rejected).
"""

from __future__ import annotations

__all__ = ["OPERATION_PARAMETERS"]

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

OPERATION_PARAMETERS: dict[str, frozenset[str]] = {
    "chat": CHAT_PARAMETERS,
    "embeddings": EMBEDDINGS_PARAMETERS,
    "completions": COMPLETIONS_PARAMETERS,
    "transcriptions": TRANSCRIPTIONS_PARAMETERS,
    "translations": TRANSLATIONS_PARAMETERS,
    "speech": SPEECH_PARAMETERS,
    "images": IMAGES_PARAMETERS,
}
