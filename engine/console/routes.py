"""The console's routes, under `settings.ui_path`, each page module contributing its handlers."""

from __future__ import annotations

from litestar import Router
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from engine.console.guard import console_guard, refusal_handlers
from engine.console.pages.audit import audit_page
from engine.console.pages.overview import overview_deployments, overview_page
from engine.console.pages.requests import request_detail, request_log_page
from engine.console.pages.sign_in import sign_in_form, sign_in_submit, sign_out
from engine.console.render import STATIC_DIR
from engine.settings import Settings

__all__ = ["console_routes"]

PAGES: list[ControllerRouterHandler] = [
    sign_in_form,
    sign_in_submit,
    sign_out,
    overview_page,
    overview_deployments,
    request_log_page,
    request_detail,
    audit_page,
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
