"""OpenTelemetry traces end to end: the gateway on a local port, fake upstreams, the SDK's in-memory
exporter. One SERVER span per request, one CLIENT span per upstream try, GenAI attribute names, retry and
fallback events, W3C trace context in from the client and out to the upstream, nothing of the prompt,
the answer or a key in any span; and with tracing off, opentelemetry not even imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.e2e.conftest import golden_json, golden_stream
from tests.fakes import FakeUpstream
from tests.support import running_gateway

PROMPT = "the secret recipe is paprika"
HI = [{"role": "user", "content": PROMPT}]
UPSTREAM_KEY = "sk-upstream-key-never-in-spans"
# a client's W3C trace context: version, trace id, parent span id, flags (sampled)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CLIENT_SPAN_ID}-01"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


def _openai(alias: str, url: str, model: str = "test-model", **extra: Any) -> dict[str, Any]:
    params = {"model": f"openai/{model}", "api_base": url + "/v1", "api_key": UPSTREAM_KEY, **extra}
    return {"model_name": alias, "litellm_params": params}


@contextmanager
def _one_alias(tmp_path: Path, fake: FakeUpstream, provider: TracerProvider) -> Iterator[Any]:
    """A gateway serving the alias gpt-x from `fake`, its spans into `provider`."""
    config = {"model_list": [_openai("gpt-x", fake.url)]}
    with running_gateway(tmp_path, config, tracer_provider=provider) as gw:
        yield gw


def _ask(gw: Any, alias: str, *, stream: bool = False, **headers: str) -> httpx.Response:
    body: dict[str, Any] = {"model": alias, "messages": HI, "temperature": 0.5, "max_tokens": 64}
    if stream:
        body["stream"] = True
    return httpx.post(gw.v1 + "/chat/completions", json=body, headers=headers, timeout=20)


def _finished(exporter: InMemorySpanExporter, count: int) -> list[ReadableSpan]:
    """The finished spans, once there are `count` of them (a stream's spans end with its last byte)."""
    deadline = time.monotonic() + 10
    while len(spans := exporter.get_finished_spans()) < count:
        assert time.monotonic() < deadline, f"{len(spans)} spans finished, expected {count}"
        time.sleep(0.01)
    assert len(spans) == count, [s.name for s in spans]
    return list(spans)


def _split(spans: list[ReadableSpan]) -> tuple[ReadableSpan, list[ReadableSpan]]:
    servers = [s for s in spans if s.kind == SpanKind.SERVER]
    assert len(servers) == 1
    clients = sorted((s for s in spans if s.kind == SpanKind.CLIENT), key=lambda s: s.start_time or 0)
    return servers[0], clients


def _assert_nothing_private(spans: list[ReadableSpan]) -> None:
    """No prompt, answer or key in any attribute or event of any span."""
    for span in spans:
        values = [*dict(span.attributes or {}).values()]
        for event in span.events:
            values.extend(dict(event.attributes or {}).values())
        text = json.dumps([str(v) for v in values])
        for private in (PROMPT, "paprika", "nice to meet you", UPSTREAM_KEY):
            assert private not in text, (span.name, private)


def test_a_whole_answer_is_a_server_span_with_a_client_span_per_try(
    tmp_path: Path, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    with FakeUpstream() as fake:
        fake.add("POST", "/v1/chat/completions", json=golden_json("openai", "simple.response.json"))
        with _one_alias(tmp_path, fake, provider) as gw:
            answer = _ask(gw, "gpt-x")
            assert answer.status_code == 200
            spans = _finished(exporter, 2)
    server, (client,) = _split(spans)
    assert server.name == "chat gpt-x"
    assert client.name == "chat test-model"
    assert server.parent is None  # no traceparent came: a new trace
    assert client.parent is not None and client.parent.span_id == server.context.span_id
    assert client.context.trace_id == server.context.trace_id
    attributes = dict(server.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "gpt-x"
    assert attributes["gen_ai.response.model"] == "test-model"
    assert attributes["gen_ai.provider.name"] == attributes["gen_ai.system"] == "openai"
    assert attributes["gen_ai.usage.input_tokens"] == 16
    assert attributes["gen_ai.usage.output_tokens"] == 9
    assert attributes["http.response.status_code"] == 200
    assert attributes["turnout.request_id"] == answer.headers["x-turnout-request-id"]
    assert attributes["turnout.attempts"] == 1
    assert "error.type" not in attributes
    assert server.status.status_code == StatusCode.UNSET
    tried = dict(client.attributes or {})
    assert tried["gen_ai.operation.name"] == "chat"
    assert tried["gen_ai.provider.name"] == tried["gen_ai.system"] == "openai"
    assert tried["gen_ai.request.model"] == "test-model"
    assert tried["gen_ai.response.model"] == "test-model"
    assert tried["gen_ai.response.id"] == "chatcmpl-golden-simple"
    assert tried["gen_ai.response.finish_reasons"] == ("stop",)
    assert tried["gen_ai.request.temperature"] == 0.5
    assert tried["gen_ai.request.max_tokens"] == 64
    assert tried["gen_ai.usage.input_tokens"] == 16
    assert tried["gen_ai.usage.output_tokens"] == 9
    assert tried["server.address"] == "127.0.0.1"
    assert tried["server.port"] == int(fake.url.rsplit(":", 1)[1])
    assert client.status.status_code == StatusCode.UNSET
    _assert_nothing_private(spans)


def test_a_stream_ends_its_spans_when_it_ends_with_its_usage(
    tmp_path: Path, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    with FakeUpstream() as fake:
        fake.add("POST", "/v1/chat/completions", stream=golden_stream("openai", "stream_text"))
        with _one_alias(tmp_path, fake, provider) as gw:
            answer = _ask(gw, "gpt-x", stream=True)
            assert answer.status_code == 200 and "[DONE]" in answer.text
            spans = _finished(exporter, 2)
    server, (client,) = _split(spans)
    assert server.end_time is not None and client.end_time is not None
    assert client.end_time <= server.end_time
    for span in (server, client):
        attributes = dict(span.attributes or {})
        assert attributes["gen_ai.usage.input_tokens"] == 16
        assert attributes["gen_ai.usage.output_tokens"] == 9
        assert attributes["gen_ai.response.model"] == "test-model"
    _assert_nothing_private(spans)


def test_a_retry_then_success_is_an_event_and_two_client_spans(
    tmp_path: Path, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    with FakeUpstream() as fake:
        fake.add("POST", "/v1/chat/completions", json=golden_json("openai", "simple.response.json"))
        fake.add("POST", "/v1/chat/completions", status=503, json={"error": {"message": "busy"}}, times=1)
        config = {
            "model_list": [_openai("gpt-x", fake.url)],
            "router_settings": {"num_retries": 1, "retry_after": 0},
        }
        with running_gateway(tmp_path, config, tracer_provider=provider) as gw:
            assert _ask(gw, "gpt-x").status_code == 200
            spans = _finished(exporter, 3)
    server, (failed, answered) = _split(spans)
    assert dict(failed.attributes or {})["error.type"] == "503"
    assert dict(failed.attributes or {})["http.response.status_code"] == 503
    assert failed.status.status_code == StatusCode.ERROR
    assert answered.status.status_code == StatusCode.UNSET
    assert "error.type" not in dict(answered.attributes or {})
    (retry,) = server.events
    assert retry.name == "turnout.retry"
    assert dict(retry.attributes or {}) == {"error.type": "503", "turnout.deployment": "openai/test-model"}
    assert dict(server.attributes or {})["turnout.attempts"] == 2
    assert server.status.status_code == StatusCode.UNSET


def test_a_fallback_is_an_event_and_the_answering_model_is_the_fallbacks(
    tmp_path: Path, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    with FakeUpstream() as down, FakeUpstream() as up:
        down.add("POST", "/v1/chat/completions", status=500, json={"error": {"message": "boom"}})
        up.add("POST", "/v1/chat/completions", json=golden_json("openai", "simple.response.json"))
        config = {
            "model_list": [_openai("first", down.url, "model-a"), _openai("second", up.url, "model-b")],
            "router_settings": {"fallbacks": [{"first": ["second"]}]},
        }
        with running_gateway(tmp_path, config, tracer_provider=provider) as gw:
            answer = _ask(gw, "first")
            assert answer.status_code == 200
            spans = _finished(exporter, 3)
    server, (failed, answered) = _split(spans)
    assert failed.name == "chat model-a" and answered.name == "chat model-b"
    (fallback,) = server.events
    assert fallback.name == "turnout.fallback"
    assert dict(fallback.attributes or {}) == {
        "turnout.fallback.from": "first",
        "turnout.fallback.to": "second",
        "turnout.fallback.reason": "failure",
        "error.type": "500",
    }
    attributes = dict(server.attributes or {})
    assert attributes["gen_ai.request.model"] == "first"  # the alias the client asked for
    assert attributes["gen_ai.response.model"] == "test-model"  # what the fallback's backend answered
    assert "error.type" not in attributes


def test_a_client_leaving_mid_stream_ends_both_spans(
    tmp_path: Path, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    chunks = golden_stream("openai", "stream_text")
    with FakeUpstream() as fake:
        fake.add("POST", "/v1/chat/completions", stream=chunks, hang_after=2)  # then silent: never ends
        config = {"model_list": [_openai("gpt-x", fake.url)]}
        with running_gateway(tmp_path, config, tracer_provider=provider) as gw:
            body = {"model": "gpt-x", "messages": HI, "stream": True}
            with (
                httpx.Client(base_url=gw.url, timeout=10) as http,
                http.stream("POST", "/v1/chat/completions", json=body) as response,
            ):
                assert next(response.iter_bytes()).startswith(b"data: ")
            spans = _finished(exporter, 2)
    server, (client,) = _split(spans)
    attributes = dict(server.attributes or {})
    assert attributes["error.type"] == "client_disconnected"
    assert attributes["http.response.status_code"] == 499
    assert server.status.status_code == StatusCode.UNSET  # the client's choice, not the server's error
    assert client.status.status_code == StatusCode.UNSET


def test_an_upstream_5xx_ends_both_spans_in_error(
    tmp_path: Path, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    with FakeUpstream() as fake:
        fake.add(
            "POST", "/v1/chat/completions", status=500, json={"error": {"message": f"no {UPSTREAM_KEY}"}}
        )
        with _one_alias(tmp_path, fake, provider) as gw:
            assert _ask(gw, "gpt-x").status_code == 500
            spans = _finished(exporter, 2)
    server, (client,) = _split(spans)
    assert dict(client.attributes or {})["error.type"] == "500"
    assert client.status.status_code == StatusCode.ERROR
    attributes = dict(server.attributes or {})
    assert attributes["http.response.status_code"] == 500
    assert attributes["error.type"]  # the error's code or type, as in the request log
    assert server.status.status_code == StatusCode.ERROR
    _assert_nothing_private(spans)


def test_a_refused_request_has_a_server_span_and_no_client_span(
    tmp_path: Path, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    with (
        FakeUpstream() as fake,
        _one_alias(tmp_path, fake, provider) as gw,
    ):
        assert _ask(gw, "no-such-model").status_code == 404
        (server,) = _finished(exporter, 1)
    assert server.name == "chat no-such-model"
    assert dict(server.attributes or {})["error.type"] == "model_not_found"
    assert server.status.status_code == StatusCode.UNSET  # the client's mistake, not the server's error


def test_traceparent_in_makes_the_request_a_child_and_goes_out_to_the_upstream(
    tmp_path: Path, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    with FakeUpstream() as fake:
        fake.add("POST", "/v1/chat/completions", json=golden_json("openai", "simple.response.json"))
        with _one_alias(tmp_path, fake, provider) as gw:
            answer = _ask(gw, "gpt-x", traceparent=TRACEPARENT, tracestate="vendor=opaque")
            assert answer.status_code == 200
            spans = _finished(exporter, 2)
        sent = fake.last.headers
    server, (client,) = _split(spans)
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None and format(server.parent.span_id, "016x") == CLIENT_SPAN_ID
    assert server.parent.is_remote
    version, trace_id, parent_id, flags = sent["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01")
    assert parent_id == format(client.context.span_id, "016x")  # the upstream's parent: the try's span
    assert sent["tracestate"] == "vendor=opaque"


@pytest.mark.parametrize(
    "headers",
    [
        {"traceparent": "00-zz-not-a-trace"},
        {"traceparent": "00-" + "0" * 32 + "-" + "0" * 16 + "-01"},  # all-zero ids are invalid
        {"traceparent": "x" * 8000},
    ],
)
def test_a_malformed_traceparent_starts_a_new_trace(
    tmp_path: Path, provider: TracerProvider, exporter: InMemorySpanExporter, headers: dict[str, str]
) -> None:
    with FakeUpstream() as fake:
        fake.add("POST", "/v1/chat/completions", json=golden_json("openai", "simple.response.json"))
        with _one_alias(tmp_path, fake, provider) as gw:
            assert _ask(gw, "gpt-x", **headers).status_code == 200
            spans = _finished(exporter, 2)
        sent = fake.last.headers
    server, _ = _split(spans)
    assert server.parent is None
    assert sent["traceparent"].split("-")[1] == format(server.context.trace_id, "032x")


def test_two_traceparent_headers_are_ignored(
    tmp_path: Path, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    with FakeUpstream() as fake:
        fake.add("POST", "/v1/chat/completions", json=golden_json("openai", "simple.response.json"))
        with _one_alias(tmp_path, fake, provider) as gw:
            body = {"model": "gpt-x", "messages": HI}
            headers = [("traceparent", TRACEPARENT), ("traceparent", f"00-{'1' * 32}-{'2' * 16}-01")]
            assert httpx.post(gw.v1 + "/chat/completions", json=body, headers=headers).status_code == 200
            spans = _finished(exporter, 2)
    server, _ = _split(spans)
    assert server.parent is None


_OFF_SCRIPT = """
import sys
import httpx
from pathlib import Path
from tests.fakes import FakeUpstream
from tests.support import running_gateway

with FakeUpstream() as fake:
    fake.add("POST", "/v1/chat/completions", json={"id": "x", "object": "chat.completion", "created": 1,
        "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
        "finish_reason": "stop"}]})
    config = {"model_list": [{"model_name": "a", "litellm_params": {"model": "openai/m",
        "api_base": fake.url + "/v1"}}]}
    with running_gateway(Path(sys.argv[1]), config) as gw:
        answer = httpx.post(gw.v1 + "/chat/completions", json={"model": "a",
            "messages": [{"role": "user", "content": "hi"}]}, headers={"traceparent": sys.argv[2]})
        assert answer.status_code == 200, answer.text
        sent = fake.last.headers
print(sorted(m for m in sys.modules if m.startswith("opentelemetry") or m.startswith("engine.tracing.")))
print("traceparent" in sent)
"""


def _imported_in_a_fresh_process(tmp_path: Path, **environment: str) -> tuple[list[str], bool]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **environment}
    done = subprocess.run(
        [sys.executable, "-c", _OFF_SCRIPT, str(tmp_path), TRACEPARENT],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    modules, forwarded = done.stdout.strip().splitlines()[-2:]
    return json.loads(modules.replace("'", '"')), forwarded == "True"


def test_with_tracing_off_opentelemetry_is_not_even_imported(tmp_path: Path) -> None:
    modules, forwarded = _imported_in_a_fresh_process(tmp_path)
    assert modules == []
    assert not forwarded  # and no trace context goes upstream


def test_with_tracing_on_the_same_process_imports_it(tmp_path: Path) -> None:
    """The check above can fail: the same script, with tracing on (exported nowhere), imports it."""
    modules, forwarded = _imported_in_a_fresh_process(
        tmp_path, TURNOUT_OTEL="true", OTEL_TRACES_EXPORTER="none"
    )
    assert "engine.tracing.otel" in modules and "opentelemetry.trace" in modules
    assert forwarded


def test_spans_are_exported_over_otlp_as_the_otel_variables_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test provider: TURNOUT_OTEL on, and the OTLP exporter configured by OTEL_* alone; the fake
    collector gets the spans (flushed when the gateway stops) as OTLP protobuf."""
    with FakeUpstream() as fake, FakeUpstream() as collector:
        fake.add("POST", "/v1/chat/completions", json=golden_json("openai", "simple.response.json"))
        collector.add("POST", "/v1/traces", body=b"", content_type="application/x-protobuf")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "gateway-eu")
        with running_gateway(tmp_path, {"model_list": [_openai("gpt-x", fake.url)]}, otel=True) as gw:
            assert _ask(gw, "gpt-x").status_code == 200
        exported = [r for r in collector.requests if r.path == "/v1/traces"]
    assert exported and exported[0].headers["content-type"] == "application/x-protobuf"
    names, services = [], set()
    for request in exported:
        message = ExportTraceServiceRequest.FromString(request.body)
        for resource_spans in message.resource_spans:
            for attribute in resource_spans.resource.attributes:
                if attribute.key == "service.name":
                    services.add(attribute.value.string_value)
            names += [span.name for scope in resource_spans.scope_spans for span in scope.spans]
    assert sorted(names) == ["chat gpt-x", "chat test-model"]
    assert services == {"gateway-eu"}
    assert PROMPT.encode() not in b"".join(r.body for r in exported)


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER: unknown exporter 'zipkin'"),
        (
            {"TURNOUT_OTEL": "true", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
            "OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' is not supported",
        ),
    ],
)
def test_serve_refuses_to_start_with_tracing_it_cannot_export(
    tmp_path: Path, environment: dict[str, str], message: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TURNOUT_", "LITELLM_", "OTEL_"))}
    env.update(TURNOUT_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}", **environment)
    done = subprocess.run(
        [sys.executable, "-m", "engine", "serve", "--port", "1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"turnout: {message}")  # before anything else: no database touched
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "cli.db").exists()
