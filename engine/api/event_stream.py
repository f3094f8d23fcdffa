"""A pipeline event stream as an HTTP response, sent from the handler's own task.

Litestar's `Stream` runs its body in a task group: a task for the body, one listening for the client's
disconnect, and on every chunk an `http.response.body` message built by its loop. A token stream sends a
chunk per upstream event, each on a wake-up of its own, so what a chunk costs on its way out is most of
what the gateway adds to a stream. This response sends the pieces from the task that ran the handler,
rendered as it goes (`openai_sse`'s rendering, without a generator of its own), and listens for nothing:
DisconnectWatch cancels the task of a response that does not listen when its client leaves (the stream
below records the 499 and closes its upstream), as it cancels a handler that has not answered yet.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any

from litestar import Response
from litestar.response.base import ASGIResponse

from engine.pipeline.stream_events import SseRenderer, StreamPiece

if TYPE_CHECKING:
    from collections.abc import Iterable

    from litestar.app import Litestar
    from litestar.background_tasks import BackgroundTask, BackgroundTasks
    from litestar.connection import Request
    from litestar.datastructures.cookie import Cookie
    from litestar.enums import MediaType
    from litestar.types import Receive, Send, TypeEncodersMap

__all__ = ["EventStream"]

_MEDIA_TYPE = "text/event-stream"


class EventStream(Response[AsyncIterator[StreamPiece]]):
    """The OpenAI chat dialect's SSE of a pipeline stream (see the module doc)."""

    def __init__(self, pieces: AsyncIterator[StreamPiece], *, headers: dict[str, str]) -> None:
        super().__init__(pieces, media_type=_MEDIA_TYPE, headers=headers)

    def to_asgi_response(
        self,
        app: Litestar | None,
        request: Request[Any, Any, Any],
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: MediaType | str | None = None,
        status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> ASGIResponse:
        # what Litestar's Stream passes on, the body aside
        return _ASGIEventStream(
            self.content,
            background=self.background or background,
            cookies=self.cookies if cookies is None else itertools.chain(self.cookies, cookies),
            headers={**headers, **self.headers} if headers is not None else self.headers,
            is_head_response=is_head_response,
            media_type=_MEDIA_TYPE,
            status_code=self.status_code or status_code,
        )


class _ASGIEventStream(ASGIResponse):
    __slots__ = ("pieces",)

    _should_set_content_length = False

    def __init__(self, pieces: AsyncIterator[StreamPiece], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pieces = pieces

    async def send_body(self, send: Send, receive: Receive) -> None:
        pieces = self.pieces
        render = SseRenderer().render
        try:
            async for piece in pieces:
                await send({"type": "http.response.body", "body": render(piece), "more_body": True})
        except BaseException:
            # a cancellation (the client left) that came while a piece was being sent: the stream is
            # closed now, so that it records the 499 and drops its upstream at once, not when collected
            if isinstance(pieces, AsyncGenerator):
                await pieces.aclose()
            raise
        await send({"type": "http.response.body", "body": b"", "more_body": False})
