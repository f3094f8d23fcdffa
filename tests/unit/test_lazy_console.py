"""LazyConsole: the console's app is built on the first request under its path, once, however many
requests arrive while it is being built; every other request passes straight through."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from engine.console.lazy import LazyConsole


def _answering(name: str) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": name.encode()})

    return app


async def _get(app: Any, path: str, root_path: str = "") -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "root_path": root_path, "headers": []}
    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


class _Builds:
    """A `build` that counts its calls; with `gate`, each waits for it (in the worker thread)."""

    def __init__(self, gate: threading.Event | None = None, fail: bool = False) -> None:
        self.calls = 0
        self.started = threading.Event()
        self._gate = gate
        self._fail = fail

    def __call__(self) -> Any:
        self.calls += 1
        self.started.set()
        if self._gate is not None:
            self._gate.wait(timeout=10)
        if self._fail:
            raise RuntimeError("broken")
        return _answering("console")


def _lazy(build: Callable[[], Any]) -> LazyConsole:
    return LazyConsole(_answering("api"), "/ui", build)


def test_nothing_is_built_until_a_request_under_the_path() -> None:
    build = _Builds()
    lazy = _lazy(build)

    async def run() -> list[tuple[int, bytes]]:
        paths = ("/v1/models", "/health", "/uix", "/u", "/v1/ui", "/v1/models/gui-model")
        return [await _get(lazy, path) for path in paths]

    assert asyncio.run(run()) == [(200, b"api")] * 6
    assert build.calls == 0 and not lazy.built


@pytest.mark.parametrize("path", ["/ui", "/ui/", "/ui/sign-in", "//ui//static/app.js", "/ui/x/y"])
def test_a_request_under_the_path_builds_the_console_and_is_answered_by_it(path: str) -> None:
    build = _Builds()
    lazy = _lazy(build)
    assert asyncio.run(_get(lazy, path)) == (200, b"console")
    assert build.calls == 1 and lazy.built


def test_the_path_is_read_below_the_root_path_as_the_router_reads_it() -> None:
    lazy = _lazy(_Builds())
    assert asyncio.run(_get(lazy, "/gw/ui/sign-in", root_path="/gw")) == (200, b"console")
    assert asyncio.run(_get(lazy, "/gw/v1/models", root_path="/gw")) == (200, b"api")


def test_a_deeper_console_path_is_matched_whole_however_its_slashes_are_written() -> None:
    lazy = LazyConsole(_answering("api"), "/admin/console", _Builds())

    async def run() -> list[bytes]:
        paths = ("/admin//console/keys", "/admin/console/", "/admin", "/admin/consoles", "/console")
        return [(await _get(lazy, path))[1] for path in paths]

    assert asyncio.run(run()) == [b"console", b"console", b"api", b"api", b"api"]


def test_it_is_built_once_and_then_reused() -> None:
    build = _Builds()
    lazy = _lazy(build)

    async def run() -> list[tuple[int, bytes]]:
        return [await _get(lazy, "/ui/sign-in") for _ in range(3)]

    assert asyncio.run(run()) == [(200, b"console")] * 3
    assert build.calls == 1


def test_concurrent_first_requests_wait_for_one_build() -> None:
    gate = threading.Event()
    build = _Builds(gate)
    lazy = _lazy(build)

    async def run() -> list[tuple[int, bytes]]:
        first = [asyncio.create_task(_get(lazy, f"/ui/page-{n}")) for n in range(5)]
        # the build runs in a worker thread: the loop still answers the API meanwhile
        await asyncio.to_thread(build.started.wait, 10)
        assert await _get(lazy, "/v1/models") == (200, b"api")
        assert not any(task.done() for task in first)
        gate.set()
        return list(await asyncio.gather(*first))

    assert asyncio.run(run()) == [(200, b"console")] * 5
    assert build.calls == 1


def test_a_failed_build_is_an_openai_style_500_and_the_next_request_tries_again() -> None:
    build = _Builds(fail=True)
    lazy = _lazy(build)
    status, body = asyncio.run(_get(lazy, "/ui/sign-in"))
    assert status == 500
    assert json.loads(body)["error"]["message"] == "internal error in the gateway; see its log"
    assert "broken" not in body.decode()
    asyncio.run(_get(lazy, "/ui/sign-in"))
    assert build.calls == 2 and not lazy.built
