"""Routes for inbound dialects (mappings/dialects/*.yaml): the client's API in, any backend behind.

client body -> dialect `schema` -> dialect `request` -> canonical request -> pipeline -> canonical answer
or canonical chunks -> dialect `response` / `stream` -> the client's body or events. A body of the wrong shape
is a 400 naming the field before any mapping runs. Errors, including authentication and the gateway's
own failures, are rendered by the dialect's `error` section in the client's own error shape. A dialect
with a `store` section also continues stored conversations and keeps its answers
(engine.api.conversation); one without it never touches the database.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from litestar import Request, Response, post
from litestar.exceptions import HTTPException
from litestar.handlers import HTTPRouteHandler
from litestar.response import Stream

from engine.api.auth import check_key
from engine.api.body_limits import read_body
from engine.api.conversation import AssistantAccumulator, Exchange, assistant_message, open_exchange
from engine.api.respond import note_refusal
from engine.api.state import gateway_of
from engine.errors import InvalidRequest, MappingFailed, TurnoutError
from engine.jsonbody import decode_json_body
from engine.keys.ring import VirtualKey
from engine.mapping.dialects import DialectMapping, DialectStream, LocalRoute
from engine.mapping.runtime import MappingRuntimeError
from engine.mapping.schema import BodySchema, SchemaViolation
from engine.pipeline.metering import REQUEST_ID_HEADER
from engine.pipeline.schemas import decode_request
from engine.pipeline.stream_events import ChunkReader, StreamPiece
from engine.pipeline.translate import encode_json, evaluate, report_mapping_failure
from engine.pipeline.validate import check_chat_request

__all__ = ["dialect_routes"]

log = logging.getLogger("turnout.dialects")


def dialect_routes(dialects: Mapping[str, DialectMapping]) -> list[HTTPRouteHandler]:
    routes = []
    for dialect in dialects.values():
        routes.append(_proxy_route(dialect))
        routes += [_local_route(dialect, local) for local in dialect.local_routes]
    return routes


def _body(raw: bytes | bytearray, schema: BodySchema | None) -> dict[str, Any]:
    body = decode_json_body(raw)
    if schema is not None:
        try:
            schema.check(body)
        except SchemaViolation as violation:
            raise InvalidRequest(f"invalid request: {violation}", param=violation.param or None) from None
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


def _internal_error(dialect: DialectMapping, exc: Exception) -> TurnoutError:
    """What Litestar refused (a body over the size limit: its 4xx), or a failure of the gateway itself,
    told in the dialect's shape without anything internal."""
    if isinstance(exc, HTTPException) and 400 <= exc.status_code < 500:
        return InvalidRequest(str(exc.detail), status=exc.status_code)
    log.error("dialect %s: unexpected error", dialect.name, exc_info=exc)
    return TurnoutError("internal error in the gateway; see its log")


async def _canonical(
    request: Request[Any, Any, Any],
    dialect: DialectMapping,
    body: dict[str, Any],
    headers: dict[str, str],
    key: VirtualKey | None,
) -> tuple[dict[str, Any], Exchange | None]:
    """The canonical request (the key's stored history first, when the dialect continues a
    conversation), and the exchange to keep its answer in, if any."""
    canonical = evaluate(dialect.request, body, headers)
    exchange = None
    if dialect.store is not None and isinstance(canonical, dict):
        store = gateway_of(request).conversations
        owner = key.id if key is not None else None
        exchange = await open_exchange(dialect, dialect.store, store, owner, canonical, body, headers)
    if dialect.operation == "chat":
        return check_chat_request(canonical), exchange
    return decode_request(dialect.operation, encode_json(canonical)), exchange


def _error_response(dialect: DialectMapping, error: TurnoutError) -> Response[bytes]:
    fields = error.body()["error"]
    headers = error.headers
    try:
        body = dialect.error(fields, error.status)
        if dialect.error_headers is not None:  # e.g. whether the dialect's clients should retry
            extra = dialect.error_headers(fields, error.status) or {}
            headers = {**headers, **{name: str(value) for name, value in extra.items()}}
    except MappingRuntimeError:  # never let a broken error mapping hide the error itself
        log.exception("dialect %s: error mapping failed", dialect.name)
        body = error.body()
    return Response(
        encode_json(body), status_code=error.status, media_type="application/json", headers=headers
    )


def _proxy_route(registered: DialectMapping) -> HTTPRouteHandler:
    async def handle(request: Request[Any, Any, Any]) -> Response[Any]:
        # the mappings in force now, this dialect's and the providers', kept to the request's end
        mappings = gateway_of(request).mappings
        dialect = mappings.dialects[registered.name]
        try:
            key = check_key(request)
            body = _body(await read_body(request), dialect.schema)
            headers = dict(request.headers)
            canonical, exchange = await _canonical(request, dialect, body, headers, key)
            if canonical.get("stream") and dialect.stream is None:
                raise InvalidRequest(f"the {dialect.name} dialect cannot stream", param="stream")
            privacy = headers.get("x-turnout-privacy")
            pipeline = gateway_of(request).pipeline
            cache_control = headers.get("cache-control") if pipeline.caches else None
            reply = await pipeline.run(
                dialect.operation,
                canonical,
                privacy=privacy,
                key=key,
                cache_control=cache_control,
                registry=mappings.registry,
            )
            request_id = reply.headers.get(REQUEST_ID_HEADER)
            if reply.stream is None:  # the canonical answer, as the pipeline decoded (or built) it
                try:
                    answer = evaluate(dialect.response, reply.answer, body)
                    if exchange is not None:  # kept before the client sees the id, so a next turn finds it
                        await exchange.keep(
                            evaluate(exchange.spec.id, answer, body), assistant_message(reply.answer)
                        )
                except MappingFailed as failed:  # the request is metered already: name it, not a new one
                    _answered_request(failed, request_id)
                    raise
                return Response(encode_json(answer), media_type="application/json", headers=reply.headers)
            assert dialect.stream is not None
            events = _render_stream(dialect, dialect.stream, reply.stream, body, exchange, request_id)
            return Stream(
                events,
                media_type="text/event-stream",
                headers={"cache-control": "no-cache", **reply.headers},
            )
        except TurnoutError as error:
            note_refusal(request, error, dialect.operation)
            return _error_response(dialect, error)
        except Exception as exc:
            failure = _internal_error(dialect, exc)
            note_refusal(request, failure, dialect.operation)
            return _error_response(dialect, failure)

    return post(
        list(registered.paths),
        name=f"dialect-{registered.name}",
        status_code=200,
        opt={"operation": registered.operation},
    )(handle)


def _answered_request(failure: MappingFailed, request_id: str | None) -> None:
    """A dialect's mapping failed on an answer the pipeline already metered under `request_id`."""
    report_mapping_failure(failure, request_id)
    failure.request_id = request_id  # recorded: note_refusal adds no second row
    if request_id is not None:
        failure.headers[REQUEST_ID_HEADER] = request_id


def _local_route(registered: DialectMapping, registered_route: LocalRoute) -> HTTPRouteHandler:
    async def handle(request: Request[Any, Any, Any]) -> Response[Any]:
        dialect = gateway_of(request).mappings.dialects[registered.name]  # the version in force
        route = next(local for local in dialect.local_routes if local.name == registered_route.name)
        try:
            check_key(request)
            body = _body(await read_body(request), route.schema)
            answer = evaluate(route.response, body, dict(request.headers))
            return Response(encode_json(answer), media_type="application/json")
        except TurnoutError as error:
            if isinstance(error, MappingFailed):  # a local route is no metered request: no id to name
                report_mapping_failure(error, None)
            return _error_response(dialect, error)
        except Exception as exc:
            return _error_response(dialect, _internal_error(dialect, exc))

    name = f"dialect-{registered.name}-{registered_route.name}"
    return post(list(registered_route.paths), name=name, status_code=200)(handle)


def _sse(events: Any) -> bytes:
    """{event, data} items (or bare data) as SSE bytes."""
    out = []
    for item in events if isinstance(events, list) else [events] if events else []:
        if isinstance(item, dict) and "data" in item:
            name = item.get("event")
            head = f"event: {name}\n".encode() if name else b""
            out.append(head + b"data: " + encode_json(item["data"]) + b"\n\n")
        elif item is not None:
            out.append(b"data: " + encode_json(item) + b"\n\n")
    return b"".join(out)


async def _render_stream(
    dialect: DialectMapping,
    spec: DialectStream,
    pieces: AsyncIterator[StreamPiece],
    request: dict[str, Any],
    exchange: Exchange | None = None,
    request_id: str | None = None,
) -> AsyncIterator[bytes]:
    """The pipeline's canonical chunks (engine.pipeline.stream_events), re-framed as the dialect's events;
    its error, or an upstream's in-band error event, as the dialect's error events that end the stream.
    With an exchange, the assistant message is assembled as chunks pass and kept once the stream
    completes (not if it fails)."""
    state: dict[str, Any] = dict(evaluate(spec.start, request)) if spec.start is not None else {}
    reader = ChunkReader()
    assembled = AssistantAccumulator() if exchange is not None else None
    try:
        async for piece in pieces:
            for chunk in reader.chunks(piece):
                if isinstance(chunk, dict) and "error" in chunk:
                    if spec.error is not None:
                        yield _sse(evaluate(spec.error, chunk["error"], state, request))
                    return
                if assembled is not None:
                    assembled.feed(chunk)
                step = evaluate(spec.step, chunk, state, request)
                state.update(step.get("state") or {})
                out = _sse(step.get("events"))
                if out:
                    yield out
        end = _sse(evaluate(spec.end, state, request)) if spec.end is not None else b""
        if exchange is not None and assembled is not None:  # kept before the final events go out
            assert exchange.spec.stream_id is not None  # the loader requires it of a streaming dialect
            await exchange.keep(evaluate(exchange.spec.stream_id, state, request), assembled.message())
        if end:
            yield end
    except TurnoutError as error:  # a mapping failure mid-stream: tell the client in its own shape
        if isinstance(error, MappingFailed):
            report_mapping_failure(error, request_id)
        log.warning("dialect %s stream failed: %s", dialect.name, error.message)
        if spec.error is not None:
            yield _sse(evaluate(spec.error, error.body()["error"], state, request))
