"""When tracing is on, where spans go, and the names spans use (engine.tracing)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from engine.errors import InvalidRequest, UpstreamStatus, UpstreamTimeout, UpstreamUnavailable
from engine.mapping.loader import check_folder, load_registry
from engine.settings import Settings, project_path
from engine.tracing import open_tracer, tracing_on
from engine.tracing.export import TracingSetupError, exporting_provider
from engine.tracing.otel import error_type


@pytest.mark.parametrize(
    ("settings", "on"),
    [
        ({}, False),
        ({"otel": True}, True),
        ({"otel_traces_exporter": "otlp"}, True),
        ({"otel_traces_exporter": "console,otlp"}, True),
        ({"otel_traces_exporter": "none"}, False),
        ({"otel_traces_exporter": " "}, False),
        ({"otel": True, "otel_traces_exporter": "none"}, True),  # spans made and propagated, not exported
        ({"otel": True, "otel_sdk_disabled": True}, False),
        ({"otel_traces_exporter": "otlp", "otel_sdk_disabled": True}, False),
    ],
)
def test_when_tracing_is_on(settings: dict[str, object], on: bool) -> None:
    assert tracing_on(Settings.model_validate(settings)) is on


def test_the_standard_variables_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    assert tracing_on(Settings())
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not tracing_on(Settings())


def test_off_there_is_no_tracer() -> None:
    assert open_tracer(Settings(), lambda name: name) is None


def test_service_name_defaults_to_turnout_and_follows_otel_service_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    provider = exporting_provider(Settings(otel_traces_exporter="none"))
    assert provider.resource.attributes["service.name"] == "turnout"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "gateway-eu")
    provider = exporting_provider(Settings(otel_traces_exporter="none"))
    assert provider.resource.attributes["service.name"] == "gateway-eu"


def test_every_named_exporter_gets_a_batch_processor() -> None:
    provider = exporting_provider(Settings(otel_traces_exporter="console, otlp"), environ={})
    processors = provider._active_span_processor._span_processors  # the SDK keeps no public list
    assert [type(p) for p in processors] == [BatchSpanProcessor, BatchSpanProcessor]
    assert isinstance(processors[0].span_exporter, ConsoleSpanExporter)
    provider.shutdown()


@pytest.mark.parametrize(
    ("exporter", "environ", "message"),
    [
        ("zipkin", {}, "unknown exporter 'zipkin'"),
        ("otlp", {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "'http/json' is not supported"),
        ("otlp", {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, "opentelemetry-exporter-otlp-proto-grpc"),
    ],
)
def test_what_cannot_be_honoured_is_refused_by_name(
    exporter: str, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(TracingSetupError, match=message):
        exporting_provider(Settings(otel_traces_exporter=exporter), environ=environ)


def test_error_types_are_low_cardinality_codes() -> None:
    assert error_type(UpstreamStatus(503, "busy")) == "503"
    assert error_type(UpstreamStatus(529, "overloaded")) == "529"
    assert error_type(UpstreamTimeout("slow")) == "upstream_timeout"
    assert error_type(UpstreamUnavailable("down")) == "upstream_unavailable"
    assert error_type(InvalidRequest("bad")) == "invalid_request_error"
    assert error_type(asyncio.CancelledError()) == "cancelled"
    assert error_type(KeyError("x")) == "KeyError"


def test_mappings_name_their_semconv_provider_where_it_differs() -> None:
    registry = load_registry(project_path("mappings"))
    names = {name: registry.get(name).gen_ai_provider for name in ("gemini", "mistral", "azure", "openai")}  # type: ignore[union-attr]
    assert names == {
        "gemini": "gcp.gemini",
        "mistral": "mistral_ai",
        "azure": "azure.ai.openai",
        "openai": None,
    }


def test_gen_ai_provider_is_not_inherited_and_must_be_a_name(tmp_path: Path) -> None:
    providers = tmp_path / "providers"
    providers.mkdir()
    openai = (project_path("mappings") / "providers" / "openai.yaml").read_text()
    (providers / "openai.yaml").write_text(openai)
    (providers / "base.yaml").write_text("extends: openai\nname: base\ngen_ai_provider: some.cloud\n")
    (providers / "child.yaml").write_text("extends: base\nname: child\n")
    (providers / "bad.yaml").write_text("extends: openai\nname: bad\ngen_ai_provider: [1]\n")
    problems = check_folder(tmp_path)
    assert len(problems) == 1 and "gen_ai_provider must be a name" in problems[0]
    (providers / "bad.yaml").unlink()
    registry = load_registry(tmp_path)
    assert registry.get("base").gen_ai_provider == "some.cloud"  # type: ignore[union-attr]
    assert registry.get("child").gen_ai_provider is None  # type: ignore[union-attr]
