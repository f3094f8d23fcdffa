"""Sign-in and sign-out.

A failed sign-in waits `ui_sign_in_delay` seconds, is counted per client address (engine/console/
throttle.py), logged by address and recorded in the audit log; the address is refused for a while
after `ui_max_failed_sign_ins` failures. Nothing in the answer says whether a name exists or a key is
a virtual key: every failure reads the same.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response, get, post

from engine.console.audit import record
from engine.console.credentials import MASTER_ACTOR, check_sign_in, sign_in_possible
from engine.console.render import render
from engine.console.session import COOKIE_NAME
from engine.console.state import console_gateway, console_state

__all__ = ["ROUTES", "sign_in_form", "sign_in_submit", "sign_out"]

log = logging.getLogger("turnout.console")
_FAILED = "Wrong name, key or password."


def _next_page(request: Request[Any, Any, Any], wanted: object) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    home = console_state(request).path
    if isinstance(wanted, str) and wanted.startswith(home + "/") and not wanted.startswith("//"):
        return wanted if "\\" not in wanted else home
    return home


def _form(
    request: Request[Any, Any, Any], *, status: int = 200, error: str | None = None, **extra: Any
) -> Response[str]:
    state = console_state(request)
    gateway = console_gateway(request)
    return render(
        request,
        "sign_in.html",
        status=status,
        error=error,
        sign_in_token=state.signer.sign_in_token(gateway.clock()),
        next=_next_page(request, request.query_params.get("next")),
        possible=sign_in_possible(gateway.settings),
        admin_user=gateway.settings.admin_user,
        **extra,
    )


@get("/sign-in", opt={"public": True})
async def sign_in_form(request: Request[Any, Any, Any]) -> Response[str]:
    return _form(request)


@post("/sign-in", opt={"public": True}, status_code=303)
async def sign_in_submit(request: Request[Any, Any, Any]) -> Response[Any]:
    state = console_state(request)
    gateway = console_gateway(request)
    settings = gateway.settings
    form = await request.form()
    if not state.signer.sign_in_token_ok(form.get("_signin"), gateway.clock()):
        return _form(request, status=400, error="The sign-in form expired; try again.")
    address = request.client.host if request.client else "unknown"
    locked = state.throttle.locked_for(address)
    if locked > 0:
        seconds = int(locked) + 1
        return _form(
            request,
            status=429,
            error=f"Too many failed sign-ins from your address; try again in {seconds} s.",
        )
    username = str(form.get("username") or "").strip()
    secret = str(form.get("secret") or "")
    signed_in = await check_sign_in(gateway, username, secret)
    if signed_in is None:
        state.throttle.failed(address)
        log.warning("console: failed sign-in from %s", address)
        async with gateway.sessions() as session, session.begin():
            record(session, f"address:{address}", "sign_in_failed", username[:100] or MASTER_ACTOR)
        await state.pause(settings.ui_sign_in_delay)
        return _form(request, status=401, error=_FAILED)
    state.throttle.succeeded(address)
    console = state.signer.new_session(
        signed_in.actor, signed_in.credential, gateway.clock(), settings.ui_session_ttl
    )
    async with gateway.sessions() as session, session.begin():
        record(session, signed_in.actor, "sign_in", f"address:{address}")
    response: Response[Any] = Response(
        b"", status_code=303, headers={"location": _next_page(request, form.get("next"))}
    )
    response.set_cookie(
        COOKIE_NAME,
        state.signer.session_cookie(console),
        max_age=int(settings.ui_session_ttl),
        path=state.path,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@post("/sign-out", status_code=303)
async def sign_out(request: Request[Any, Any, Any]) -> Response[Any]:
    state = console_state(request)
    response: Response[Any] = Response(b"", status_code=303, headers={"location": f"{state.path}/sign-in"})
    response.delete_cookie(COOKIE_NAME, path=state.path)
    if request.headers.get("hx-request"):
        response.headers["hx-redirect"] = f"{state.path}/sign-in"
    return response


ROUTES = [sign_in_form, sign_in_submit, sign_out]
