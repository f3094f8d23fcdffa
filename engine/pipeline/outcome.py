"""What one attempt produced, in two parts that go different ways.

    Outcome
    ├── Reply   -> the client: a body or a stream, its media type and headers, and the decoded canonical
    │              answer (dialects translate it without decoding the body again)
    └── Tally   -> the usage record: the request as the deployment got it, the usage and cost it
                   reported, and the StreamUsage that reads a stream's usage as it goes by

`Pipeline.run` meters the Tally and hands the client only the Reply.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.pipeline.stream_events import StreamPiece
from engine.pipeline.stream_usage import StreamUsage

__all__ = ["Outcome", "Reply", "Tally"]


@dataclass(slots=True)
class Reply:
    """What goes to the client."""

    body: bytes | None = None
    stream: AsyncIterator[StreamPiece] | None = None  # bytes only, unless media_type is an event stream
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "application/json"
    answer: Any = None  # the canonical answer `body` encodes (None: a stream, or an upstream's raw bytes)


@dataclass(slots=True)
class Tally:
    """What goes to metering."""

    request: dict[str, Any]  # as the deployment got it (parameters layered, usage asked for)
    usage: Any = None  # the answer's canonical `usage`, when it has one
    cost: Decimal | None = None
    stream: StreamUsage | None = None  # a token stream's usage, read as its chunks go by


@dataclass(slots=True)
class Outcome:
    reply: Reply
    tally: Tally
