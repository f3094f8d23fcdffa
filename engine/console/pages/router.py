"""Router settings: strategy, retries, cooldowns and fallbacks in force and where each comes from;
the console's own values (which win over the config file's and survive its re-import); a LiteLLM
config imported by upload; the routing in SQL exported as a LiteLLM config file.

Every change is audited and reaches the serving path of every replica at once (`routes_changed`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath

from engine.config.catalog import ProviderCatalog
from engine.config.export import export_litellm
from engine.config.importer import ImportReport
from engine.config.litellm_router import SETTING_KEYS, WILDCARD
from engine.config.plan import FALLBACK_KINDS, ConfigError
from engine.config.secrets import SecretBox
from engine.console.audit import record
from engine.console.render import render
from engine.console.router_settings import (
    CONSOLE_SOURCE,
    SETTING_HINTS,
    FieldError,
    fallback_views,
    import_config,
    reset_fallback,
    reset_setting,
    set_fallback,
    set_setting,
    setting_views,
    typed_fallback,
    typed_setting,
)
from engine.console.state import console_gateway, console_session
from engine.routing.table import STRATEGIES

__all__ = [
    "ROUTES",
    "export_config",
    "reset_router_fallback",
    "reset_router_setting",
    "router_page",
    "set_router_fallback",
    "set_router_setting",
    "upload_config",
]

MAX_UPLOAD = 1024 * 1024  # a LiteLLM config of thousands of deployments is far smaller
_FORM_SLACK = 64 * 1024  # the multipart framing and the CSRF field around the file


def _catalog(request: Request[Any, Any, Any]) -> ProviderCatalog:
    registry = console_gateway(request).registry
    assert registry is not None, "the gateway has not started"
    return registry.catalog()


async def _page(
    request: Request[Any, Any, Any],
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    report: ImportReport | None = None,
    import_error: str | None = None,
) -> Response[str]:
    gateway = console_gateway(request)
    async with gateway.sessions() as session:
        settings = await setting_views(session)
        fallbacks = await fallback_views(session)
    return render(
        request,
        "router/page.html",
        status=status,
        settings=settings,
        fallbacks=fallbacks,
        strategies=STRATEGIES,
        hints=SETTING_HINTS,
        kinds=FALLBACK_KINDS,
        aliases=sorted(gateway.table.aliases),
        alias_strategies=sorted(
            (alias.name, alias.routing_strategy)
            for alias in gateway.table.aliases.values()
            if alias.routing_strategy is not None
        ),
        wildcard=WILDCARD,
        console_source=CONSOLE_SOURCE,
        errors=errors or {},
        typed=typed or {},
        report=report,
        import_error=import_error,
        max_upload_kb=MAX_UPLOAD // 1024,
    )


def _back(request: Request[Any, Any, Any]) -> Response[Any]:
    location = f"{console_gateway(request).settings.ui_path}/router/"
    return Response(b"", status_code=303, headers={"location": location})


@get("/router")
async def router_page(request: Request[Any, Any, Any]) -> Response[str]:
    return await _page(request)


def _known_setting(key: str) -> bool:
    return key in SETTING_KEYS


@post("/router/settings/{key:str}", status_code=303)
async def set_router_setting(request: Request[Any, Any, Any], key: FromPath[str]) -> Response[Any]:
    if not _known_setting(key):
        return await _page(request, status=404, errors={"page": "No such router setting."})
    text = str((await request.form()).get("value") or "")[:200]
    try:
        value = typed_setting(key, text)
    except FieldError as error:
        return await _page(request, status=422, errors={key: error.problem}, typed={key: text})
    gateway = console_gateway(request)
    async with gateway.sessions() as session, session.begin():
        before = await set_setting(session, key, value)
        record(
            session,
            console_session(request).actor,
            "router.setting.set",
            f"router_settings:{key}",
            {"setting": key, "console": before},
            {"setting": key, "console": value},
        )
    await gateway.routes_changed()
    return _back(request)


@post("/router/settings/{key:str}/reset", status_code=303)
async def reset_router_setting(request: Request[Any, Any, Any], key: FromPath[str]) -> Response[Any]:
    if not _known_setting(key):
        return await _page(request, status=404, errors={"page": "No such router setting."})
    gateway = console_gateway(request)
    async with gateway.sessions() as session, session.begin():
        before = await reset_setting(session, key)
        if before is not None:
            record(
                session,
                console_session(request).actor,
                "router.setting.reset",
                f"router_settings:{key}",
                {"setting": key, "console": before},
                {"setting": key, "console": None},
            )
    await gateway.routes_changed()
    return _back(request)


def _fallback_fields(form: Any) -> dict[str, str]:
    return {name: str(form.get(name) or "").strip()[:5000] for name in ("alias", "kind", "targets")}


@post("/router/fallbacks", status_code=303)
async def set_router_fallback(request: Request[Any, Any, Any]) -> Response[Any]:
    gateway = console_gateway(request)
    typed = _fallback_fields(await request.form())
    try:
        targets = typed_fallback(typed["alias"], typed["kind"], typed["targets"], gateway.table.aliases)
    except FieldError as error:
        prefixed = {f"fallback_{name}": value for name, value in typed.items()}
        return await _page(
            request, status=422, errors={f"fallback_{error.field}": error.problem}, typed=prefixed
        )
    target = f"fallbacks:{typed['kind']}:{typed['alias']}"
    async with gateway.sessions() as session, session.begin():
        before = await set_fallback(session, typed["alias"], typed["kind"], targets)
        record(
            session,
            console_session(request).actor,
            "router.fallback.set",
            target,
            {"targets": before},
            {"targets": list(targets)},
        )
    await gateway.routes_changed()
    return _back(request)


@post("/router/fallbacks/reset", status_code=303)
async def reset_router_fallback(request: Request[Any, Any, Any]) -> Response[Any]:
    gateway = console_gateway(request)
    typed = _fallback_fields(await request.form())
    async with gateway.sessions() as session, session.begin():
        before = await reset_fallback(session, typed["alias"], typed["kind"])
        if before is not None:
            record(
                session,
                console_session(request).actor,
                "router.fallback.reset",
                f"fallbacks:{typed['kind']}:{typed['alias']}",
                {"targets": before},
                {"targets": None},
            )
    await gateway.routes_changed()
    return _back(request)


async def _upload(request: Request[Any, Any, Any]) -> tuple[str, str]:
    """(file name, text) of the uploaded config; ValueError with what is wrong with it."""
    upload = (await request.form()).get("config")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise ValueError("Choose a LiteLLM config file (YAML or JSON) to upload.")
    data = await upload.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise ValueError(f"The file is larger than {MAX_UPLOAD // 1024} KB; nothing was imported.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("The file is not UTF-8 text; nothing was imported.") from None
    name = upload.filename.replace("\\", "/").rsplit("/", 1)[-1][:200] or "upload.yaml"
    return name, text


def _too_large(request: Request[Any, Any, Any], _exc: Exception) -> Response[str]:
    """A body over the limit, refused while the guard read the form: a page, not the API's JSON."""
    reason = f"The file is larger than {MAX_UPLOAD // 1024} KB; nothing was imported."
    return render(request, "refused.html", status=413, reason=reason)


@post(
    "/router/import",
    status_code=200,
    request_max_body_size=MAX_UPLOAD + _FORM_SLACK,
    exception_handlers={413: _too_large},
)
async def upload_config(request: Request[Any, Any, Any]) -> Response[str]:
    gateway = console_gateway(request)
    try:
        name, text = await _upload(request)
    except ValueError as error:
        return await _page(request, status=400, import_error=str(error))
    secrets = SecretBox.from_settings(gateway.settings)
    try:
        async with gateway.sessions() as session, session.begin():
            report = await import_config(session, text, name, _catalog(request), secrets)
            record(
                session,
                console_session(request).actor,
                "router.import",
                f"config:{name}",
                None,
                dataclasses.asdict(report),
            )
    except ConfigError as error:  # the transaction rolled back: nothing changed
        return await _page(request, status=400, import_error=f"{error} Nothing was imported.")
    await gateway.routes_changed()
    return await _page(request, report=report)


@get("/router/export.yaml")
async def export_config(request: Request[Any, Any, Any]) -> Response[str]:
    async with console_gateway(request).sessions() as session:
        export = await export_litellm(session, _catalog(request))
    return Response(
        export.text,
        media_type="application/yaml; charset=utf-8",
        headers={
            "content-disposition": 'attachment; filename="turnout-litellm-config.yaml"',
            "cache-control": "no-store",
            "x-content-type-options": "nosniff",
        },
    )


ROUTES = [
    router_page,
    set_router_setting,
    reset_router_setting,
    set_router_fallback,
    reset_router_fallback,
    upload_config,
    export_config,
]
