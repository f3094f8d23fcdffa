"""Overview: the landing page (a placeholder until the overview issue work lands)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from engine.console.render import render

__all__ = ["overview_page"]


@get("/")
async def overview_page(request: Request[Any, Any, Any]) -> Response[str]:
    return render(request, "overview.html")
