"""One try of a canonical request on one deployment, without routing: prepare, send, read.

    attempt(kind, request, deployment)
      prepare       the mapping's operation, capabilities gated, parameters layered and checked, usage
                    asked for, remote images inlined, the client's headers (which deployment, warnings)
      send          the mapping's url, headers and body, to the upstream client
      read          an error status -> the mapping's error; then one of
        read_raw      the upstream's bytes as they come (audio, transcripts), priced from the request
        read_stream   translated or passed-through SSE, once its first bytes for the client are ready
        read_answer   a whole JSON answer, translated back, checked where its operation has a shape, priced

The dispatcher calls it for each deployment it tries, and `turnout probe` calls it directly. Its
errors name no credential: backends echo the key they were sent in their error text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.canonical import OperationKind
from engine.errors import InvalidRequest, MappingFailed, TurnoutError, UpstreamBadResponse
from engine.mapping.loader import MappingRegistry
from engine.mapping.spec import Operation, ProviderMapping
from engine.pipeline.answers import check_answer
from engine.pipeline.capabilities import gate_capabilities
from engine.pipeline.costs import add_cost_header
from engine.pipeline.images import ImageFetcher, inline_remote_images
from engine.pipeline.multipart import encode_multipart
from engine.pipeline.options import PipelineOptions
from engine.pipeline.outcome import Outcome, Reply, Tally
from engine.pipeline.params import apply_policy, layer_parameters
from engine.pipeline.stream_usage import StreamUsage, ask_for_usage
from engine.pipeline.streaming import passthrough_stream, raw_stream, translated_stream, wait_until_ready
from engine.pipeline.translate import encode_json, evaluate, mapped_error, upstream_error
from engine.redact import GENERIC, Redactor
from engine.routing.table import Deployment
from engine.routing.view import deployment_view
from engine.tracing import AttemptTrace
from engine.upstream import UpstreamClient, UpstreamResponse, decode_json

__all__ = ["ERROR_BODY_BYTES", "Attempter", "Prepared"]

# only the start of an upstream's error body is read: it names the problem (a message, a code)
ERROR_BODY_BYTES = 64 * 1024


@dataclass(slots=True)
class Prepared:
    """A request made ready for one deployment: everything sending it and reading its answer need."""

    kind: OperationKind
    mapping: ProviderMapping
    operation: Operation  # the mapping's section for `kind`
    deployment: Deployment
    view: dict[str, Any]  # the deployment as the mapping sees it
    label: str  # names the backend in errors
    request: dict[str, Any]  # as the deployment gets it
    headers: dict[str, str]  # for the client: which deployment answered, warnings
    usage: StreamUsage | None  # reads a token stream's usage as it goes by


class Attempter:
    def __init__(
        self,
        registry: MappingRegistry | Callable[[], MappingRegistry],
        client: UpstreamClient,
        options: PipelineOptions,
        *,
        images: ImageFetcher | None = None,  # None: image URLs are refused, not fetched
        redactor: Callable[[], Redactor] = lambda: GENERIC,
    ) -> None:
        # the mappings in force (a callable when they are reloaded); a request brings its own version
        self._registry = registry if callable(registry) else (lambda: registry)
        self._client = client
        self._options = options
        self._images = images
        self._redactor = redactor  # the current one: rebuilt with the routing table
        self._views: dict[int, tuple[Deployment, dict[str, Any]]] = {}

    async def attempt(
        self,
        kind: OperationKind,
        request: dict[str, Any],
        deployment: Deployment,
        registry: MappingRegistry | None = None,
        trace: AttemptTrace | None = None,  # the try's span: its context goes to the upstream
    ) -> Outcome:
        """One try on `deployment`, with the provider mappings of `registry` (default: those in force)."""
        try:
            prepared = await self._prepare(kind, request, deployment, registry or self._registry())
            response = await self._send(prepared, trace)
            if response.status >= 400:
                raw = await response.read_start(ERROR_BODY_BYTES)
                errors = prepared.mapping.errors
                raise upstream_error(
                    errors, response.status, raw, response.headers, prepared.view, prepared.label
                )
            if prepared.operation.raw_response:
                return await self._read_raw(prepared, response)
            if prepared.request.get("stream"):
                return await self._read_stream(prepared, response)
            return await self._read_answer(prepared, response)
        except TurnoutError as exc:
            if isinstance(exc, MappingFailed):  # the deployment's, whichever file the section came from
                exc.blame(f"{deployment.provider} ({deployment.upstream_model})")
            self._redactor().error(exc)
            raise

    async def _prepare(
        self, kind: OperationKind, request: dict[str, Any], deployment: Deployment, registry: MappingRegistry
    ) -> Prepared:
        mapping, operation = self._operation(kind, deployment, registry)
        if request.get("stream") and operation.stream is None and not operation.raw_response:
            raise InvalidRequest(f"{mapping.name} cannot stream {kind.title}", param="stream")
        drop = self._options.drop_params
        request, lacking = gate_capabilities(request, deployment, drop_params=drop)
        effective = layer_parameters(
            request, deployment.params, operation.params.defaults, deployment.forced_params
        )
        effective, dropped = apply_policy(
            effective, operation.params, drop_params=drop, provider=mapping.name
        )
        usage = None
        if effective.get("stream") and kind.generates and operation.stream is not None:
            effective, usage = ask_for_usage(effective, operation.params)
        if operation.inline_images:
            effective = await inline_remote_images(effective, self._images)
        label = f"{mapping.name} ({deployment.upstream_model})"
        headers = _deployment_headers(mapping.name, deployment, dropped, lacking)
        return Prepared(
            kind, mapping, operation, deployment, self._view(deployment), label, effective, headers, usage
        )

    async def _send(self, prepared: Prepared, trace: AttemptTrace | None) -> UpstreamResponse:
        operation, request, view = prepared.operation, prepared.request, prepared.view
        url = evaluate(operation.url, request, view)
        headers = dict(evaluate(operation.headers, request, view)) if operation.headers is not None else {}
        payload = evaluate(operation.request, request, view)
        if operation.request_format == "multipart":
            body, content_type = encode_multipart(payload)
            headers["content-type"] = content_type
        else:
            body = encode_json(payload)
            headers.setdefault("content-type", "application/json")
        return await self._client.send(
            operation.method,
            url,
            headers=headers,
            body=body,
            timeout=prepared.deployment.timeout or self._options.request_timeout,
            label=prepared.label,
            streaming=bool(request.get("stream")),
            trace=trace,
        )

    async def _read_answer(self, prepared: Prepared, response: UpstreamResponse) -> Outcome:
        """A whole JSON answer, translated back (passthrough too: it still refuses malformed JSON)."""
        operation, request, view, label = prepared.operation, prepared.request, prepared.view, prepared.label
        raw = await response.read(self._options.max_answer_bytes)
        answer = decode_json(raw, label)
        if operation.response is not None:
            if operation.response_error is not None:
                problem = evaluate(operation.response_error, answer, request, view)
                if problem:
                    raise mapped_error(problem, label, "refused to answer")
            answer = evaluate(operation.response, answer, request, view)
            raw = encode_json(answer)
        check_answer(prepared.kind.name, answer, label)
        costs, headers = prepared.deployment.costs, prepared.headers
        cost = add_cost_header(headers, costs, prepared.kind.name, request, answer) if costs else None
        usage = _usage_at(answer, prepared.kind.usage_at)
        return Outcome(Reply(body=raw, headers=headers, answer=answer), Tally(request, usage, cost))

    async def _read_stream(self, prepared: Prepared, response: UpstreamResponse) -> Outcome:
        """The stream, once its first bytes for the client are ready: a failure before them (HTML, a
        malformed first event, an empty stream) is raised, so the next deployment can be tried. Its
        usage comes with its end: priced by the usage log, not a header."""
        spec, usage, label = prepared.operation.stream, prepared.usage, prepared.label
        redactor = self._redactor()
        max_event = self._options.max_stream_event_bytes
        if spec is None or spec.passthrough:
            stream = passthrough_stream(response, label, usage, redactor, max_event_bytes=max_event)
        else:
            stream = translated_stream(
                response,
                spec,
                prepared.request,
                prepared.view,
                label,
                usage,
                redactor,
                max_event_bytes=max_event,
            )
        await wait_until_ready(stream)
        reply = Reply(stream=stream, headers=prepared.headers, media_type="text/event-stream")
        return Outcome(reply, Tally(prepared.request, stream=usage))

    async def _read_raw(self, prepared: Prepared, response: UpstreamResponse) -> Outcome:
        """The upstream's bytes as they arrive. Priced from the request (speech: a header before the audio),
        or, for a whole JSON answer (a json/verbose_json transcript), read first and priced from its usage."""
        media_type = response.headers.get("content-type", "application/octet-stream")
        costs, headers, request, name = (
            prepared.deployment.costs,
            prepared.headers,
            prepared.request,
            prepared.kind.name,
        )
        cost = add_cost_header(headers, costs, name, request, None) if costs else None
        if costs and cost is None and media_type.startswith("application/json") and not request.get("stream"):
            raw = await response.read(self._options.max_answer_bytes)
            try:
                answer = decode_json(raw, "")
            except UpstreamBadResponse:
                answer = None  # forwarded as it came, only not priced
            cost = add_cost_header(headers, costs, name, request, answer)
            return Outcome(Reply(body=raw, headers=headers, media_type=media_type), Tally(request, cost=cost))
        reply = Reply(stream=raw_stream(response), headers=headers, media_type=media_type)
        return Outcome(reply, Tally(request, cost=cost))

    def _operation(
        self, kind: OperationKind, deployment: Deployment, registry: MappingRegistry
    ) -> tuple[ProviderMapping, Operation]:
        mapping = registry.get(deployment.provider)
        operation = mapping.operations.get(kind.name) if mapping is not None else None
        if mapping is None or operation is None:
            raise InvalidRequest(
                f"the model {deployment.alias!r} is served by {deployment.provider!r}, which does not offer "
                f"{kind.title}",
                param="model",
                code="unsupported_operation",
            )
        return mapping, operation

    def _view(self, deployment: Deployment) -> dict[str, Any]:
        cached = self._views.get(deployment.id)
        if cached is None or cached[0] is not deployment:  # the table was reloaded
            cached = (deployment, deployment_view(deployment))
            self._views[deployment.id] = cached
        return cached[1]


def _usage_at(answer: Any, path: tuple[str, ...]) -> Any:
    """The answer's usage, where its operation keeps it (`usage`; a rerank's `meta.tokens`)."""
    for name in path:
        answer = answer.get(name) if isinstance(answer, dict) else None
    return answer


def _deployment_headers(
    provider: str, deployment: Deployment, dropped: list[str], lacking: list[str]
) -> dict[str, str]:
    """Which deployment answered (told apart when provider and model agree), and what was left out."""
    model_id = deployment.model_id or str(deployment.id)
    headers = {
        "x-turnout-deployment": f"{provider}/{deployment.upstream_model}",
        "x-turnout-deployment-id": model_id,
        "x-litellm-model-id": model_id,  # the name LiteLLM's clients read
    }
    parts = []
    if lacking:
        parts.append(f"removed {', '.join(lacking)}: {deployment.alias!r} does not support it")
    if dropped:
        parts.append(f"dropped parameters {provider} does not support: {', '.join(dropped)}")
    if parts:
        headers["x-turnout-warning"] = "; ".join(parts)
    return headers
