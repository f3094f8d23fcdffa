"""Rendering console pages: one Jinja environment (autoescaping on, so every value a client or an
upstream chose renders as text), and the headers every console answer carries.

The Content-Security-Policy allows scripts from the console's own static files only: no inline
script runs, so an injected `<script>` could not run even if escaping failed somewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Request, Response

from engine.console.state import console_state

__all__ = ["SECURITY_HEADERS", "STATIC_DIR", "render", "templates"]

_HERE = Path(__file__).resolve().parent
STATIC_DIR = _HERE / "static"

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}

templates = Environment(
    loader=FileSystemLoader(_HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,  # a misspelt variable fails the page's test instead of rendering empty
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(
    request: Request[Any, Any, Any],
    template: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response[str]:
    """`template` rendered with `context` plus what every page uses (paths, session, CSRF token)."""
    state = console_state(request)
    session = getattr(request.state, "console_session", None)
    page = templates.get_template(template).render(
        ui=state.path,
        session=session,
        csrf=state.signer.csrf_token(session) if session is not None else "",
        current=request.url.path,
        **context,
    )
    return Response(
        page,
        status_code=status,
        media_type="text/html; charset=utf-8",
        headers={**SECURITY_HEADERS, **(headers or {})},
    )
