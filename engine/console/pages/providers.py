"""Providers and models: the provider catalogue (from the mapping files), the deployments by alias,
the deployment form with Test connection and Fetch models, and Refresh models for an endpoint.

Only console rows (source "console") are edited or deleted here; rows from a file are re-imported
from it at every start and `turnout import` (engine/console/deployment_store.py says why).
Every change is audited and reaches the serving path at once (`routes_changed`).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from engine.config.litellm import PRIVACY_TIERS
from engine.config.plan import ConfigError
from engine.config.secrets import SecretBox, SecretError, resolve_env_ref
from engine.console.audit import record
from engine.console.connection_test import fetch_models, run_connection_test
from engine.console.deployment_form import (
    FIELDS,
    FLAGS,
    PRICES,
    DeploymentInput,
    parse_deployment_form,
    stored_form,
)
from engine.console.deployment_store import (
    CONSOLE_SOURCE,
    delete_deployment,
    deployment_rows,
    find_deployment,
    key_label,
    provider_rows,
    save_deployment,
    snapshot,
    stored_key,
)
from engine.console.provider_catalogue import MODE_OPERATIONS, catalogue
from engine.console.render import render
from engine.console.state import console_gateway, console_session, console_state
from engine.gateway import Gateway
from engine.mapping.loader import MappingRegistry
from engine.redact import GENERIC
from engine.store.models import DeploymentRow, ProviderRow

__all__ = [
    "ROUTES",
    "create_deployment_submit",
    "delete_deployment_submit",
    "edit_deployment_form",
    "fetch_models_fragment",
    "map_model_submit",
    "new_deployment_form",
    "providers_page",
    "refresh_models_fragment",
    "test_connection_fragment",
    "update_deployment_submit",
]

_FILE_ROW = (
    "This deployment came from a file ({source}): it is re-imported from that file at every start and "
    "`turnout import`, so the console does not change it. Edit the file instead."
)


def _registry(gateway: Gateway) -> MappingRegistry:
    assert gateway.registry is not None, "the gateway has not started"
    return gateway.registry


def _box(gateway: Gateway) -> SecretBox:
    return SecretBox.from_settings(gateway.settings)


async def _form_values(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    return {name: value for name, value in form.items() if isinstance(value, str)}


async def _deployments_context(gateway: Gateway) -> dict[str, Any]:
    box = _box(gateway)
    async with gateway.sessions() as session:
        groups = await deployment_rows(session)
        endpoints = await provider_rows(session)
    registry = _registry(gateway)
    listing = [
        endpoint
        for endpoint in endpoints
        if (mapping := registry.get(endpoint.mapping)) is not None and mapping.discovery is not None
    ]
    keys = {row.provider.id: key_label(row.provider, box) for group in groups for row in group.deployments}
    return {
        "groups": groups,
        "keys": keys,
        "endpoints": listing,
        "console_source": CONSOLE_SOURCE,
        "shown_url": GENERIC.text,  # a base URL may carry a credential (user:password@, ?key=)
    }


@get("/providers")
async def providers_page(request: Request[Any, Any, Any]) -> Response[str]:
    gateway = console_gateway(request)
    return render(
        request,
        "providers/index.html",
        providers=catalogue(_registry(gateway)),
        **await _deployments_context(gateway),
    )


def _form_page(
    request: Request[Any, Any, Any],
    values: dict[str, str],
    *,
    errors: dict[str, str] | None = None,
    row: DeploymentRow | None = None,
    stored: str | None = None,
    status: int = 200,
) -> Response[str]:
    gateway = console_gateway(request)
    return render(
        request,
        "providers/form.html",
        status=status,
        values={name: values.get(name, "") for name in FIELDS},
        errors=errors or {},
        row=row,
        stored_key=stored,
        providers=catalogue(_registry(gateway)),
        modes=list(MODE_OPERATIONS),
        tiers=PRIVACY_TIERS,
        flags=FLAGS,
        prices=PRICES,
    )


def _refused(request: Request[Any, Any, Any], reason: str, status: int) -> Response[str]:
    return render(request, "refused.html", status=status, reason=reason)


@get("/providers/deployments/new")
async def new_deployment_form(request: Request[Any, Any, Any]) -> Response[str]:
    provider = request.query_params.get("provider", "")
    mapping = _registry(console_gateway(request)).get(provider)
    values = {"provider": provider if mapping else "", "mode": "chat", "priority": "0", "weight": "1"}
    return _form_page(request, values)


async def _audited_save(
    request: Request[Any, Any, Any], data: DeploymentInput, row_id: int | None
) -> tuple[DeploymentRow | None, dict[str, str]]:
    """Save the console deployment (new when `row_id` is None), audited; errors by field on refusal."""
    gateway = console_gateway(request)
    box = _box(gateway)
    try:
        async with gateway.sessions() as session, session.begin():
            row = await find_deployment(session, row_id) if row_id is not None else None
            before = snapshot(row, stored_key(row.provider, box)) if row is not None else None
            saved, key = await save_deployment(session, data, _registry(gateway).catalog(), box, row)
            record(
                session,
                console_session(request).actor,
                "deployment.update" if row is not None else "deployment.create",
                f"{saved.alias.name} -> {saved.provider.mapping}/{saved.upstream_model}",
                before=before,
                after=snapshot(saved, key),
            )
    except ConfigError as exc:  # the alias cannot take it; nothing was written
        return None, {"alias": str(exc)}
    except SecretError as exc:  # the stored key (kept by an empty field) cannot be read any more
        return None, {"api_key": f"{exc}; type the key again"}
    await gateway.routes_changed()
    return saved, {}


@post("/providers/deployments")
async def create_deployment_submit(request: Request[Any, Any, Any]) -> Response[Any]:
    values = await _form_values(request)
    data, errors = parse_deployment_form(values, _registry(console_gateway(request)))
    if not errors:
        _, errors = await _audited_save(request, data, None)
    if errors:
        return _form_page(request, values, errors=errors, status=422)
    return _redirect(request)


def _redirect(request: Request[Any, Any, Any]) -> Response[Any]:
    """Back to the list after a change (POST, redirect, GET: a reload does not repeat it)."""
    return Response(b"", status_code=303, headers={"location": f"{console_state(request).path}/providers/"})


async def _console_row(
    request: Request[Any, Any, Any], deployment_id: int
) -> tuple[DeploymentRow | None, str | None, Response[str] | None]:
    """The console deployment with its key's label, or the page refusing it (missing, or a file's)."""
    gateway = console_gateway(request)
    async with gateway.sessions() as session:
        row = await find_deployment(session, deployment_id)
    if row is None:
        return None, None, _refused(request, "No such deployment: it may have been deleted.", 404)
    if row.source != CONSOLE_SOURCE:
        return None, None, _refused(request, _FILE_ROW.format(source=row.source), 403)
    return row, key_label(row.provider, _box(gateway)), None


@get("/providers/deployments/{deployment_id:int}")
async def edit_deployment_form(
    request: Request[Any, Any, Any], deployment_id: FromPath[int]
) -> Response[str]:
    row, stored, refusal = await _console_row(request, deployment_id)
    if refusal is not None:
        return refusal
    assert row is not None
    return _form_page(request, stored_form(row), row=row, stored=stored)


@post("/providers/deployments/{deployment_id:int}")
async def update_deployment_submit(
    request: Request[Any, Any, Any], deployment_id: FromPath[int]
) -> Response[Any]:
    row, stored, refusal = await _console_row(request, deployment_id)
    if refusal is not None:
        return refusal
    values = await _form_values(request)
    data, errors = parse_deployment_form(values, _registry(console_gateway(request)))
    if not errors:
        _, errors = await _audited_save(request, data, deployment_id)
    if errors:
        return _form_page(request, values, errors=errors, row=row, stored=stored, status=422)
    return _redirect(request)


@post("/providers/deployments/{deployment_id:int}/delete")
async def delete_deployment_submit(
    request: Request[Any, Any, Any], deployment_id: FromPath[int]
) -> Response[Any]:
    row, _, refusal = await _console_row(request, deployment_id)
    if refusal is not None:
        return refusal
    gateway = console_gateway(request)
    box = _box(gateway)
    async with gateway.sessions() as session, session.begin():
        row = await find_deployment(session, deployment_id)
        if row is not None and row.source == CONSOLE_SOURCE:
            target = f"{row.alias.name} -> {row.provider.mapping}/{row.upstream_model}"
            before = snapshot(row, stored_key(row.provider, box))
            await delete_deployment(session, row)
            record(session, console_session(request).actor, "deployment.delete", target, before=before)
    await gateway.routes_changed()
    return _redirect(request)


async def _key_for(gateway: Gateway, data: DeploymentInput, values: dict[str, str]) -> str | None:
    """The key Test connection and Fetch models use: the one typed, else the edited row's stored one."""
    if data.api_key is not None or data.clear_key:
        return resolve_env_ref(data.api_key)
    row_id = values.get("deployment_id", "")
    if not row_id.isdigit() or len(row_id) > 18:
        return None
    async with gateway.sessions() as session:
        row = await find_deployment(session, int(row_id))
    if row is None or row.source != CONSOLE_SOURCE:
        return None
    return resolve_env_ref(stored_key(row.provider, _box(gateway)))


@post("/providers/test")
async def test_connection_fragment(request: Request[Any, Any, Any]) -> Response[str]:
    gateway = console_gateway(request)
    values = await _form_values(request)
    data, errors = parse_deployment_form(values, _registry(gateway))
    errors.pop("alias", None)  # the probe asks under any name
    mapping = _registry(gateway).get(data.provider)
    if errors or mapping is None:
        return render(request, "providers/probe.html", errors=errors, results=[])
    if data.mode not in ("chat", "completion"):
        errors = {"mode": "Test connection runs chat requests; this deployment serves " + data.mode}
        return render(request, "providers/probe.html", errors=errors, results=[])
    try:
        key = await _key_for(gateway, data, values)
    except SecretError as exc:
        return render(request, "providers/probe.html", errors={"api_key": str(exc)}, results=[])
    results = await run_connection_test(gateway, data.deployment(mapping, key))
    return render(request, "providers/probe.html", errors={}, results=results)


@post("/providers/models")
async def fetch_models_fragment(request: Request[Any, Any, Any]) -> Response[str]:
    gateway = console_gateway(request)
    values = await _form_values(request)
    data, errors = parse_deployment_form(values, _registry(gateway))
    wanted = {name: errors[name] for name in ("provider", "api_base", "api_key") if name in errors}
    mapping = _registry(gateway).get(data.provider)
    models: list[str] = []
    problem = "; ".join(f"{name}: {text}" for name, text in wanted.items()) or None
    if mapping is not None and problem is None:
        try:
            models, problem = await fetch_models(
                gateway, data.deployment(mapping, await _key_for(gateway, data, values))
            )
        except SecretError as exc:
            problem = str(exc)
    return render(request, "providers/models.html", models=models, problem=problem)


async def _endpoint_values(gateway: Gateway, values: dict[str, str]) -> dict[str, str]:
    """The endpoint the Refresh models form names, as deployment form fields: a stored endpoint (with
    its stored key, which never leaves the server), or the one typed."""
    endpoint_id = values.get("endpoint", "")
    if not endpoint_id.isdigit() or len(endpoint_id) > 18:
        return {name: values.get(name, "") for name in ("provider", "api_base", "api_key")}
    async with gateway.sessions() as session:
        row = await session.get(ProviderRow, int(endpoint_id))
    if row is None:
        return {"provider": ""}
    return {
        "provider": row.mapping,
        "api_base": resolve_env_ref(row.api_base) or "",
        "api_key": stored_key(row, _box(gateway)) or "",
        "privacy_tier": row.privacy_tier or "",
    }


@post("/providers/refresh")
async def refresh_models_fragment(request: Request[Any, Any, Any]) -> Response[str]:
    gateway = console_gateway(request)
    values = await _form_values(request)
    try:
        endpoint = await _endpoint_values(gateway, values)
    except SecretError as exc:
        return render(request, "providers/refresh.html", models=[], problem=str(exc))
    data, errors = parse_deployment_form(endpoint, _registry(gateway))
    problem = "; ".join(
        f"{name}: {errors[name]}" for name in ("provider", "api_base", "api_key") if name in errors
    )
    mapping = _registry(gateway).get(data.provider)
    models: list[str] = []
    if mapping is not None and not problem:
        models, found_problem = await fetch_models(
            gateway, data.deployment(mapping, resolve_env_ref(data.api_key))
        )
        problem = found_problem or ""
    return render(request, "providers/refresh.html", models=models, problem=problem or None)


@post("/providers/map")
async def map_model_submit(request: Request[Any, Any, Any]) -> Response[str]:
    """Map one listed model to an alias in one step: a console deployment with the endpoint's settings."""
    gateway = console_gateway(request)
    values = await _form_values(request)
    model, alias = values.get("upstream_model", ""), values.get("alias", "")
    try:
        endpoint = await _endpoint_values(gateway, values)
    except SecretError as exc:
        return render(request, "providers/map_row.html", model=model, alias=alias, error=str(exc), done=False)
    typed = {**endpoint, "upstream_model": model, "alias": alias, "mode": values.get("mode", "chat")}
    data, errors = parse_deployment_form(typed, _registry(gateway))
    if not errors:
        _, errors = await _audited_save(request, data, None)
    if errors:
        error = "; ".join(f"{name}: {text}" for name, text in errors.items())
        return render(request, "providers/map_row.html", model=model, alias=alias, error=error, done=False)
    return render(
        request,
        "providers/map_row.html",
        model=model,
        alias=data.alias,
        error=None,
        done=True,
        **await _deployments_context(gateway),
    )


ROUTES = [
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
]
