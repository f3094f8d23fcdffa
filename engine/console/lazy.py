"""The console, built on its first request: a process that only ever serves the API never imports the
console's pages, forms and templates, nor builds their routes (about 1.5 MB of a serving process).

`LazyConsole` sits in front of the app's router, as ASGI middleware does. A request under the console's
path (as Litestar's router reads the path: below the ASGI `root_path`, slashes normalized) goes to the
console's own app, which `build` makes once, in a worker thread, so that the event loop keeps serving
the API meanwhile; concurrent first requests wait for that one build. Every other request passes
straight through.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send
from litestar.utils import normalize_path

from engine.errors import TurnoutError

__all__ = ["LazyConsole"]

log = logging.getLogger("turnout")


class LazyConsole:
    def __init__(self, app: ASGIApp, path: str, build: Callable[[], ASGIApp]) -> None:
        self.app = app
        self._path = path
        self._prefix = path + "/"
        # normalizing only adds or removes slashes: a path without this text is never the console's
        self._first_segment = path.strip("/").split("/")[0]
        self._build = build
        self._console: ASGIApp | None = None
        self._building: asyncio.Future[ASGIApp] | None = None

    @property
    def built(self) -> bool:
        return self._console is not None

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # not a coroutine itself: an API request gets the app's own, with no frame of this one around it
        if scope["type"] != ScopeType.HTTP or not self._under(scope):
            return self.app(scope, receive, send)
        return self._serve(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        console = self._console
        if console is None:
            try:
                console = await self._built()
            except Exception:  # a broken install: said once per request in the log, a 500 to the client
                log.error("the admin console could not be built", exc_info=True)
                await _internal_error(send)
                return
        await console(scope, receive, send)

    def _under(self, scope: Scope) -> bool:
        path = scope["path"]
        if self._first_segment not in path:  # nearly every API request: one substring test
            return False
        if root_path := scope.get("root_path", ""):  # as Litestar's router takes it off
            path = path.split(root_path, maxsplit=1)[-1]
        path = normalize_path(path)
        return path == self._path or path.startswith(self._prefix)

    async def _built(self) -> ASGIApp:
        if self._building is None:
            self._building = asyncio.ensure_future(asyncio.to_thread(self._build))
        building = self._building
        try:
            # shielded: a first request that is cancelled leaves the build to the others
            console = await asyncio.shield(building)
        except Exception:
            if building.done() and self._building is building:
                self._building = None  # the next request tries again
            raise
        self._console = console
        return console


async def _internal_error(send: Send) -> None:
    error = TurnoutError("internal error in the gateway; see its log")
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": error.status,
        "headers": [(b"content-type", b"application/json")],
    }
    body: HTTPResponseBodyEvent = {"type": "http.response.body", "body": error.to_json(), "more_body": False}
    await send(start)
    await send(body)
