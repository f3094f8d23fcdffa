"""Inbound dialects: mappings/dialects/<name>.yaml, the APIs clients speak besides the canonical one.

A dialect translates a client's request into a canonical request of one operation, and the canonical
answer, stream chunks and errors back into what that client expects. With N dialects and M providers
this costs N + M mappings: a dialect never knows which backend answers. Its `schema` (and each local
route's) says what shape of body its mapping can take; engine.mapping.schema compiles it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine.canonical import OPERATIONS
from engine.mapping.compiler import CompiledSection, MappingLoadError
from engine.mapping.folders import mapping_files
from engine.mapping.schema import BodySchema, compile_schemas
from engine.mapping.tree import (
    check_keys,
    compile_key,
    compile_optional,
    compiling_once,
    fail,
    load_mapping_file,
    using_fragments,
)
from engine.mapping.yaml_lines import LineDict

__all__ = [
    "DialectMapping",
    "DialectStore",
    "DialectStream",
    "LocalRoute",
    "check_dialects",
    "load_dialects",
]

_TOP = {
    "name", "description", "paths", "operation", "request", "response", "stream", "error", "error_headers",
    "local_routes", "store", "schema", "fragments",
}  # fmt: skip
_STREAM = {"start", "event", "update", "end", "error"}
_STORE = {"save", "previous", "id", "stream_id", "missing"}

REQUEST_VARS = ("request", "headers")
RESPONSE_VARS = ("response", "request")
START_VARS = ("request",)
CHUNK_VARS = ("chunk", "state", "request")
END_VARS = ("state", "request")
STREAM_ERROR_VARS = ("error", "state", "request")
ERROR_VARS = ("error", "status")
STORE_ID_VARS = ("response", "request")
STREAM_ID_VARS = ("state", "request")
MISSING_VARS = ("id", "request")


@dataclass(frozen=True, slots=True)
class DialectStream:
    """Canonical chunks -> the client's events. Each event is {event?, data}: an SSE event."""

    start: CompiledSection | None  # (request) -> initial state
    step: CompiledSection  # (chunk, state, request) -> {events, state}
    end: CompiledSection | None  # (state, request) -> events after the last chunk
    error: CompiledSection | None  # (error, state, request) -> events that end a failed stream


@dataclass(frozen=True, slots=True)
class LocalRoute:
    """A route answered by the gateway itself from the request alone (e.g. a token count)."""

    name: str
    paths: tuple[str, ...]
    response: CompiledSection  # (request, headers) -> body
    schema: BodySchema | None = None  # the request body's shape, checked before `response` runs


@dataclass(frozen=True, slots=True)
class DialectStore:
    """Conversations kept by the gateway, so a client continues one by id instead of resending it."""

    save: CompiledSection  # (request, headers) -> keep this exchange?
    previous: CompiledSection  # (request, headers) -> the id of a stored exchange to continue, or absent
    id: CompiledSection  # (response = the dialect's answer body, request) -> the id to keep it under
    stream_id: CompiledSection | None  # (state = the final stream state, request) -> the same, for streams
    missing: CompiledSection | None  # (id, request) -> the error for an unknown id: {message, status, ...}


@dataclass(frozen=True, slots=True)
class DialectMapping:
    name: str
    file: str
    description: str
    paths: tuple[str, ...]
    operation: str
    request: CompiledSection  # (request, headers) -> canonical request
    response: CompiledSection  # (response, request) -> the client's body
    stream: DialectStream | None
    error: CompiledSection  # (error, status) -> the client's error body
    error_headers: CompiledSection | None = None  # (error, status) -> headers of an error answer
    local_routes: tuple[LocalRoute, ...] = ()
    store: DialectStore | None = None
    schema: BodySchema | None = None  # the request body's shape, checked before `request` runs


def load_dialects(folders: Path | Sequence[Path]) -> dict[str, DialectMapping]:
    """Every `<folder>/dialects/*.yaml`, compiled (a later folder's file replaces an earlier one's of the
    same name). Raises MappingLoadError naming file:line."""
    with compiling_once():
        dialects = [
            _build(stem, load_mapping_file(path)) for stem, path in mapping_files(folders, "dialects").items()
        ]
    return {dialect.name: dialect for dialect in dialects}


def check_dialects(
    folders: Path | Sequence[Path], built: Callable[[DialectMapping, LineDict], None] | None = None
) -> list[str]:
    """Every problem in `<folder>/dialects/*.yaml`, one per file (empty when all is well). `built` is
    handed each dialect that loads, with its tree, for the checker (engine.mapping.checks)."""
    problems = []
    for path in mapping_files(folders, "dialects").values():
        try:
            tree = load_mapping_file(path)
            dialect = _build(path.stem, tree, lint=True)
        except MappingLoadError as exc:
            problems.append(str(exc))
        else:
            if built is not None:
                built(dialect, tree)
    return problems


def _paths(tree: LineDict, key: str) -> tuple[str, ...]:
    paths = tree.get(key)
    if (
        not isinstance(paths, list)
        or not paths
        or not all(isinstance(p, str) and p.startswith("/") for p in paths)
    ):
        raise fail(tree, key, f"`{key}` must be a list of URL paths starting with /")
    return tuple(str(p) for p in paths)


def _build(stem: str, tree: LineDict, *, lint: bool = False) -> DialectMapping:
    with using_fragments(tree, refuse_unused=lint):  # lint: for `turnout mappings check`
        return _dialect_of(stem, tree)


def _dialect_of(stem: str, tree: LineDict) -> DialectMapping:
    check_keys(tree, _TOP, "a dialect mapping")
    for required in ("paths", "operation", "request", "response", "error"):
        if required not in tree:
            raise fail(tree, None, f"a dialect mapping needs `{required}`")
    operation = str(tree["operation"])
    if operation not in OPERATIONS:
        raise fail(tree, "operation", f"unknown operation {operation!r}")
    if "store" in tree and operation != "chat":
        raise fail(tree, "store", "`store` keeps chat conversations: it needs `operation: chat`")
    routes = _build_local_routes(tree["local_routes"], tree) if "local_routes" in tree else ()
    schemas = _build_schemas(tree, routes)
    return DialectMapping(
        name=str(tree.get("name", stem)),
        file=str(getattr(tree, "file", stem)),
        description=str(tree.get("description", "")),
        paths=_paths(tree, "paths"),
        operation=operation,
        request=compile_key(tree, "request", REQUEST_VARS),
        response=compile_key(tree, "response", RESPONSE_VARS),
        stream=_build_stream(tree["stream"], tree) if "stream" in tree else None,
        error=compile_key(tree, "error", ERROR_VARS),
        error_headers=compile_optional(tree, "error_headers", ERROR_VARS),
        local_routes=tuple(replace(route, schema=schemas.get(route.name)) for route in routes),
        store=_build_store(tree["store"], tree) if "store" in tree else None,
        schema=schemas.get(""),
    )


def _build_schemas(tree: LineDict, routes: tuple[LocalRoute, ...]) -> dict[str, BodySchema]:
    """The dialect's own schema under "", each local route's under its name (they share `$defs`)."""
    local = tree.get("local_routes") or {}
    others = {route.name: (local[route.name].get("schema"), local[route.name]) for route in routes}
    others = {name: spec for name, spec in others.items() if spec[0] is not None}
    if "schema" not in tree:
        if others:
            raise fail(tree, "local_routes", "a local route's `schema` needs the dialect's own `schema`")
        return {}
    return compile_schemas(tree["schema"], tree, others)


def _build_stream(spec: Any, parent: LineDict) -> DialectStream:
    if not isinstance(spec, LineDict) or "event" not in spec:
        raise fail(parent, "stream", "`stream` must be a mapping with at least `event`")
    check_keys(spec, _STREAM, "a dialect stream")
    step = LineDict({"events": spec["event"], "state": spec.get("update", {})})
    step.line, step.key_lines = (
        spec.line,
        {"events": spec.key_lines["event"], "state": spec.key_lines.get("update", spec.line)},
    )
    step.file = spec.file  # type: ignore[attr-defined]
    holder = LineDict({"step": step})
    holder.line, holder.key_lines, holder.file = spec.line, {"step": spec.key_lines["event"]}, spec.file  # type: ignore[attr-defined]
    return DialectStream(
        start=compile_optional(spec, "start", START_VARS),
        step=compile_key(holder, "step", CHUNK_VARS),
        end=compile_optional(spec, "end", END_VARS),
        error=compile_optional(spec, "error", STREAM_ERROR_VARS),
    )


def _build_local_routes(spec: Any, parent: LineDict) -> tuple[LocalRoute, ...]:
    if not isinstance(spec, LineDict):
        raise fail(parent, "local_routes", "`local_routes` must be a mapping of route names")
    routes = []
    for name, route in spec.items():
        if not isinstance(route, LineDict) or "response" not in route:
            raise fail(spec, name, "a local route needs `paths` and `response`")
        check_keys(route, {"paths", "response", "schema"}, f"local route {name!r}")
        routes.append(
            LocalRoute(str(name), _paths(route, "paths"), compile_key(route, "response", REQUEST_VARS))
        )
    return tuple(routes)


def _build_store(spec: Any, parent: LineDict) -> DialectStore:
    if not isinstance(spec, LineDict) or not {"save", "previous", "id"} <= spec.keys():
        raise fail(parent, "store", "`store` must be a mapping with `save`, `previous` and `id`")
    check_keys(spec, _STORE, "a dialect store")
    if "stream" in parent and "stream_id" not in spec:
        raise fail(parent, "store", "a dialect that streams needs `store.stream_id` (state, request) -> id")
    return DialectStore(
        save=compile_key(spec, "save", REQUEST_VARS),
        previous=compile_key(spec, "previous", REQUEST_VARS),
        id=compile_key(spec, "id", STORE_ID_VARS),
        stream_id=compile_optional(spec, "stream_id", STREAM_ID_VARS),
        missing=compile_optional(spec, "missing", MISSING_VARS),
    )
