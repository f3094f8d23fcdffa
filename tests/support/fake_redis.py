"""A Redis stand-in on a local socket, for what a real server will not do on demand: hang, drop the
connection mid-batch, refuse a login, forget a script.

It reads RESP commands (hiredis parses requests as well as replies), records them, and answers each
with what `answer(command)` returns: RESP bytes, NOTHING (it never answers) or CLOSE (it drops the
connection). While `held`, answers wait, in order, until `release()`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

import hiredis

__all__ = ["CLOSE", "NOTHING", "FakeRedis", "bulk", "echo"]

NOTHING: Final = b""
CLOSE: Final = b"\x00close"


def bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def echo(command: list[bytes]) -> bytes:
    """The command's last argument, as a bulk string."""
    return bulk(command[-1])


class FakeRedis:
    def __init__(self, answer: Callable[[list[bytes]], bytes] = echo) -> None:
        self.answer = answer
        self.commands: list[list[bytes]] = []
        self.connections = 0
        self.held = False
        self._waiting: list[tuple[asyncio.StreamWriter, bytes]] = []
        self._arrived = asyncio.Event()
        self._server: asyncio.Server | None = None
        self.port = 0

    def url(self, path: str = "", auth: str = "") -> str:
        return f"redis://{auth}127.0.0.1:{self.port}{path}"

    async def __aenter__(self) -> FakeRedis:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()

    def release(self) -> None:
        """Send the answers that waited, in order, and answer at once from now on."""
        self.held = False
        for writer, reply in self._waiting:
            writer.write(reply)
        self._waiting.clear()

    async def wait_for(self, count: int) -> None:
        """Until `count` commands have arrived in all."""
        while len(self.commands) < count:
            self._arrived.clear()
            await self._arrived.wait()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        parser = hiredis.Reader()
        try:
            while data := await reader.read(65536):
                parser.feed(data)
                while (command := parser.gets()) is not False:
                    self.commands.append(command)
                    self._arrived.set()
                    reply = self.answer(command)
                    if reply == CLOSE:
                        return
                    if self.held:
                        self._waiting.append((writer, reply))
                    else:
                        writer.write(reply)
        except ConnectionError:
            pass
        finally:
            writer.close()
