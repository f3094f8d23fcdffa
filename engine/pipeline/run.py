"""One request of any operation (chat, embeddings, audio, ...), canonical request to answer: the hot path.

    Pipeline.run                  meter the request: one usage record, however it ends
      _run_handling_key           a virtual key's aliases and privacy level, the alias, the key's limits
        Dispatcher.dispatch       the router's order, retries, cooldowns, fallbacks (engine.pipeline.dispatch)
          Attempter.attempt       one deployment: prepare, send, read (engine.pipeline.attempt)
      _reply                      the client's headers, the alias's name, the stream metered

A deployment that fails before answering (unreachable, timeout, 429, 5xx) hands over to the next one;
once an answer has started, it is the answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.canonical import OPERATIONS
from engine.errors import InvalidRequest, MappingFailed, ModelNotFound, PermissionDenied, TurnoutError
from engine.keys.ring import VirtualKey
from engine.limits.admission import Limiter
from engine.mapping.loader import MappingRegistry
from engine.pipeline.call import Call
from engine.pipeline.dispatch import Dispatcher, hide_topology
from engine.pipeline.grace import StreamGrace
from engine.pipeline.metering import REQUEST_ID_HEADER, Meter, UsageSink, metered_stream
from engine.pipeline.model_name import ModelRename, renamed_stream
from engine.pipeline.options import PipelineOptions
from engine.pipeline.outcome import Outcome, Reply
from engine.pipeline.reserve import reservation
from engine.pipeline.translate import report_mapping_failure
from engine.pipeline.validate import decode_chat_request
from engine.routing.router import PRIVACY_LEVELS
from engine.routing.table import Alias, RoutingTable
from engine.tracing import Tracer

if TYPE_CHECKING:
    from engine.cache import ResponseCache

__all__ = ["Pipeline", "stricter_privacy"]

_NOTHING = Decimal(0)


class Pipeline:
    def __init__(
        self,
        table: Callable[[], RoutingTable],
        dispatcher: Dispatcher,
        options: PipelineOptions,
        *,
        limiter: Limiter,
        sink: UsageSink,
        grace: StreamGrace,
        cache: ResponseCache | None = None,
        registry: Callable[[], MappingRegistry | None] = lambda: None,
        tracer: Tracer | None = None,  # None: tracing is off
    ) -> None:
        self._table = table
        self._registry = registry  # the provider mappings in force (None: the attempter's own)
        self._dispatcher = dispatcher
        self._options = options
        self._limiter = limiter
        self._sink = sink
        self._grace = grace  # ends the event streams still running when a shutdown's grace ends
        self._tracer = tracer
        self._cache = cache  # the response cache (engine.cache); None: off, and never asked

    @property
    def caches(self) -> bool:
        """Whether a response cache answers (routes read the client's Cache-Control header only then)."""
        return self._cache is not None

    async def complete(
        self,
        raw: bytes | bytearray,
        *,
        privacy: str | None = None,
        key: VirtualKey | None = None,
        cache_control: str | None = None,
    ) -> Reply:
        """A chat completion from the client's JSON bytes (the canonical dialect's fast path)."""
        request = decode_chat_request(raw)
        del raw  # not held while the request is answered: a body can be tens of megabytes
        return await self.run("chat", request, privacy=privacy, key=key, cache_control=cache_control)

    async def run(
        self,
        operation: str,
        request: dict[str, Any],
        *,
        privacy: str | None = None,
        key: VirtualKey | None = None,
        cache_control: str | None = None,
        registry: MappingRegistry | None = None,
    ) -> Reply:
        """One already-validated canonical request of `operation`; `privacy` limits the tiers it may reach.

        With a virtual `key`: only the aliases it may use (checked before the alias is looked up, so a
        key learns nothing of aliases it may not use), its privacy level when stricter than `privacy`,
        and its limits (counted in before the upstream call, out when the answer ends). Every request
        is metered: one usage record when it ends, however it ends.
        """
        meter = Meter(self._sink, operation, request, key)
        if self._tracer is not None:
            meter.trace = self._tracer.request(operation, meter.record.alias, meter.request_id)
        # the mappings this request keeps to its end: a dialect route's own version, or those in force now
        call = Call(
            OPERATIONS[operation],
            request,
            meter,
            privacy,
            cache_control=cache_control,
            registry=registry or self._registry(),
        )
        try:
            outcome = await self._run_handling_key(call, key)
        except TurnoutError as exc:
            if key is not None and not self._options.topology_headers_for_keys:
                hide_topology(exc.headers)
            self._record_refusal(exc, meter)
            raise
        except BaseException as exc:  # the client left (cancelled) or a bug: still one record
            meter.failed(None, 499 if isinstance(exc, asyncio.CancelledError) else 500)
            meter.close()
            raise
        return self._reply(call, outcome, key)

    def refused(
        self,
        operation: str,
        error: TurnoutError,
        key: VirtualKey | None,
        request: dict[str, Any] | None = None,
    ) -> None:
        """A request refused before it reached `run` (a malformed body, a bad upload): one record too."""
        if error.request_id is None:  # else `run` has recorded it already
            self._record_refusal(error, Meter(self._sink, operation, request or {}, key))

    async def _run_handling_key(self, call: Call, key: VirtualKey | None) -> Outcome:
        if key is not None:
            model = call.request["model"]
            if not key.allows(model):
                raise PermissionDenied(
                    f"this API key may not use the model {model!r}", param="model", code="model_not_allowed"
                )
            stricter = stricter_privacy(call.privacy, key.privacy)
            if stricter != call.privacy:
                call.privacy, call.privacy_is_keys = stricter, True
        alias = self._alias(call)
        if key is not None:
            # a key with a budget sets aside what this request may cost, until it ends
            reserve = (
                reservation(call.kind.name, call.request, alias) if key.max_budget is not None else _NOTHING
            )
            call.meter.admission = await self._limiter.admit(key, call.meter.request_id, reserve)
        if self._cache is not None:  # a hit has passed the key, its models and its limits, as above
            return await self._cache.serve(call, key, lambda: self._dispatcher.dispatch(call, alias))
        return await self._dispatcher.dispatch(call, alias)

    def _alias(self, call: Call) -> Alias:
        """The alias the request names, if it serves this operation."""
        model = call.request["model"]
        alias = self._table().get(model)
        if alias is None:
            raise ModelNotFound(
                f"the model {model!r} is not configured here; GET /v1/models lists the models", param="model"
            )
        if alias.mode not in call.kind.modes and alias.mode != "chat":  # "chat": also the unlabelled default
            raise InvalidRequest(
                f"the model {alias.name!r} serves {alias.mode} requests, not {call.kind.title}",
                param="model",
                code="unsupported_operation",
            )
        return alias

    def _reply(self, call: Call, outcome: Outcome, key: VirtualKey | None) -> Reply:
        """The client's part of the outcome: its headers, the alias's name; metered as it ends."""
        reply, meter = outcome.reply, call.meter
        reply.headers[REQUEST_ID_HEADER] = meter.request_id
        if key is not None and not self._options.topology_headers_for_keys:
            hide_topology(reply.headers)
        if meter.admission is not None:
            reply.headers.update(meter.admission.headers())
        if self._options.answer_alias and call.kind.names_model:
            _name_the_alias(reply, call.request["model"])
        if reply.stream is not None:
            grace = self._grace if reply.media_type == "text/event-stream" else None  # not audio
            reply.stream = metered_stream(reply.stream, meter, outcome.tally, grace)
            return reply
        meter.answered(outcome.tally, reply.answer)
        meter.close()
        return reply

    @staticmethod
    def _record_refusal(error: TurnoutError, meter: Meter) -> None:
        if isinstance(error, MappingFailed):  # named and logged under the id the client gets
            report_mapping_failure(error, meter.request_id)
        error.request_id = meter.request_id
        error.headers[REQUEST_ID_HEADER] = meter.request_id
        meter.failed(error, error.status)
        meter.close()


def _name_the_alias(reply: Reply, asked: str) -> None:
    """The answer names the model the client asked for, not the backend's (after the mapping, so a
    mapping's translation does not depend on it). Raw answers (transcripts) are left as they are."""
    rename = ModelRename(asked)
    if reply.stream is None:
        answer = reply.answer
        if reply.body is not None and answer is not None:
            reply.body = rename.answer(reply.body, answer)
            if isinstance(answer, dict) and isinstance(answer.get("model"), str) and answer["model"] != asked:
                reply.answer = {**answer, "model": asked}  # as the body now says
    elif reply.media_type == "text/event-stream":
        reply.stream = renamed_stream(reply.stream, rename)


def stricter_privacy(requested: str | None, key: str | None) -> str | None:
    """The privacy level allowing fewer tiers: the request's header or the key's own. An unknown header
    value is kept, so the dispatcher rejects it as it would without a key."""
    if key is None:
        return requested
    tiers = PRIVACY_LEVELS.get(requested.strip().lower()) if requested is not None else None
    if requested is not None and (tiers is None or tiers <= PRIVACY_LEVELS[key]):
        return requested
    return key
