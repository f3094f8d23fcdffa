"""The admin API for virtual keys, in LiteLLM's routes and shapes; the master key only.

    POST /key/generate   {models, max_budget, budget_duration, rpm_limit, tpm_limit, max_parallel_requests,
                          duration, key_alias, metadata, privacy}  -> the key (shown this once) and its info
    GET  /key/info?key=  -> {"info": ...}
    POST /key/update     {"key": ..., fields...} -> the info after the change
    POST /key/delete     {"keys": [...]} -> revokes them all, or none when one is unknown
    GET  /key/list       -> the active keys

Info never holds the key or its hash. Each change reloads this process's key ring before answering.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromQuery

from engine.api.auth import require_master
from engine.api.state import gateway_of
from engine.errors import InvalidRequest
from engine.jsonbody import decode_json_body
from engine.keys import KeyService, key_changes, key_info
from engine.pipeline.translate import encode_json

__all__ = ["delete_keys", "generate_key", "key_info_route", "list_keys", "update_key"]

log = logging.getLogger("turnout.keys")


async def _body(request: Request[Any, Any, Any]) -> dict[str, Any]:
    raw = await request.body()
    body = decode_json_body(raw) if raw.strip() else {}
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


def _json(body: dict[str, Any]) -> Response[bytes]:
    return Response(encode_json(body), media_type="application/json")


def _service(request: Request[Any, Any, Any]) -> KeyService:
    return gateway_of(request).key_service


@post("/key/generate", guards=[require_master], status_code=200)
async def generate_key(request: Request[Any, Any, Any]) -> Response[bytes]:
    changes = key_changes(await _body(request))
    key, row = await _service(request).create(changes)
    await gateway_of(request).keys_changed()
    log.info("key %s... created (%s)", row.key_prefix, row.key_alias or "no alias")
    return _json({"key": key, **key_info(row)})


@get("/key/info", guards=[require_master])
async def key_info_route(
    request: Request[Any, Any, Any], key: FromQuery[str | None] = None
) -> Response[bytes]:
    if not key:
        raise InvalidRequest("give the key as ?key=sk-...", param="key")
    return _json({"info": key_info(await _service(request).info(key))})


@post("/key/update", guards=[require_master], status_code=200)
async def update_key(request: Request[Any, Any, Any]) -> Response[bytes]:
    body = await _body(request)
    if "key" not in body:
        raise InvalidRequest("`key` is required: the key to change", param="key")
    changes = key_changes(body, ignore=("key",))
    row = await _service(request).update(body["key"], changes)
    await gateway_of(request).keys_changed()
    log.info("key %s... updated: %s", row.key_prefix, ", ".join(sorted(changes.values)) or "nothing")
    return _json(key_info(row))


@post("/key/delete", guards=[require_master], status_code=200)
async def delete_keys(request: Request[Any, Any, Any]) -> Response[bytes]:
    keys = (await _body(request)).get("keys")
    if not isinstance(keys, list) or not keys:
        raise InvalidRequest("`keys` must be a non-empty list of keys to revoke", param="keys")
    rows = await _service(request).revoke(keys)
    await gateway_of(request).keys_changed()
    names = [f"{row.key_prefix}..." for row in rows]
    log.info("keys revoked: %s", ", ".join(names))
    return _json({"deleted_keys": names})


@get("/key/list", guards=[require_master])
async def list_keys(request: Request[Any, Any, Any]) -> Response[bytes]:
    rows = await _service(request).active()
    return _json({"keys": [key_info(row) for row in rows], "total_count": len(rows)})
