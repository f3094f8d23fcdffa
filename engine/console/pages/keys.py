"""Keys: the virtual keys with their spend against budget; create (the secret shown this once), edit,
revoke. The same SQL and checks as the admin API (engine/keys/service.py); every change is audited
and reaches the key ring of every replica at once (`keys_changed`).

Keys are named by row id here: the console never holds a key, only its prefix.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from sqlalchemy import select

from engine.console.audit import record
from engine.console.key_forms import KEY_FIELDS, KeyForm, key_view, read_key_form
from engine.console.render import render
from engine.console.state import console_gateway, console_session
from engine.errors import InvalidRequest, NotFound
from engine.keys.ring import aware
from engine.keys.service import KEY_PRIVACY, add_key, change_key, key_by_id
from engine.store.api_key import ApiKeyRow
from engine.store.base import utcnow

__all__ = ["ROUTES", "create_key", "edit_key_form", "keys_page", "revoke_key", "update_key"]


def _now(request: Request[Any, Any, Any]) -> datetime:
    return datetime.fromtimestamp(console_gateway(request).clock(), UTC)


def _aliases(request: Request[Any, Any, Any], *chosen: str) -> list[str]:
    """The aliases the gateway serves, and any a key names that it no longer serves."""
    return sorted({*console_gateway(request).table.aliases, *chosen})


def _list_entry(row: ApiKeyRow, now: datetime) -> dict[str, Any]:
    expires = aware(row.expires_at)
    spend = float(row.spend)
    budget = None if row.max_budget is None else float(row.max_budget)
    return {
        "id": row.id,
        **key_view(row),
        "spend": spend,
        "budget": budget,
        "share": None if not budget else min(spend / budget, 1.0),
        "reset_at": aware(row.budget_reset_at),
        "expires_at": expires,
        "expired": expires is not None and expires <= now,
        "created_at": aware(row.created_at),
    }


async def _page(
    request: Request[Any, Any, Any],
    *,
    form: KeyForm | None = None,
    status: int = 200,
    created: dict[str, Any] | None = None,
) -> Response[str]:
    form = form or KeyForm(typed=dict.fromkeys(KEY_FIELDS, ""), models=[])
    async with console_gateway(request).sessions() as session:
        rows = list(
            await session.scalars(
                select(ApiKeyRow).where(ApiKeyRow.revoked_at.is_(None)).order_by(ApiKeyRow.id.desc())
            )
        )
    now = _now(request)
    return render(
        request,
        "keys/list.html",
        status=status,
        keys=[_list_entry(row, now) for row in rows],
        form=form,
        aliases=_aliases(request, *form.models),
        privacy_levels=KEY_PRIVACY,
        created=created,
    )


@get("/keys")
async def keys_page(request: Request[Any, Any, Any]) -> Response[str]:
    return await _page(request)


async def _read(request: Request[Any, Any, Any], row: ApiKeyRow | None = None) -> KeyForm:
    form = await request.form()
    models = [str(name) for name in form.getall("models", [])]
    return read_key_form(form, models, row=row)


@post("/keys", status_code=200)
async def create_key(request: Request[Any, Any, Any]) -> Response[str]:
    form = await _read(request)
    if form.errors:
        return await _page(request, form=form, status=422)
    gateway = console_gateway(request)
    try:
        async with gateway.sessions() as session, session.begin():
            secret, row = await add_key(session, form.changes)
            record(
                session, console_session(request).actor, "key.create", f"key:{row.id}", None, key_view(row)
            )
    except InvalidRequest as error:  # an allowed model no alias serves
        form.errors[error.param or "key_alias"] = error.message
        return await _page(request, form=form, status=422)
    await gateway.keys_changed()
    created = {"secret": secret, **key_view(row)}
    return await _page(request, status=201, created=created)


async def _edit(request: Request[Any, Any, Any], row: ApiKeyRow, form: KeyForm, status: int) -> Response[str]:
    return render(
        request,
        "keys/edit.html",
        status=status,
        key={"id": row.id, **key_view(row)},
        form=form,
        aliases=_aliases(request, *form.models),
        privacy_levels=KEY_PRIVACY,
    )


def _typed_from(row: ApiKeyRow) -> KeyForm:
    view = key_view(row)
    typed = {name: "" if view.get(name) is None else str(view[name]) for name in KEY_FIELDS}
    typed["duration"] = ""  # the form shows the current expiry beside an empty "extend" field
    return KeyForm(typed=typed, models=list(row.models))


async def _active_key(request: Request[Any, Any, Any], key_id: FromPath[int]) -> ApiKeyRow | None:
    async with console_gateway(request).sessions() as session:
        try:
            row = await key_by_id(session, key_id)
        except NotFound:
            return None
    return row if row.revoked_at is None else None


def _gone(request: Request[Any, Any, Any]) -> Response[str]:
    return render(request, "refused.html", status=404, reason="No such key, or it has been revoked.")


@get("/keys/{key_id:int}")
async def edit_key_form(request: Request[Any, Any, Any], key_id: FromPath[int]) -> Response[str]:
    row = await _active_key(request, key_id)
    if row is None:
        return _gone(request)
    return await _edit(request, row, _typed_from(row), 200)


def _back_to_list(request: Request[Any, Any, Any]) -> Response[Any]:
    location = f"{console_gateway(request).settings.ui_path}/keys/"
    return Response(b"", status_code=303, headers={"location": location})


@post("/keys/{key_id:int}", status_code=303)
async def update_key(request: Request[Any, Any, Any], key_id: FromPath[int]) -> Response[Any]:
    gateway = console_gateway(request)
    async with gateway.sessions() as session, session.begin():
        try:
            row = await key_by_id(session, key_id)
        except NotFound:
            return _gone(request)
        if row.revoked_at is not None:
            return _gone(request)
        form = await _read(request, row)
        if form.errors:
            return await _edit(request, row, form, 422)
        before = key_view(row)
        try:
            await change_key(session, row, form.changes)
        except InvalidRequest as error:  # refused before anything was set: the commit writes nothing
            form.errors[error.param or "key_alias"] = error.message
            return await _edit(request, row, form, 422)
        record(session, console_session(request).actor, "key.update", f"key:{row.id}", before, key_view(row))
    await gateway.keys_changed()
    return _back_to_list(request)


@post("/keys/{key_id:int}/revoke", status_code=303)
async def revoke_key(request: Request[Any, Any, Any], key_id: FromPath[int]) -> Response[Any]:
    gateway = console_gateway(request)
    async with gateway.sessions() as session, session.begin():
        try:
            row = await key_by_id(session, key_id)
        except NotFound:
            return _gone(request)
        if row.revoked_at is None:
            before = key_view(row)
            row.revoked_at = utcnow()
            record(
                session, console_session(request).actor, "key.revoke", f"key:{row.id}", before, key_view(row)
            )
    await gateway.keys_changed()
    return _back_to_list(request)


ROUTES = [keys_page, create_key, edit_key_form, update_key, revoke_key]
