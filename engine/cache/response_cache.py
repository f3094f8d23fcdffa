"""The response cache's one hook in the pipeline: answer from the cache, or dispatch and keep the answer.

    Pipeline._run_handling_key       key, model access, alias, limits admitted (a hit passes them all)
      ResponseCache.serve            the request's controls; its entry's key (engine.cache.key)
        hit   -> the kept answer (a stream as the same pieces), cost 0, no upstream call
        miss  -> Dispatcher.dispatch; a successful answer kept (a stream once it completed)

A hit is metered like any answer: one request-log row, `cache_hit` true, no tokens and cost 0 (the
backend did no work), so it counts against a key's rpm and parallel limits but not its tpm or budget.
The pipeline holds None when caching is off and makes no other check.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import msgspec

from engine.cache.controls import read_controls
from engine.cache.entry import Entry, StreamRecorder, decode_entry, encode_entry, replay
from engine.cache.key import entry_key, scope_of
from engine.cache.metrics import CacheMetrics
from engine.cache.options import CacheOptions
from engine.cache.stores import CacheStore, CacheUnavailable
from engine.keys.ring import VirtualKey
from engine.pipeline.call import Call
from engine.pipeline.costs import COST_HEADER
from engine.pipeline.outcome import Outcome, Reply, Tally

__all__ = ["CACHE_HEADER", "ResponseCache"]

log = logging.getLogger("turnout.cache")

CACHE_HEADER = "x-turnout-cache"
_WARNING = "x-turnout-warning"
_ZERO = Decimal(0)
_decode_json = msgspec.json.Decoder().decode


class ResponseCache:
    def __init__(
        self,
        store: CacheStore,
        options: CacheOptions,
        *,
        clock: Callable[[], float] = time.time,
        metrics: CacheMetrics | None = None,
    ) -> None:
        self._store = store
        self._options = options
        self._clock = clock  # the gateway's: entries expire and age by it
        self.metrics = metrics or CacheMetrics()
        self._storing: set[asyncio.Future[None]] = set()  # completed streams being stored

    async def serve(
        self, call: Call, key: VirtualKey | None, dispatch: Callable[[], Awaitable[Outcome]]
    ) -> Outcome:
        """The answer to `call`: from the cache when it holds one for this tenant and request."""
        request = call.request
        field = request.get("cache")
        if "cache" in request:  # LiteLLM's control field: never sent upstream
            call.request = {name: value for name, value in request.items() if name != "cache"}
        if call.kind.name not in self._options.operations:
            return await dispatch()
        controls = read_controls(call.cache_control, field, self._options.max_ttl)
        alias = str(call.request["model"])
        scope = scope_of(key, shared=self._options.shared)
        try:
            name = entry_key(scope, controls.namespace, call.kind.name, call.privacy, call.request)
        except TypeError:  # a value JSON cannot hold: nothing to match it by
            return await dispatch()
        if self._options.namespace:
            name = f"{self._options.namespace}:{name}"
        if controls.read:
            entry = await self._find(name, controls.max_age)
            if entry is not None:
                self.metrics.hit(alias)
                return _answer(call, entry)
        self.metrics.miss(alias)
        outcome = await dispatch()
        outcome.reply.headers[CACHE_HEADER] = "miss"
        if controls.write:
            ttl = self._options.ttl if controls.ttl is None else controls.ttl
            await self._keep(outcome, name, alias, ttl)
        return outcome

    async def _find(self, name: str, max_age: float | None) -> Entry | None:
        try:
            data = await self._store.get(name)
        except CacheUnavailable:
            self.metrics.failed("unavailable")
            return None
        entry = decode_entry(data) if data is not None else None
        if entry is None:
            return None
        now = self._clock()
        if entry.expires_at <= now or (max_age is not None and now - entry.stored_at > max_age):
            return None
        return entry

    async def _keep(self, outcome: Outcome, name: str, alias: str, ttl: float) -> None:
        reply = outcome.reply
        warning = reply.headers.get(_WARNING)
        limit = self._options.max_entry_bytes
        if reply.stream is None:
            if reply.body is None or not reply.media_type.startswith("application/json"):
                return  # raw answers (a transcript's text) are not kept
            if len(reply.body) > limit:
                self.metrics.failed("too_large")
                return
            now = self._clock()
            entry = Entry(
                now, now + ttl, reply.media_type, bytes(reply.body), reply.answer is not None, warning=warning
            )
            await self._put(name, entry, ttl, alias)
        elif reply.media_type == "text/event-stream":

            def completed(pieces: list[tuple[int, bytes]]) -> None:
                now = self._clock()
                entry = Entry(now, now + ttl, reply.media_type, pieces=pieces, warning=warning)
                task = asyncio.ensure_future(self._put(name, entry, ttl, alias))
                self._storing.add(task)  # held until done: the loop keeps only weak references
                task.add_done_callback(self._storing.discard)

            too_large = lambda: self.metrics.failed("too_large")  # noqa: E731
            recorder = StreamRecorder(outcome.tally, limit, completed, too_large)
            reply.stream = recorder.record(reply.stream)

    async def _put(self, name: str, entry: Entry, ttl: float, alias: str) -> None:
        data = encode_entry(entry)
        if len(data) > self._options.max_entry_bytes:
            self.metrics.failed("too_large")
            return
        try:
            await self._store.put(name, data, ttl)
        except CacheUnavailable:
            self.metrics.failed("unavailable")
            return
        self.metrics.stored(alias)

    async def close(self) -> None:
        if self._storing:
            await asyncio.gather(*self._storing, return_exceptions=True)
        await self._store.close()


def _answer(call: Call, entry: Entry) -> Outcome:
    """The kept answer as this request's outcome, metered as a hit: no tokens, cost 0."""
    record = call.meter.record
    record.cache_hit = True
    record.prompt_tokens = record.completion_tokens = 0
    record.cost = _ZERO
    headers = {CACHE_HEADER: "hit", "x-turnout-attempts": "0", COST_HEADER: "0"}
    if entry.warning:
        headers[_WARNING] = entry.warning
    # the usage metering reads for a whole answer; a stream's (none) leaves the record as set here
    tally = Tally(request=call.request, usage={"prompt_tokens": 0, "completion_tokens": 0}, cost=_ZERO)
    if entry.pieces is not None:
        reply = Reply(stream=replay(entry.pieces), headers=headers, media_type=entry.media_type)
    else:
        answer: Any = _decode_json(entry.body) if entry.answer_is_body and entry.body is not None else None
        reply = Reply(body=entry.body, headers=headers, media_type=entry.media_type, answer=answer)
    return Outcome(reply, tally)
