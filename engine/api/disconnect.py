"""Cancel a request's work when its client goes away, at any point of the exchange.

The server does not cancel the application when a client disconnects: it only answers `receive()`
with `http.disconnect`, and Litestar listens for that only while it sends a streamed body. A handler
awaiting an upstream answer (its headers, a whole answer, a retry's backoff, a fallback) would go on
until the upstream timeout, holding the key's parallel slot, the router's in-flight count and a pooled
connection. So, on the routes that run the pipeline, once the request body has been read, this
middleware listens for the disconnect:

- before the response has started, it cancels the handler's task; the pipeline records a 499 and its
  upstream call is closed on the way out, and the cancellation ends here;
- once a (streamed) response has started, it reports the disconnect through the `receive` it gave the
  app, so that a response that listens (Litestar's `Stream`) ends the stream itself; a response that
  does not listen (engine.api.event_stream, which sends from the handler's task) is cancelled as a
  handler is before it answers.
"""

from __future__ import annotations

import asyncio

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

__all__ = ["DisconnectWatch"]

_DISCONNECT: ReceiveMessage = {"type": "http.disconnect"}


class DisconnectWatch:
    """Pure ASGI middleware; `create_app` puts it around every route, and it watches those whose handler
    has an `operation` in its `opt` (the pipeline's routes)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # only routes that run an operation call upstreams; the others (admin, reports) only touch SQL,
        # which is better left to finish than cancelled mid-query
        if scope["type"] != ScopeType.HTTP or "operation" not in scope["route_handler"].opt:
            await self.app(scope, receive, send)
            return
        task = asyncio.current_task()
        assert task is not None  # the server runs each request in a task
        exchange = _Exchange(task, receive, send)
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except asyncio.CancelledError:
            # our own cancellation ends here; one from anywhere else (a server stopping) goes on
            if not exchange.cancelled or task.uncancel() > 0:
                raise
        finally:
            exchange.close()


class _Exchange:
    """One request/response exchange as the middleware sees it."""

    __slots__ = (
        "_ended",
        "_receive",
        "_send",
        "_task",
        "_watcher",
        "cancelled",
        "complete",
        "left",
        "started",
    )

    def __init__(self, task: asyncio.Task[None], receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self._task = task  # the one running the handler
        self._watcher: asyncio.Task[None] | None = None  # started once the body has been read
        self._ended: asyncio.Future[None] | None = None  # made only if the app waits for the end
        self.started = False  # the response's status line has gone out
        self.complete = False  # ... and its last byte
        self.left = False  # the client went away before the response was complete
        self.cancelled = False  # ... and the handler's task was cancelled (see the module doc)

    async def receive(self) -> ReceiveMessage:
        """The server's messages while the body comes in; after it, only the end of the exchange."""
        if self._watcher is None:
            message = await self._receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                self._watcher = asyncio.create_task(self._watch())
            return message
        if not (self.complete or self.left):
            if self._ended is None or self._ended.cancelled():  # (its last waiter was cancelled)
                self._ended = asyncio.get_running_loop().create_future()
            await self._ended
        return _DISCONNECT

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.complete = True
            self._end()

    async def _watch(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        if self.complete:  # the server says "disconnect" once the response is complete, too
            return
        self.left = True
        listening = self._ended is not None
        self._end()
        if not self.started or not listening:
            self.cancelled = True
            self._task.cancel()

    def _end(self) -> None:
        if self._ended is not None and not self._ended.done():
            self._ended.set_result(None)

    def close(self) -> None:
        # after a complete response the server answers the watcher's receive() with a disconnect (ASGI
        # says so), so it ends by itself; otherwise the app gave up without one: stop listening
        watcher = self._watcher
        if watcher is not None and not self.complete and not watcher.done():
            watcher.cancel()
