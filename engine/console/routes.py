"""The console's routes, under `settings.ui_path`: every page module lists its handlers in `ROUTES`."""

from __future__ import annotations

from litestar import Router
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from engine.console.guard import console_guard, refusal_handlers
from engine.console.pages import audit, keys, overview, playground, providers, requests, router, sign_in
from engine.console.render import STATIC_DIR
from engine.settings import Settings

__all__ = ["console_routes"]

PAGES: list[ControllerRouterHandler] = [
    *sign_in.ROUTES,
    *overview.ROUTES,
    *providers.ROUTES,
    *keys.ROUTES,
    *requests.ROUTES,
    *router.ROUTES,
    *playground.ROUTES,
    *audit.ROUTES,
]


def console_routes(settings: Settings) -> list[ControllerRouterHandler]:
    """The console's pages and static files; nothing when the console is turned off."""
    if not settings.ui_enabled:
        return []
    pages = Router(
        path=settings.ui_path,
        route_handlers=PAGES,
        guards=[console_guard],
        exception_handlers=refusal_handlers,
        include_in_schema=False,
    )
    static = create_static_files_router(
        path=f"{settings.ui_path}/static", directories=[STATIC_DIR], include_in_schema=False
    )
    return [pages, static]
