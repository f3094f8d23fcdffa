"""Where spans go, from the standard OTEL_* variables (imported only when tracing is on).

OTEL_TRACES_EXPORTER            otlp (default), console, none; comma-separated for several
OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL   http/protobuf (default) or grpc (needs the grpc exporter)
OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _HEADERS, _TIMEOUT, _COMPRESSION, _CERTIFICATE
                                read by the OTLP exporter itself
OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES   the resource (service.name defaults to "turnout")
OTEL_TRACES_SAMPLER[_ARG], OTEL_BSP_*         read by the SDK's provider and batch processor
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from engine.settings import Settings

__all__ = ["TracingSetupError", "exporting_provider"]


class TracingSetupError(ValueError):
    """An OTEL_* value Turnout cannot honour; the message names it."""


def exporting_provider(settings: Settings, environ: Mapping[str, str] | None = None) -> TracerProvider:
    """A provider exporting through every exporter OTEL_TRACES_EXPORTER names, batched off the event loop."""
    environ = os.environ if environ is None else environ
    provider = TracerProvider(resource=_resource())
    names = [n.strip().lower() for n in (settings.otel_traces_exporter or "otlp").split(",") if n.strip()]
    for name in names:
        if name == "none":
            continue
        provider.add_span_processor(BatchSpanProcessor(_exporter(name, environ)))
    return provider


def _resource() -> Resource:
    resource = Resource.create()  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, the SDK's defaults
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "turnout"}))
    return resource


def _exporter(name: str, environ: Mapping[str, str]) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    if name != "otlp":
        raise TracingSetupError(f"OTEL_TRACES_EXPORTER: unknown exporter {name!r} (otlp, console or none)")
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter as GrpcExporter,
            )
        except ImportError:
            raise TracingSetupError(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs pip install opentelemetry-exporter-otlp-proto-grpc "
                "(turnout[otel] brings the http/protobuf exporter only)"
            ) from None
        exporter: SpanExporter = GrpcExporter()
        return exporter
    raise TracingSetupError(
        f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} is not supported (http/protobuf or grpc)"
    )
