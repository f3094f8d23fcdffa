"""One request of any operation (chat, embeddings, audio, ...), canonical request to answer: the hot path.

alias -> for each deployment in order: capabilities -> parameter policy -> mapping -> upstream ->
mapping back. A deployment that fails before answering (unreachable, timeout, 429, 5xx) hands over to
the next one; once an answer has started, it is the answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.errors import InvalidRequest, ModelNotFound, PermissionDenied, TurnoutError, UpstreamBadResponse
from engine.keys.ring import VirtualKey
from engine.limits.admission import Limiter
from engine.limits.local import LocalCounters
from engine.mapping.loader import MappingRegistry
from engine.mapping.spec import Operation, ProviderMapping
from engine.pipeline.capabilities import gate_capabilities
from engine.pipeline.costs import add_cost_header
from engine.pipeline.dispatch import Dispatcher, hide_topology
from engine.pipeline.grace import StreamGrace
from engine.pipeline.images import ImageFetcher, inline_remote_images
from engine.pipeline.metering import REQUEST_ID_HEADER, Meter, NullSink, UsageSink, metered_stream
from engine.pipeline.model_name import ModelRename, renamed_stream
from engine.pipeline.multipart import encode_multipart
from engine.pipeline.params import apply_policy, layer_parameters
from engine.pipeline.reserve import reservation
from engine.pipeline.stream_usage import StreamUsage, ask_for_usage
from engine.pipeline.streaming import passthrough_stream, raw_stream, translated_stream, wait_until_ready
from engine.pipeline.translate import (
    decode_json,
    deployment_view,
    encode_json,
    evaluate,
    mapped_error,
    upstream_error,
)
from engine.pipeline.validate import decode_chat_request
from engine.redact import GENERIC, Redactor
from engine.routing.router import PRIVACY_LEVELS, Router
from engine.routing.table import Deployment, RoutingTable
from engine.upstream import UpstreamClient, UpstreamResponse

__all__ = ["Outcome", "Pipeline", "PipelineOptions", "stricter_privacy"]

# the alias modes (LiteLLM's model_info.mode) each operation serves
_MODES = {
    "chat": {"chat", "completion", "responses"},
    "completions": {"chat", "completion"},
    "embeddings": {"embedding"},
    "transcriptions": {"audio_transcription"},
    "translations": {"audio_transcription"},
    "speech": {"audio_speech"},
    "images": {"image_generation"},
}

_NOTHING = Decimal(0)

# streamed operations whose chunks carry token usage
_TOKEN_STREAMS = frozenset({"chat", "completions"})

# operations whose answers (and chunks) name a model
_NAMED = frozenset({"chat", "completions", "embeddings"})

# how errors name each operation
_OPERATION_NAMES = {
    "chat": "chat completions",
    "embeddings": "embeddings",
    "completions": "text completions",
    "transcriptions": "audio transcriptions",
    "translations": "audio translations",
    "speech": "speech",
    "images": "image generation",
}


# only the start of an upstream's error body is read: it names the problem (a message, a code)
ERROR_BODY_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    drop_params: bool = False
    answer_alias: bool = True  # answers name the model the client asked for (engine.pipeline.model_name)
    request_timeout: float = 600.0
    topology_headers_for_keys: bool = False  # virtual keys see which backends answered, too
    max_answer_bytes: int = 64 * 1024 * 1024  # a whole (non-stream) upstream answer
    max_stream_event_bytes: int = 16 * 1024 * 1024  # one event of an upstream stream


@dataclass(slots=True)
class Outcome:
    """The answer: a body, or a stream of bytes, its media type, and headers for the client; and, for the
    usage log, what the answer used and cost and the request as the deployment got it."""

    body: bytes | None = None
    stream: AsyncIterator[bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "application/json"
    usage: Any = None  # the answer's canonical `usage`, when it has one
    answer: Any = None  # the canonical answer (decoded), for counting when there is no usage
    cost: Decimal | None = None
    request: dict[str, Any] | None = None
    stream_usage: StreamUsage | None = None


class Pipeline:
    def __init__(
        self,
        registry: MappingRegistry,
        table: Callable[[], RoutingTable],
        client: UpstreamClient,
        options: PipelineOptions,
        router: Router | None = None,
        *,
        limiter: Limiter | None = None,
        sink: UsageSink | None = None,
        images: ImageFetcher | None = None,  # None: image URLs are refused, not fetched
        redactor: Callable[[], Redactor] = lambda: GENERIC,
    ) -> None:
        self._registry = registry
        self._table = table
        self._client = client
        self._options = options
        self._views: dict[int, tuple[Deployment, dict[str, Any]]] = {}
        self.router = router or Router()
        self._limiter = limiter or Limiter(LocalCounters())
        self._sink: UsageSink = sink or NullSink()
        self._images = images
        self._redactor = redactor  # the current one: rebuilt with the routing table
        self._dispatcher = Dispatcher(self.router, table, self.attempt, drop_params=options.drop_params)
        self.grace = StreamGrace()  # ends the event streams still running when a shutdown's grace ends

    async def complete(
        self, raw: bytes | bytearray, *, privacy: str | None = None, key: VirtualKey | None = None
    ) -> Outcome:
        """A chat completion from the client's JSON bytes (the canonical dialect's fast path)."""
        request = decode_chat_request(raw)
        del raw  # not held while the request is answered: a body can be tens of megabytes
        return await self.run("chat", request, privacy=privacy, key=key)

    async def run(
        self,
        operation: str,
        request: dict[str, Any],
        *,
        privacy: str | None = None,
        key: VirtualKey | None = None,
    ) -> Outcome:
        """One already-validated canonical request of `operation`; `privacy` limits the tiers it may reach.

        With a virtual `key`: only the aliases it may use (checked before the alias is looked up, so a
        key learns nothing of aliases it may not use), its privacy level when stricter than `privacy`,
        and its limits (counted in before the upstream call, out when the answer ends). Every request
        is metered: one usage record when it ends, however it ends.
        """
        meter = Meter(self._sink, operation, request, key)
        hide = key is not None and not self._options.topology_headers_for_keys
        try:
            outcome = await self._run(operation, request, privacy, key, meter)
        except TurnoutError as exc:
            exc.headers[REQUEST_ID_HEADER] = meter.request_id
            if hide:
                hide_topology(exc.headers)
            meter.failed(exc, exc.status)
            meter.close()
            raise
        except BaseException as exc:  # the client left (cancelled) or a bug: still one record
            meter.failed(None, 499 if isinstance(exc, asyncio.CancelledError) else 500)
            meter.close()
            raise
        outcome.headers[REQUEST_ID_HEADER] = meter.request_id
        if hide:
            hide_topology(outcome.headers)
        if meter.admission is not None:
            outcome.headers.update(meter.admission.headers())
        if self._options.answer_alias and operation in _NAMED:
            _name_the_alias(outcome, request["model"])
        if outcome.stream is not None:
            grace = self.grace if outcome.media_type == "text/event-stream" else None  # not audio
            outcome.stream = metered_stream(
                outcome.stream, meter, outcome.request, outcome.stream_usage, grace
            )
            return outcome
        meter.answered(outcome.usage, outcome.cost, outcome.request, outcome.answer)
        meter.close()
        return outcome

    def refused(
        self,
        operation: str,
        error: TurnoutError,
        key: VirtualKey | None,
        request: dict[str, Any] | None = None,
    ) -> None:
        """A request refused before it reached `run` (a malformed body, a bad upload): one record too."""
        if REQUEST_ID_HEADER in error.headers:  # `run` has recorded it already
            return
        meter = Meter(self._sink, operation, request or {}, key)
        error.headers[REQUEST_ID_HEADER] = meter.request_id
        meter.failed(error, error.status)
        meter.close()

    async def _run(
        self,
        operation: str,
        request: dict[str, Any],
        privacy: str | None,
        key: VirtualKey | None,
        meter: Meter,
    ) -> Outcome:
        from_key = False  # the privacy level is the key's own, stricter than the request's header
        if key is not None:
            if not key.allows(request["model"]):
                raise PermissionDenied(
                    f"this API key may not use the model {request['model']!r}",
                    param="model",
                    code="model_not_allowed",
                )
            stricter = stricter_privacy(privacy, key.privacy)
            from_key, privacy = stricter != privacy, stricter
        alias = self._table().get(request["model"])
        if alias is None:
            raise ModelNotFound(
                f"the model {request['model']!r} is not configured here; GET /v1/models lists the models",
                param="model",
            )
        if (
            alias.mode not in _MODES[operation] and alias.mode != "chat"
        ):  # "chat" is also the unlabelled default
            raise InvalidRequest(
                f"the model {alias.name!r} serves {alias.mode} requests, not {_OPERATION_NAMES[operation]}",
                param="model",
                code="unsupported_operation",
            )
        if key is not None:
            # a key with a budget sets aside what this request may cost, until it ends
            reserve = reservation(operation, request, alias) if key.max_budget is not None else _NOTHING
            meter.admission = await self._limiter.admit(key, meter.request_id, reserve)
        try:
            outcome: Outcome = await self._dispatcher.dispatch(
                operation, request, alias, privacy, meter=meter
            )
        except PermissionDenied as exc:
            if from_key and exc.code == "privacy_restricted":  # not the header's fault: say whose it is
                exc.message = exc.message.replace("privacy level", "this API key's privacy level", 1)
                exc.param = None
            raise
        return outcome

    def _view(self, deployment: Deployment) -> dict[str, Any]:
        cached = self._views.get(deployment.id)
        if cached is None or cached[0] is not deployment:  # the table was reloaded
            cached = (deployment, deployment_view(deployment))
            self._views[deployment.id] = cached
        return cached[1]

    def _operation(self, name: str, deployment: Deployment) -> tuple[ProviderMapping, Operation]:
        mapping = self._registry.get(deployment.provider)
        operation = mapping.operations.get(name) if mapping is not None else None
        if mapping is None or operation is None:
            raise InvalidRequest(
                f"the model {deployment.alias!r} is served by {deployment.provider!r}, which does not offer "
                f"{_OPERATION_NAMES.get(name, name)}",
                param="model",
                code="unsupported_operation",
            )
        return mapping, operation

    async def attempt(self, name: str, request: dict[str, Any], deployment: Deployment) -> Outcome:
        """One try of `request` on this deployment, without routing (the dispatcher's step; the probe).

        Its errors name no credential: backends echo the key they were sent in their error text."""
        try:
            return await self._attempt(name, request, deployment)
        except TurnoutError as exc:
            self._redactor().error(exc)
            raise

    async def _attempt(self, name: str, request: dict[str, Any], deployment: Deployment) -> Outcome:
        mapping, operation = self._operation(name, deployment)
        if request.get("stream") and operation.stream is None and not operation.raw_response:
            raise InvalidRequest(
                f"{mapping.name} cannot stream {_OPERATION_NAMES.get(name, name)}", param="stream"
            )
        label = f"{mapping.name} ({deployment.upstream_model})"
        view = self._view(deployment)
        request, lacking = gate_capabilities(request, deployment, drop_params=self._options.drop_params)
        effective = layer_parameters(
            request, deployment.params, operation.params.defaults, deployment.forced_params
        )
        effective, dropped = apply_policy(
            effective, operation.params, drop_params=self._options.drop_params, provider=mapping.name
        )
        stream_usage = None
        if effective.get("stream") and name in _TOKEN_STREAMS and operation.stream is not None:
            effective, stream_usage = ask_for_usage(effective, operation.params)
        if operation.inline_images:
            effective = await inline_remote_images(effective, self._images)
        response = await self._send(operation, effective, view, deployment, label)
        model_id = deployment.model_id or str(deployment.id)  # told apart when provider and model agree
        headers = {
            "x-turnout-deployment": f"{mapping.name}/{deployment.upstream_model}",
            "x-turnout-deployment-id": model_id,
            "x-litellm-model-id": model_id,  # the name LiteLLM's clients read
        }
        warning = _warning(mapping.name, deployment, dropped, lacking)
        if warning:
            headers["x-turnout-warning"] = warning
        if response.status >= 400:
            raw = await response.read_start(ERROR_BODY_BYTES)
            raise upstream_error(mapping.errors, response.status, raw, response.headers, view, label)
        if operation.raw_response:
            return await self._raw(name, response, effective, deployment, headers)
        if effective.get("stream"):  # its usage comes with its end: priced by the usage log, not a header
            stream = await self._stream(operation, response, effective, view, label, stream_usage)
            return Outcome(
                stream=stream,
                headers=headers,
                media_type="text/event-stream",
                request=effective,
                stream_usage=stream_usage,
            )
        raw = await response.read(self._options.max_answer_bytes)
        answer = decode_json(raw, label)  # passthrough too: it still refuses malformed JSON
        if operation.response is not None:
            if operation.response_error is not None:
                problem = evaluate(operation.response_error, answer, effective, view)
                if problem:
                    raise mapped_error(problem, label, "refused to answer")
            answer = evaluate(operation.response, answer, effective, view)
            raw = encode_json(answer)
        cost = (
            add_cost_header(headers, deployment.costs, name, effective, answer) if deployment.costs else None
        )
        usage = answer.get("usage") if isinstance(answer, dict) else None
        return Outcome(body=raw, headers=headers, usage=usage, answer=answer, cost=cost, request=effective)

    async def _raw(
        self,
        name: str,
        response: UpstreamResponse,
        request: dict[str, Any],
        deployment: Deployment,
        headers: dict[str, str],
    ) -> Outcome:
        """The upstream's bytes as they arrive. Priced from the request (speech: a header before the audio),
        or, for a whole JSON answer (a json/verbose_json transcript), read first and priced from its usage."""
        media_type = response.headers.get("content-type", "application/octet-stream")
        cost = add_cost_header(headers, deployment.costs, name, request, None) if deployment.costs else None
        if (
            deployment.costs
            and cost is None
            and media_type.startswith("application/json")
            and not request.get("stream")
        ):
            raw = await response.read(self._options.max_answer_bytes)
            try:
                answer = decode_json(raw, "")
            except UpstreamBadResponse:
                answer = None  # forwarded as it came, only not priced
            cost = add_cost_header(headers, deployment.costs, name, request, answer)
            return Outcome(body=raw, headers=headers, media_type=media_type, cost=cost, request=request)
        outcome = Outcome(
            stream=raw_stream(response), headers=headers, media_type=media_type, request=request
        )
        outcome.cost = cost
        return outcome

    async def _send(
        self,
        operation: Operation,
        request: dict[str, Any],
        view: dict[str, Any],
        deployment: Deployment,
        label: str,
    ) -> UpstreamResponse:
        url = evaluate(operation.url, request, view)
        headers = dict(evaluate(operation.headers, request, view)) if operation.headers is not None else {}
        payload = evaluate(operation.request, request, view)
        if operation.request_format == "multipart":
            body, content_type = encode_multipart(payload)
            headers["content-type"] = content_type
        else:
            body = encode_json(payload)
            headers.setdefault("content-type", "application/json")
        timeout = deployment.timeout or self._options.request_timeout
        return await self._client.send(
            operation.method,
            url,
            headers=headers,
            body=body,
            timeout=timeout,
            label=label,
            streaming=bool(request.get("stream")),
        )

    async def _stream(
        self,
        operation: Operation,
        response: UpstreamResponse,
        request: dict[str, Any],
        view: dict[str, Any],
        label: str,
        usage: StreamUsage | None,
    ) -> AsyncIterator[bytes]:
        """The stream, once its first bytes for the client are ready: a failure before them (HTML, a
        malformed first event, an empty stream) is raised, so the next deployment can be tried."""
        spec = operation.stream
        redactor = self._redactor()
        max_event = self._options.max_stream_event_bytes
        if spec is None or spec.passthrough:
            stream = passthrough_stream(response, label, usage, redactor, max_event_bytes=max_event)
        else:
            stream = translated_stream(
                response, spec, request, view, label, usage, redactor, max_event_bytes=max_event
            )
        await wait_until_ready(stream)
        return stream


def _name_the_alias(outcome: Outcome, asked: str) -> None:
    """The answer names the model the client asked for, not the backend's (after the mapping, so a
    mapping's translation does not depend on it). Raw answers (transcripts) are left as they are."""
    rename = ModelRename(asked)
    if outcome.stream is None:
        if outcome.body is not None and outcome.answer is not None:
            outcome.body = rename.answer(outcome.body, outcome.answer)
    elif outcome.media_type == "text/event-stream":
        outcome.stream = renamed_stream(outcome.stream, rename)


def _warning(provider: str, deployment: Deployment, dropped: list[str], lacking: list[str]) -> str:
    parts = []
    if lacking:
        parts.append(f"removed {', '.join(lacking)}: {deployment.alias!r} does not support it")
    if dropped:
        parts.append(f"dropped parameters {provider} does not support: {', '.join(dropped)}")
    return "; ".join(parts)


def stricter_privacy(requested: str | None, key: str | None) -> str | None:
    """The privacy level allowing fewer tiers: the request's header or the key's own. An unknown header
    value is kept, so the dispatcher rejects it as it would without a key."""
    if key is None:
        return requested
    tiers = PRIVACY_LEVELS.get(requested.strip().lower()) if requested is not None else None
    if requested is not None and (tiers is None or tiers <= PRIVACY_LEVELS[key]):
        return requested
    return key
