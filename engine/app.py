"""create_app(settings) -> Litestar: routes, error rendering, and a lifespan that builds the gateway whole
(engine.gateway.open_gateway) before the first request and closes it after the last."""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

from litestar import Litestar, Request, Response
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.plugins import PluginProtocol
from litestar.plugins.core import MsgspecDIPlugin

from engine.api.body_limits import BodyBudget, BodyLimits
from engine.api.chat import chat_completions
from engine.api.dialects import dialect_routes
from engine.api.disconnect import DisconnectWatch
from engine.api.endpoints import (
    completions,
    embeddings,
    images,
    rerank,
    speech,
    transcriptions,
    translations,
)
from engine.api.health import liveness, readiness
from engine.api.keys import delete_keys, generate_key, key_info_route, list_keys, update_key
from engine.api.metrics import metrics
from engine.api.models import list_models
from engine.api.operator import deployments
from engine.api.respond import note_refusal
from engine.api.usage import request_log, spend_logs, usage_report
from engine.config.secrets import SecretBox
from engine.console import ConsoleState, LazyConsole
from engine.console.session import Signer
from engine.console.throttle import SignInThrottle
from engine.errors import InvalidRequest, NotFound, PayloadTooLarge, TurnoutError
from engine.gateway import open_gateway
from engine.logs import RequestIds
from engine.mapping.loader import MappingRegistry
from engine.reload import load_mapping_set
from engine.settings import Settings
from engine.tracing import trace_context_middleware, tracing_on

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

__all__ = ["create_app"]

log = logging.getLogger("turnout")


# the API's routes; the dialects' are read from the mappings, and the console's are its own app
_API = [
    chat_completions,
    embeddings,
    completions,
    images,
    rerank,
    speech,
    transcriptions,
    translations,
    list_models,
    deployments,
    usage_report,
    request_log,
    spend_logs,
    generate_key,
    key_info_route,
    update_key,
    delete_keys,
    list_keys,
    liveness,
    readiness,
    metrics,
]


class _Litestar(Litestar):
    """Litestar without the plugins it adds for pydantic and attrs types when those packages are
    installed (pydantic is, for the settings): no handler takes or returns such a type, and the pydantic
    plugin alone imports pydantic.v1 (~1 MB of a serving process). msgspec's, which reads handlers'
    signatures, stays."""

    @staticmethod
    def _get_default_plugins(plugins: list[PluginProtocol]) -> list[PluginProtocol]:
        return [*plugins, MsgspecDIPlugin()]


def _render(error: TurnoutError) -> Response[bytes]:
    return Response(
        error.to_json(), status_code=error.status, media_type="application/json", headers=error.headers
    )


def _turnout_error(request: Request[Any, Any, Any], exc: TurnoutError) -> Response[bytes]:
    if "route_handler" in request.scope:  # an API route refused it before the pipeline: still recorded
        note_refusal(request, exc)
    return _render(exc)


def _http_error(_request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    if exc.status_code == 404:
        return _render(NotFound("no such route; the API lives under /v1 (e.g. /v1/chat/completions)"))
    if exc.status_code == 413:
        return _render(PayloadTooLarge("the request body is too large"))
    error = InvalidRequest(str(exc.detail), status=exc.status_code)
    if exc.status_code == 405:
        error.type = "invalid_request_error"
        error.code = "method_not_allowed"
    return _render(error)


def _unexpected(_request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.error("unexpected error", exc_info=exc)
    return _render(TurnoutError("internal error in the gateway; see its log"))


@contextmanager
def _no_litestar_otel_probe() -> Iterator[None]:
    """Litestar's constructor imports `litestar.plugins.opentelemetry`, which imports opentelemetry when it
    is installed (`turnout[otel]`), only to reorder an OpenTelemetry middleware Turnout never uses. While
    the app is built that import fails as if the package were absent, so tracing off imports nothing of it."""
    name = "litestar.plugins.opentelemetry"
    if name in sys.modules:  # imported on purpose by someone else: leave it
        yield
        return
    sys.modules[name] = None  # type: ignore[assignment]  # `import` raises ImportError, which Litestar expects
    try:
        yield
    finally:
        if sys.modules.get(name, ...) is None:
            del sys.modules[name]


def _tracing(settings: Settings, provider: TracerProvider | None) -> list[Any]:
    """The middleware that reads a client's traceparent, when tracing is on (opentelemetry is imported only
    then); first, so that the request's whole handling runs in the client's trace context."""
    if provider is None and not tracing_on(settings):
        return []
    return [trace_context_middleware()]


def create_app(
    settings: Settings,
    *,
    registry: MappingRegistry | None = None,
    clock: Callable[[], float] | None = None,
    tracer_provider: TracerProvider | None = None,
) -> Litestar:
    """The app serving `settings`; `clock` (epoch seconds) replaces the gateway's clocks, and
    `tracer_provider` (an OpenTelemetry SDK provider) receives the spans, for tests."""
    # loaded once: the dialects' routes are registered from them, and the gateway starts with them
    mappings = load_mapping_set(settings.mapping_folders, 1, registry=registry)
    bodies = BodyBudget(settings.request_body_budget_bytes)
    limits = DefineMiddleware(
        BodyLimits,
        budget=bodies,
        limit=settings.max_request_body_bytes,
        upload_limit=settings.audio_max_bytes,
    )
    console = ConsoleState(
        settings,
        Signer(SecretBox.from_settings(settings).derived_key(b"console sessions")),
        SignInThrottle(
            clock or time.time, limit=settings.ui_max_failed_sign_ins, window=settings.ui_lockout_seconds
        ),
    )

    @asynccontextmanager
    async def serve_gateway(app: Litestar) -> AsyncIterator[None]:
        async with open_gateway(settings, mappings, clock=clock, tracer_provider=tracer_provider) as gateway:
            gateway.metrics.watch_sign_ins(lambda: console.throttle.failed_total)
            app.state.gateway = gateway
            yield

    options = _options(settings, tracer_provider, State({"bodies": bodies, "console": console}), limits)
    with _no_litestar_otel_probe():
        dialects = dialect_routes(mappings.dialects)
        app = _Litestar(route_handlers=[*_API, *dialects], lifespan=[serve_gateway], **options)
    handler = app.asgi_handler
    if settings.ui_enabled:
        handler = LazyConsole(handler, settings.ui_path, functools.partial(_console_app, settings, options))
    # outside the router, so that every request has its id for the logs, one no route serves too
    app.asgi_handler = RequestIds(handler)
    return app


def _options(
    settings: Settings, tracer_provider: TracerProvider | None, state: State, limits: DefineMiddleware
) -> dict[str, Any]:
    """What the API's app and the console's share: one state (the gateway, the body budget, the
    console's sessions), the same error rendering and middleware, as when the console's routes were the
    API app's own."""
    return {
        "state": state,
        "exception_handlers": {
            TurnoutError: _turnout_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
        # the client's trace context (when tracing is on); cancel work a client left; bound request bodies
        "middleware": [*_tracing(settings, tracer_provider), DisconnectWatch, limits],
        "request_max_body_size": None,  # BodyLimits enforces the limits (per route, and in total)
        "openapi_config": None,
        "logging_config": None,
    }


def _console_app(settings: Settings, options: dict[str, Any]) -> Litestar:
    """The console's pages and static files, as an app of their own beside the API's (see `options`)."""
    from engine.console.routes import console_routes

    with _no_litestar_otel_probe():
        return _Litestar(route_handlers=console_routes(settings), **options)
