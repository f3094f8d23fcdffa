"""The console's routes, under `settings.ui_path`, each page module contributing its handlers."""

from __future__ import annotations

from litestar import Router
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from engine.console.guard import console_guard, refusal_handlers
from engine.console.pages.audit import audit_page
from engine.console.pages.keys import create_key, edit_key_form, keys_page, revoke_key, update_key
from engine.console.pages.overview import overview_page
from engine.console.pages.playground import playground_chat, playground_logged, playground_page
from engine.console.pages.providers import (
    create_deployment_submit,
    delete_deployment_submit,
    edit_deployment_form,
    fetch_models_fragment,
    map_model_submit,
    new_deployment_form,
    providers_page,
    refresh_models_fragment,
    test_connection_fragment,
    update_deployment_submit,
)
from engine.console.pages.router import (
    export_config,
    reset_router_fallback,
    reset_router_setting,
    router_page,
    set_router_fallback,
    set_router_setting,
    upload_config,
)
from engine.console.pages.sign_in import sign_in_form, sign_in_submit, sign_out
from engine.console.render import STATIC_DIR
from engine.settings import Settings

__all__ = ["console_routes"]

PAGES: list[ControllerRouterHandler] = [
    sign_in_form,
    sign_in_submit,
    sign_out,
    overview_page,
    audit_page,
    playground_page,
    playground_chat,
    playground_logged,
    providers_page,
    new_deployment_form,
    create_deployment_submit,
    edit_deployment_form,
    update_deployment_submit,
    delete_deployment_submit,
    test_connection_fragment,
    fetch_models_fragment,
    refresh_models_fragment,
    map_model_submit,
    keys_page,
    create_key,
    edit_key_form,
    update_key,
    revoke_key,
    router_page,
    set_router_setting,
    reset_router_setting,
    set_router_fallback,
    reset_router_fallback,
    upload_config,
    export_config,
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
