"""Where spans go, from the standard OTEL_* variables (imported only when tracing is on).

OTEL_TRACES_EXPORTER            otlp (default), console, none; comma-separated for several
OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL   http/protobuf (default) or grpc (needs the grpc exporter)
OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _HEADERS, _TIMEOUT, _COMPRESSION, _CERTIFICATE
                                read by the OTLP exporter itself
OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES   the resource (service.name defaults to "turnout")
OTEL_TRACES_SAMPLER[_ARG], OTEL_BSP_*         read by the SDK's provider and batch processor
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Mapping

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from engine.settings import Settings

__all__ = ["TracingSetupError", "exporting_provider", "setup_problem"]

_EXPORTERS = ("otlp", "console", "none")
_PROTOCOLS = ("http/protobuf", "grpc")
_GRPC_PACKAGE = "opentelemetry.exporter.otlp.proto.grpc"  # opentelemetry-exporter-otlp-proto-grpc


class TracingSetupError(ValueError):
    """An OTEL_* value Turnout cannot honour; the message names it."""


def setup_problem(settings: Settings, environ: Mapping[str, str] | None = None) -> str | None:
    """What in the OTEL_* variables cannot be honoured (checked before serving), or None."""
    environ = os.environ if environ is None else environ
    names = _exporter_names(settings)
    unknown = [name for name in names if name not in _EXPORTERS]
    if unknown:
        return f"OTEL_TRACES_EXPORTER: unknown exporter {unknown[0]!r} (otlp, console or none)"
    if "otlp" not in names:
        return None
    protocol = _protocol(environ)
    if protocol not in _PROTOCOLS:
        return f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} is not supported (http/protobuf or grpc)"
    if protocol == "grpc" and importlib.util.find_spec(_GRPC_PACKAGE) is None:
        return (
            "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs pip install opentelemetry-exporter-otlp-proto-grpc "
            "(turnout[otel] brings the http/protobuf exporter only)"
        )
    return None


def exporting_provider(settings: Settings, environ: Mapping[str, str] | None = None) -> TracerProvider:
    """A provider exporting through every exporter OTEL_TRACES_EXPORTER names, batched off the event loop."""
    environ = os.environ if environ is None else environ
    problem = setup_problem(settings, environ)
    if problem is not None:
        raise TracingSetupError(problem)
    provider = TracerProvider(resource=_resource())
    for name in _exporter_names(settings):
        if name == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        elif name == "otlp":
            provider.add_span_processor(BatchSpanProcessor(_otlp(_protocol(environ))))
    return provider


def _exporter_names(settings: Settings) -> list[str]:
    names = (settings.otel_traces_exporter or "otlp").split(",")
    return [name.strip().lower() for name in names if name.strip()]


def _protocol(environ: Mapping[str, str]) -> str:
    named = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    return (named or "http/protobuf").strip()


def _resource() -> Resource:
    resource = Resource.create()  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, the SDK's defaults
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "turnout"}))
    return resource


def _otlp(protocol: str) -> SpanExporter:
    """The OTLP exporter for `protocol`; it reads its endpoint, headers, timeout and TLS files itself."""
    if protocol == "grpc":
        exporter: SpanExporter = importlib.import_module(_GRPC_PACKAGE + ".trace_exporter").OTLPSpanExporter()
        return exporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()
