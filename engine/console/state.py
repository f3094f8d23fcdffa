"""What the console keeps for the life of the process, built once by `create_app`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.api.state import gateway_of
from engine.console.session import ConsoleSession, Signer
from engine.console.throttle import SignInThrottle
from engine.settings import Settings

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection

    from engine.gateway import Gateway

__all__ = ["ConsoleState", "console_gateway", "console_session", "console_state"]


@dataclass(slots=True)
class ConsoleState:
    settings: Settings
    signer: Signer
    throttle: SignInThrottle
    # how a failed sign-in waits `ui_sign_in_delay` (tests replace it, to see the wait without waiting)
    pause: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)

    @property
    def path(self) -> str:
        """Where the console is served, e.g. "/ui"."""
        return self.settings.ui_path


def console_state(connection: ASGIConnection[Any, Any, Any, Any]) -> ConsoleState:
    state: ConsoleState = connection.app.state.console
    return state


def console_gateway(connection: ASGIConnection[Any, Any, Any, Any]) -> Gateway:
    return gateway_of(connection)


def console_session(connection: ASGIConnection[Any, Any, Any, Any]) -> ConsoleSession:
    """The signed-in session the guard left on the request (every page but sign-in has one)."""
    session: ConsoleSession = connection.state.console_session
    return session
