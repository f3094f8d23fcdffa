"""The usage of one request as the pipeline sees it: who asked, what was tried, what it used and cost.

A `Meter` is opened when a request reaches the pipeline and closed exactly once: when the answer is
complete, when its stream ends (or the client leaves), or when it fails. Closing hands the finished
`UsageRecord` to the `UsageSink` (the request log and the metrics) and releases the key's limits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from engine.canonical import OPERATIONS, OperationKind
from engine.errors import MappingFailed, TurnoutError, UpstreamError
from engine.keys.ring import VirtualKey
from engine.limits.admission import Admission
from engine.logs.context import current_request_id, new_request_id
from engine.pipeline.costs import cost_of
from engine.pipeline.grace import StreamGrace
from engine.pipeline.outcome import Tally
from engine.pipeline.stream_events import StreamError, StreamPiece
from engine.pipeline.stream_usage import StreamUsage
from engine.pipeline.tokens import answer_characters, estimate_prompt_tokens, tokens
from engine.pipeline.translate import report_mapping_failure
from engine.routing.table import Deployment
from engine.tracing import RequestTrace
from engine.usage.record import UsageRecord

__all__ = ["REQUEST_ID_HEADER", "Meter", "NullSink", "UsageSink", "metered_stream"]

REQUEST_ID_HEADER = "x-turnout-request-id"

log = logging.getLogger("turnout.requests")


class UsageSink(Protocol):
    def started(self) -> None: ...

    def finished(self, record: UsageRecord) -> None: ...

    def upstream_failed(self, provider: str, deployment_id: int, status: int, code: str | None) -> None: ...


class NullSink:
    """Records nothing (tools and tests that run the pipeline without a gateway)."""

    def started(self) -> None:
        pass

    def finished(self, record: UsageRecord) -> None:
        pass

    def upstream_failed(self, provider: str, deployment_id: int, status: int, code: str | None) -> None:
        pass


class Meter:
    __slots__ = ("_kind", "_sink", "_started", "admission", "deployment", "record", "request", "trace")

    def __init__(self, sink: UsageSink, operation: str, request: Mapping[str, Any], key: VirtualKey | None):
        self._sink = sink
        self._kind: OperationKind = OPERATIONS[operation]
        self._started = time.perf_counter()
        self.admission: Admission | None = None
        self.deployment: Deployment | None = None
        self.request: Mapping[str, Any] = request  # as sent to the deployment that answered, once known
        self.trace: RequestTrace | None = None  # the request's span (engine.tracing), ended with the record
        model = request.get("model")
        self.record = UsageRecord(
            # the HTTP request's id (engine.logs.context): the same in the logs, the header and the row
            request_id=current_request_id() or new_request_id(),
            created_at=datetime.now(UTC),
            operation=operation,
            alias=model if isinstance(model, str) else "",
            key_id=key.id if key is not None else None,
            stream=bool(request.get("stream")),
        )
        sink.started()

    @property
    def request_id(self) -> str:
        return self.record.request_id

    def tried(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.record.attempts += 1

    def upstream_failed(self, deployment: Deployment, error: UpstreamError) -> None:
        self._sink.upstream_failed(deployment.provider, deployment.id, error.status, error.code)
        # a backend in trouble or refusing this deployment's credentials or model is the operator's
        # business (WARNING); one that refused this request only is the client's (DEBUG)
        level = logging.WARNING if error.retryable or error.misconfigured else logging.DEBUG
        if log.isEnabledFor(level):
            log.log(
                level,
                "deployment %d (%s %s) failed: %d %s: %.300s",
                deployment.id,
                deployment.provider,
                deployment.upstream_model,
                error.status,
                error.code or error.type,
                error.message,
            )

    def first_chunk(self) -> None:
        self.record.ttft_ms = self._elapsed_ms()

    def answered(self, tally: Tally, answer: Any = None) -> None:
        """A whole answer: its usage and cost as reported (else `answer`'s text counted, and priced)."""
        self.request = tally.request
        if self._usage(tally.usage) or not self._kind.counts_tokens:
            self.record.cost = tally.cost
        else:
            self._estimate(answer_characters(answer))
            if tally.cost is not None:  # priced on other counts than tokens (a rerank's search units)
                self.record.cost = tally.cost

    def streamed(self, usage: StreamUsage | None) -> None:
        """A stream's end: the usage it carried (else its text counted), its cost, an error it reported."""
        if usage is None:
            return
        if usage.error is not None:
            self.record.error_type, self.record.error_code = usage.error
        if self._usage(usage.usage):
            self.record.cost = self._price(usage.usage)
        else:
            self._estimate(usage.characters)

    def failed(self, error: TurnoutError | None, status: int) -> None:
        record = self.record
        record.status = status
        if error is not None:
            record.error_type, record.error_code = error.type, error.code
        else:
            record.error_type = "client_disconnected" if status == 499 else "api_error"

    def close(self) -> UsageRecord:
        """The request is over: its record to the sink, the key's limits released (neither waits)."""
        record = self.record
        record.latency_ms = self._elapsed_ms()
        deployment = self.deployment
        if deployment is not None:
            record.deployment_id = deployment.id
            record.provider = deployment.provider
            record.upstream_model = deployment.upstream_model
        self._sink.finished(record)
        if self.admission is not None:
            self.admission.release(record.total_tokens, record.cost)
        if self.trace is not None:
            self.trace.end(record)
        if log.isEnabledFor(logging.DEBUG):  # nothing formatted unless someone reads it
            log.debug(
                "%s %.200s: %d in %.0f ms, %d attempt(s), last %s",  # the alias is the client's text
                record.operation,
                record.alias,
                record.status,
                record.latency_ms,
                record.attempts,
                record.provider or "none",
            )
        return record

    def _elapsed_ms(self) -> float:
        return round((time.perf_counter() - self._started) * 1000, 3)

    def _usage(self, usage: Any) -> bool:
        """Take the upstream's counts; False when there are none."""
        if not isinstance(usage, Mapping):
            return False
        record = self.record
        record.prompt_tokens = _count(usage.get("prompt_tokens", usage.get("input_tokens")))
        record.completion_tokens = _count(usage.get("completion_tokens", usage.get("output_tokens")))
        record.cached_tokens = _count(_detail(usage, "prompt_tokens_details", "cached_tokens"))
        record.reasoning_tokens = _count(_detail(usage, "completion_tokens_details", "reasoning_tokens"))
        return record.prompt_tokens is not None or record.completion_tokens is not None

    def _estimate(self, completion_characters: int) -> None:
        """No usage came: count the request and the answer's text, and price the counts. The record
        says they are estimated; budgets need a cost even from backends that never report usage."""
        record = self.record
        record.prompt_tokens = estimate_prompt_tokens(dict(self.request))
        if self._kind.generates:
            record.completion_tokens = tokens(completion_characters)
        record.tokens_estimated = True
        record.cost = self._price(
            {"prompt_tokens": record.prompt_tokens, "completion_tokens": record.completion_tokens}
        )

    def _price(self, usage: Any) -> Decimal | None:
        deployment = self.deployment
        if deployment is None or not deployment.costs:
            return None
        return cost_of(deployment.costs, self.record.operation, self.request, {"usage": usage})


async def metered_stream(
    stream: AsyncIterator[StreamPiece], meter: Meter, tally: Tally | None, grace: StreamGrace | None = None
) -> AsyncIterator[StreamPiece]:
    """The stream, metered: time to its first chunk, its usage at the end, one record however it ends.
    With `grace` (event streams), one still running when the shutdown grace ends says so and ends."""
    first = True
    running = grace.enter() if grace is not None else None
    try:
        async for chunk in stream:
            if first:
                meter.first_chunk()
                first = False
            if type(chunk) is StreamError and isinstance(chunk.error, MappingFailed):
                report_mapping_failure(chunk.error, meter.request_id)  # named in the event the client gets
            yield chunk
    except (asyncio.CancelledError, GeneratorExit) as exc:
        if running is None or not running.ended:
            meter.failed(None, 499)  # the client went away mid-stream (the answer had begun: not 5xx)
            raise
        farewell = running.farewell()
        meter.failed(farewell.error, farewell.error.status)
        if not running.resume(exc):
            raise
        yield farewell
    except Exception:
        meter.failed(None, 500)  # a bug: the streams below end upstream failures with an error event
        raise
    finally:
        if running is not None:
            running.leave()
        if tally is not None:
            meter.request = tally.request
        meter.streamed(tally.stream if tally is not None else None)
        meter.close()  # nothing awaited: a closing generator must not suspend


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _detail(usage: Mapping[str, Any], details: str, name: str) -> Any:
    found = usage.get(details)
    return found.get(name) if isinstance(found, Mapping) else None
