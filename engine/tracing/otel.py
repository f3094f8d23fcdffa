"""The OpenTelemetry tracer: GenAI semantic-convention spans for requests and upstream tries.

Imported only when tracing is on (engine.tracing.open_tracer). Attribute names follow the GenAI
semantic conventions as of semconv 1.37+ (docs/gen-ai/gen-ai-spans.md):

    SERVER span "{operation} {alias}"        one per request reaching the pipeline
      gen_ai.operation.name, gen_ai.request.model (the alias), gen_ai.response.model,
      gen_ai.provider.name + gen_ai.system (of the deployment that answered), gen_ai.usage.input_tokens
      / output_tokens, http.response.status_code, error.type; turnout.request_id, turnout.attempts;
      events turnout.retry and turnout.fallback
    CLIENT span "{operation} {upstream model}"   one per upstream try, the server span's child
      the same gen_ai.* for this try, gen_ai.request.* parameters, server.address / server.port,
      http.response.status_code, error.type

`gen_ai.provider.name` replaced `gen_ai.system` in semconv 1.37 (semantic-conventions PR 2046); both
are set to the same value, so that backends still reading the older name group the spans too.
Nothing of the prompt, the answer or a credential is recorded, and no exception text (an upstream's
error message may quote the prompt): error.type is a low-cardinality code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider, set_span_in_context

from engine.errors import TurnoutError, UpstreamStatus

if TYPE_CHECKING:
    from engine.pipeline.outcome import Tally
    from engine.routing.table import Deployment
    from engine.usage.record import UsageRecord

__all__ = ["OPERATION_NAMES", "OtelTracer", "error_type"]

# Turnout's operations by their semconv names where the convention has one; the others keep theirs
OPERATION_NAMES = {"chat": "chat", "completions": "text_completion", "embeddings": "embeddings"}
# canonical request parameters recorded on the client span (numbers only: never content)
_REQUEST_PARAMETERS = (
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
    ("top_k", "gen_ai.request.top_k"),
    ("max_tokens", "gen_ai.request.max_tokens"),
    ("max_completion_tokens", "gen_ai.request.max_tokens"),
    ("frequency_penalty", "gen_ai.request.frequency_penalty"),
    ("presence_penalty", "gen_ai.request.presence_penalty"),
    ("seed", "gen_ai.request.seed"),
    ("n", "gen_ai.request.choice.count"),
)


class OtelTracer:
    def __init__(self, provider: TracerProvider, provider_names: Callable[[str], str], *, owned: bool):
        self._provider = provider
        self._tracer = provider.get_tracer("turnout")
        self._names = provider_names
        self._owned = owned  # built from OTEL_* here: shut down (its spans exported) at close

    def request(self, operation: str, alias: str, request_id: str) -> _RequestSpan:
        name = OPERATION_NAMES.get(operation, operation)
        span = self._tracer.start_span(  # the current context: the client's traceparent, if it sent one
            f"{name} {alias}",
            kind=SpanKind.SERVER,
            attributes={
                "gen_ai.operation.name": name,
                "gen_ai.request.model": alias,
                "turnout.request_id": request_id,
            },
        )
        return _RequestSpan(self, span, name)

    def attempt_span(self, parent: _RequestSpan, deployment: Deployment, request: Mapping[str, Any]) -> Span:
        provider = self._names(deployment.provider)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": parent.operation,
            "gen_ai.provider.name": provider,
            "gen_ai.system": provider,
            "gen_ai.request.model": deployment.upstream_model,
            "turnout.deployment.id": deployment.model_id or str(deployment.id),
        }
        for name, attribute in _REQUEST_PARAMETERS:
            value = request.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                attributes[attribute] = value
        return self._tracer.start_span(
            f"{parent.operation} {deployment.upstream_model}",
            context=parent.context,
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )

    def provider_name(self, mapping: str) -> str:
        return self._names(mapping)

    def close(self) -> None:
        shutdown = getattr(self._provider, "shutdown", None)
        if self._owned and shutdown is not None:
            shutdown()


class _RequestSpan:
    __slots__ = ("_failure", "_response_model", "_span", "_tracer", "context", "operation")

    def __init__(self, tracer: OtelTracer, span: Span, operation: str) -> None:
        self._tracer = tracer
        self._span = span
        self.operation = operation
        self.context: Context = set_span_in_context(span)
        self._failure: str | None = None  # error.type of the try that failed last, until the next one
        self._response_model: str | None = None

    def attempt(self, deployment: Deployment, request: Mapping[str, Any]) -> _AttemptSpan:
        if self._failure is not None:  # a try after a failed one, on the same alias
            self._span.add_event(
                "turnout.retry",
                {
                    "error.type": self._failure,
                    "turnout.deployment": f"{deployment.provider}/{deployment.upstream_model}",
                },
            )
            self._failure = None
        span = self._tracer.attempt_span(self, deployment, request)
        return _AttemptSpan(self, span, deployment.upstream_model)

    def fell_back(self, alias: str, target: str, reason: str) -> None:
        attributes = {
            "turnout.fallback.from": alias,
            "turnout.fallback.to": target,
            "turnout.fallback.reason": reason,
        }
        if self._failure is not None:
            attributes["error.type"] = self._failure
            self._failure = None  # the fallback's first try is not a retry
        self._span.add_event("turnout.fallback", attributes)

    def tried(self, failure: str | None, response_model: str | None) -> None:
        """An attempt ended: how it failed, or which model answered."""
        self._failure = failure
        if response_model is not None:
            self._response_model = response_model

    def end(self, record: UsageRecord) -> None:
        span = self._span
        if not span.is_recording():  # sampled out: nothing to note
            span.end()
            return
        attributes: dict[str, Any] = {
            "http.response.status_code": record.status,
            "turnout.attempts": record.attempts,
        }
        if record.provider is not None:
            provider = self._tracer.provider_name(record.provider)
            attributes["gen_ai.provider.name"] = attributes["gen_ai.system"] = provider
        if self._response_model is not None:
            attributes["gen_ai.response.model"] = self._response_model
        _set_tokens(attributes, record.prompt_tokens, record.completion_tokens)
        if record.tokens_estimated:
            attributes["turnout.usage.estimated"] = True
        if isinstance(record.cost, Decimal):
            attributes["turnout.cost_usd"] = float(record.cost)
        failed = record.status >= 400 or record.error_type is not None
        if failed:
            attributes["error.type"] = record.error_code or record.error_type or str(record.status)
        span.set_attributes(attributes)
        # a refusal of the client's request (4xx, a client that left) is not this server's error
        if record.status >= 500 or (failed and record.status < 400):
            span.set_status(Status(StatusCode.ERROR))
        span.end()


class _AttemptSpan:
    """Attributes learnt along the try are set once, when it ends (each call into the SDK validates)."""

    __slots__ = ("_attributes", "_model", "_parent", "_span")

    def __init__(self, parent: _RequestSpan, span: Span, model: str) -> None:
        self._parent = parent
        self._span = span
        self._model = model
        self._attributes: dict[str, Any] = {}

    def outgoing(self, url: str, headers: Mapping[str, str]) -> Mapping[str, str]:
        try:
            parts = urlsplit(url)
            host, port = parts.hostname, parts.port
        except ValueError:  # a URL aiohttp will refuse too (the try fails as unreachable)
            host, port = None, None
        if host:
            self._attributes["server.address"] = host
            self._attributes["server.port"] = port or (443 if parts.scheme == "https" else 80)
        context = self._span.get_span_context()
        if not context.is_valid:
            return headers
        # W3C Trace Context, written here: the propagator API would build a Context for each request
        carrier = {
            **headers,
            "traceparent": f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}",
        }
        if context.trace_state:
            carrier["tracestate"] = context.trace_state.to_header()
        return carrier

    def answered(self, answer: Any, usage: Any) -> None:
        model = None
        if isinstance(answer, dict):
            model = _text(answer.get("model"))
            response_id = _text(answer.get("id"))
            if response_id is not None:
                self._attributes["gen_ai.response.id"] = response_id
            reasons = _finish_reasons(answer.get("choices"))
            if reasons:
                self._attributes["gen_ai.response.finish_reasons"] = reasons
        self._end_answered(model, usage)

    def streamed(self, tally: Tally) -> None:
        reading = tally.stream
        if reading is None:
            self._end_answered(None, None)
            return
        if reading.error is not None:  # the stream broke off with an error event, after it had begun
            self._attributes["error.type"] = reading.error[1] or reading.error[0]
            self._span.set_status(Status(StatusCode.ERROR))
        self._end_answered(reading.model, reading.usage)

    def failed(self, error: BaseException) -> None:
        kind = error_type(error)
        attributes = self._attributes
        attributes["error.type"] = kind
        if isinstance(error, UpstreamStatus):
            attributes["http.response.status_code"] = error.upstream_status
        if not isinstance(error, asyncio.CancelledError):  # the client left: not the upstream's failure
            self._span.set_status(Status(StatusCode.ERROR))
        self._parent.tried(kind, None)
        self._end()

    def _end_answered(self, model: str | None, usage: Any) -> None:
        if model is not None:
            self._attributes["gen_ai.response.model"] = model
        if isinstance(usage, Mapping):
            _set_tokens(
                self._attributes,
                _count(usage.get("prompt_tokens", usage.get("input_tokens"))),
                _count(usage.get("completion_tokens", usage.get("output_tokens"))),
            )
        self._parent.tried(None, model or self._model)
        self._end()

    def _end(self) -> None:
        if self._attributes and self._span.is_recording():
            self._span.set_attributes(self._attributes)
        self._span.end()


def error_type(error: BaseException) -> str:
    """A low-cardinality error.type: the upstream's HTTP status, else Turnout's error code or type,
    else the exception's class name."""
    if isinstance(error, UpstreamStatus):
        return str(error.upstream_status)
    if isinstance(error, TurnoutError):
        return error.code or error.type
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    return type(error).__qualname__


def _set_tokens(attributes: dict[str, Any], prompt: int | None, completion: int | None) -> None:
    if prompt is not None:
        attributes["gen_ai.usage.input_tokens"] = prompt
    if completion is not None:
        attributes["gen_ai.usage.output_tokens"] = completion


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _text(value: Any) -> str | None:
    return value[:256] if isinstance(value, str) and value else None  # an upstream's, so bounded


def _finish_reasons(choices: Any) -> list[str]:
    if not isinstance(choices, list):
        return []
    return [
        reason[:64]
        for c in choices[:16]
        if isinstance(c, dict) and isinstance(reason := c.get("finish_reason"), str)
    ]
