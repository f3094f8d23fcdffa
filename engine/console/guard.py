"""The console's guard: every page but sign-in needs a valid session cookie, and every request that
changes something needs the session's CSRF token and, when the browser names it, the console's origin.

A virtual key opens nothing here: only a session cookie is read, never an Authorization header, and
only the master key or an admin password creates a session (engine/console/credentials.py).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from engine.console.credentials import still_valid
from engine.console.render import render
from engine.console.session import COOKIE_NAME
from engine.console.state import console_gateway, console_state

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "CsrfRefused", "SignInRequired", "console_guard", "refusal_handlers"]

CSRF_FIELD = "_csrf"
CSRF_HEADER = "x-csrf-token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SignInRequired(Exception):
    """No session, an expired one, or one whose credential has changed."""


class CsrfRefused(Exception):
    """A change without the session's CSRF token, or from another origin."""


def _same_origin(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    origin = connection.headers.get("origin")
    if origin is None:  # browsers send Origin on every cross-site POST; its absence is not an attack
        return True
    return urlsplit(origin).netloc == connection.headers.get("host", "")


async def _csrf_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    token = connection.headers.get(CSRF_HEADER)
    if token is not None:
        return token
    content_type = connection.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await Request[Any, Any, Any](
            connection.scope, connection.receive
        ).form()  # cached for the handler
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def console_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    if handler.opt.get("public"):
        return
    state = console_state(connection)
    gateway = console_gateway(connection)
    session = state.signer.read_session(connection.cookies.get(COOKIE_NAME), gateway.clock())
    if session is None or not await still_valid(gateway, state.signer, session):
        raise SignInRequired
    connection.state.console_session = session
    if connection.scope.get("method") in _SAFE_METHODS:
        return
    if not _same_origin(connection) or not state.signer.csrf_ok(session, await _csrf_token(connection)):
        raise CsrfRefused


def _sign_in_required(request: Request[Any, Any, Any], _exc: SignInRequired) -> Response[Any]:
    sign_in = f"{console_state(request).path}/sign-in"
    if request.headers.get("hx-request"):  # htmx: send the whole page to the sign-in form
        return Response(b"", status_code=401, headers={"hx-redirect": sign_in})
    if request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Response(b"", status_code=303, headers={"location": f"{sign_in}?next={_quote(target)}"})
    return render(
        request, "refused.html", status=401, reason="Your console session has ended: sign in again."
    )


def _csrf_refused(request: Request[Any, Any, Any], _exc: CsrfRefused) -> Response[Any]:
    return render(
        request,
        "refused.html",
        status=403,
        reason="This change was refused: it did not come from a console page of this session "
        "(missing or wrong CSRF token). Reload the page and try again.",
    )


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


refusal_handlers: dict[int | type[Exception], Any] = {
    SignInRequired: _sign_in_required,
    CsrfRefused: _csrf_refused,
}
