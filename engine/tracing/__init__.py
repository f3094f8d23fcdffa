"""Traces of the request path (OpenTelemetry), behind an interface the pipeline can hold as None.

    Tracer.request(operation, alias, request_id) -> RequestTrace     the server span of one request
      RequestTrace.attempt(deployment, request) -> AttemptTrace     a client span per upstream try;
                                                                    a later try adds a retry event
      RequestTrace.fell_back(alias, to, reason)                     a fallback event
      RequestTrace.end(record)                                      usage and status from the usage record
      AttemptTrace.outgoing(url, headers)       -> headers          server.address/port, and the
                                                                    traceparent the upstream gets
      AttemptTrace.answered(answer, usage) | streamed(tally) | failed(error)   ends it

The pipeline holds `Tracer | None`: None when tracing is off, so the off path costs one None-check per
hook and opentelemetry is never imported (`open_tracer` and `trace_context_middleware` import
engine.tracing's other modules, and they opentelemetry, only when tracing is on). Spans carry no
prompt, answer or credential: counts, names and statuses only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from engine.pipeline.outcome import Tally
    from engine.routing.table import Deployment
    from engine.settings import Settings
    from engine.usage.record import UsageRecord

__all__ = [
    "AttemptTrace",
    "RequestTrace",
    "Tracer",
    "open_tracer",
    "trace_context_middleware",
    "tracing_on",
    "tracing_problem",
]
_MISSING = (
    "tracing is on (TURNOUT_OTEL or OTEL_TRACES_EXPORTER) but the OpenTelemetry packages are not installed: "
    "pip install 'turnout[otel]'"
)


class AttemptTrace(Protocol):
    """One try on one deployment (a CLIENT span); ended by exactly one of answered, streamed, failed."""

    def outgoing(self, url: str, headers: Mapping[str, str]) -> Mapping[str, str]:
        """The upstream's address noted; `headers` with this span's trace context added."""
        ...

    def answered(self, answer: Any, usage: Any) -> None: ...

    def streamed(self, tally: Tally) -> None: ...

    def failed(self, error: BaseException) -> None: ...


class RequestTrace(Protocol):
    """One request (a SERVER span, the child of the client's traceparent when it sent one)."""

    def attempt(self, deployment: Deployment, request: Mapping[str, Any]) -> AttemptTrace:
        """A try of the canonical `request` on `deployment` begins (a retry event if one failed before)."""
        ...

    def fell_back(self, alias: str, target: str, reason: str) -> None: ...

    def end(self, record: UsageRecord) -> None: ...


class Tracer(Protocol):
    def request(self, operation: str, alias: str, request_id: str) -> RequestTrace: ...

    def close(self) -> None:
        """Export what is left (at shutdown)."""
        ...


def tracing_on(settings: Settings) -> bool:
    """TURNOUT_OTEL=true, or OTEL_TRACES_EXPORTER naming an exporter, turns traces on;
    OTEL_SDK_DISABLED=true turns them off whatever else is set (as in every OpenTelemetry SDK)."""
    if settings.otel_sdk_disabled:
        return False
    exporter = (settings.otel_traces_exporter or "").strip().lower()
    return settings.otel or (exporter not in ("", "none"))


def tracing_problem(settings: Settings) -> str | None:
    """Why tracing, being on, cannot start (a missing package, an OTEL_* value it cannot honour), or None:
    `turnout serve` says it in one line before serving."""
    if not tracing_on(settings):
        return None
    try:
        from engine.tracing.export import setup_problem
    except ImportError:
        return _MISSING
    return setup_problem(settings)


def open_tracer(
    settings: Settings,
    provider_names: Callable[[str], str],
    provider: TracerProvider | None = None,
) -> Tracer | None:
    """The tracer, or None when tracing is off. `provider` (tests: the SDK's in-memory exporter) is used
    as given and turns tracing on; otherwise one is built from the OTEL_* variables. `provider_names`
    turns a mapping's name into its `gen_ai.provider.name`."""
    if provider is None and not tracing_on(settings):
        return None
    try:
        from engine.tracing.export import exporting_provider
        from engine.tracing.otel import OtelTracer
    except ImportError as exc:
        raise RuntimeError(_MISSING) from exc
    if provider is None:
        return OtelTracer(exporting_provider(settings), provider_names, owned=True)
    return OtelTracer(provider, provider_names, owned=False)


def trace_context_middleware() -> type:
    """The ASGI middleware that makes a client's traceparent the parent of its request's span."""
    try:
        from engine.tracing.incoming import TraceContextMiddleware
    except ImportError as exc:
        raise RuntimeError(_MISSING) from exc
    return TraceContextMiddleware
