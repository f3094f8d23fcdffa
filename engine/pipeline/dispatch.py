"""Trying deployments: the router's order, retries with backoff, cooldowns, and fallbacks by reason.

A retryable failure (unreachable, timeout, an unusable answer, 408, 429, 5xx, 529) before anything
reached the client moves on to the next deployment; past one try per deployment, `num_retries` more
tries cycle through them with backoff. A deployment that refuses the gateway's own credentials or model
(401, 403, 404) hands over too, but is not tried again for this request. When every try failed, the
alias's fallbacks for that kind of failure (context window, content policy, or any) are tried in
order, one level deep. Headers tell the client what was tried.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from engine.canonical import OperationKind
from engine.errors import InvalidRequest, PermissionDenied, TurnoutError, UpstreamError
from engine.mapping.loader import MappingRegistry
from engine.pipeline.call import Call
from engine.pipeline.capabilities import gate_capabilities, requested_capabilities
from engine.pipeline.outcome import Outcome, Tally
from engine.pipeline.stream_events import StreamPiece
from engine.pipeline.tokens import estimate_prompt_tokens
from engine.routing.router import PRIVACY_LEVELS, Router, Selection
from engine.routing.table import Alias, Deployment, RouterSettings, RoutingTable
from engine.tracing import AttemptTrace

__all__ = ["TOPOLOGY_HEADERS", "Attempts", "Dispatcher", "hide_topology"]


class Attempts(Protocol):
    """One try of a request on one deployment, without routing (engine.pipeline.attempt.Attempter)."""

    async def attempt(
        self,
        kind: OperationKind,
        request: dict[str, Any],
        deployment: Deployment,
        registry: MappingRegistry | None = None,
        trace: AttemptTrace | None = None,
    ) -> Outcome: ...


MAX_BACKOFF = 10.0  # seconds, also the most an upstream's retry-after is honoured for before retrying
# headers that show the backends behind an alias (which answered, what was tried, which alias stood in):
# the operator's view, not a virtual key's (engine.pipeline.run sends them to the master key only)
TOPOLOGY_HEADERS = (
    "x-turnout-deployment",
    "x-turnout-deployment-id",
    "x-litellm-model-id",
    "x-turnout-attempted",
    "x-turnout-fallback",
)
_CONTEXT_CODES = {"context_length_exceeded"}
_CONTENT_CODES = {"content_filter", "content_policy_violation"}


class Dispatcher:
    def __init__(
        self, router: Router, table: Callable[[], RoutingTable], attempts: Attempts, *, drop_params: bool
    ):
        self._router = router
        self._table = table
        self._attempts = attempts
        self._drop_params = drop_params

    async def dispatch(self, call: Call, alias: Alias, *, depth: int = 0) -> Outcome:
        settings = self._table().settings
        # the estimate walks every message: only for the context-window check and tpm accounting
        needs_tokens = settings.enable_pre_call_checks or any(d.limits.tpm for d in alias.deployments)
        prompt_tokens = estimate_prompt_tokens(call.request) if needs_tokens else 0
        selection = self._select(call, alias, settings, prompt_tokens)
        if not selection.ordered:
            return await self._nothing_to_try(call, alias, selection, depth)
        tried: list[str] = []
        # a lone deployment never cools down (as in LiteLLM): there is nothing to fail over to, and a
        # cooldown would only turn its own errors into 503s
        alone = len(alias.deployments) == 1
        budget = max(len(selection.ordered), 1 + settings.num_retries)
        last: UpstreamError | None = None
        refused: set[int] = set()  # deployments that refused the gateway's own credentials or model
        for n in range(budget):
            deployment = selection.ordered[n % len(selection.ordered)]
            if deployment.id in refused:
                continue
            if n >= len(selection.ordered):
                await asyncio.sleep(_backoff(n - len(selection.ordered), last, settings))
            try:
                outcome = await self._try(call, deployment, settings, prompt_tokens, alone)
            except UpstreamError as exc:
                tried.append(f"{deployment.provider}/{deployment.upstream_model}={exc.status}")
                last = exc
                if exc.misconfigured:
                    refused.add(deployment.id)
                elif not exc.retryable:
                    break
                continue
            tried.append(f"{deployment.provider}/{deployment.upstream_model}=ok")
            headers = outcome.reply.headers
            headers["x-turnout-attempts"] = str(len(tried))
            headers["x-turnout-attempted"] = ", ".join(tried)
            return outcome
        assert last is not None
        last.headers.setdefault("x-turnout-attempted", ", ".join(tried))
        return await self._fall_back(call, alias, last, depth)

    def _select(self, call: Call, alias: Alias, settings: RouterSettings, prompt_tokens: int) -> Selection:
        tiers = _tiers(call.privacy)
        chat = call.kind.name == "chat"
        needs = requested_capabilities(call.request) if chat and not self._drop_params else []
        lacking = (lambda d: any(getattr(d.capabilities, c) is False for c in needs)) if needs else None
        return self._router.select(alias, settings, tiers=tiers, lacking=lacking, prompt_tokens=prompt_tokens)

    async def _try(
        self, call: Call, deployment: Deployment, settings: RouterSettings, prompt_tokens: int, alone: bool
    ) -> Outcome:
        router = self._router
        router.started(deployment, prompt_tokens)
        call.meter.tried(deployment)
        trace = call.meter.trace
        span = trace.attempt(deployment, call.request) if trace is not None else None
        started = time.monotonic()
        try:
            outcome = await self._attempts.attempt(call.kind, call.request, deployment, call.registry, span)
        except UpstreamError as exc:
            unwell = exc.retryable or exc.misconfigured
            router.failed(deployment, settings, exc.message, counts=unwell and not alone)
            call.meter.upstream_failed(deployment, exc)
            if span is not None:
                span.failed(exc)
            raise
        except BaseException as exc:
            # the client's mistake, the client leaving or a bug here: no failure of the deployment's
            router.abandoned(deployment)
            if span is not None:
                span.failed(exc)
            raise
        router.answered(deployment, time.monotonic() - started)
        reply = outcome.reply
        if reply.stream is None:
            router.finished(deployment, time.monotonic() - started)
            if span is not None:
                span.answered(reply.answer, outcome.tally.usage)
        else:
            reply.stream = _tracked(reply.stream, router, deployment, started, span, outcome.tally)
        return outcome

    async def _nothing_to_try(self, call: Call, alias: Alias, selection: Selection, depth: int) -> Outcome:
        excluded = selection.excluded
        if not alias.deployments:
            raise InvalidRequest(f"the model {alias.name!r} has no deployment", param="model")
        if "privacy" in excluded and len(excluded["privacy"]) == len(alias.deployments):
            raise _privacy_refusal(call, alias)
        if "cooldown" in excluded:
            wait = max(1, round(self._router.cooldown_left(excluded["cooldown"])))
            raise UpstreamError(
                f"every deployment of {alias.name!r} is cooling down after failing; retry in {wait} s",
                status=503,
                code="deployments_cooling_down",
                headers={"retry-after": str(wait)},
            )
        if "limit" in excluded:
            wait = self._router.seconds_to_next_minute()
            raise UpstreamError(
                f"every deployment of {alias.name!r} is at its rate limit; retry in {wait} s",
                status=429,
                type="rate_limit_error",
                code="deployment_rate_limited",
                headers={"retry-after": str(wait)},
            )
        if "capability" in excluded:
            gate_capabilities(call.request, excluded["capability"][0], drop_params=False)  # raises, naming it
        error = InvalidRequest(
            f"the prompt (about {estimate_prompt_tokens(call.request)} tokens) is longer than the context "
            f"window of every deployment of {alias.name!r}",
            param="messages",
            code="context_length_exceeded",
        )
        return await self._fall_back(call, alias, error, depth)

    async def _fall_back(self, call: Call, alias: Alias, error: TurnoutError, depth: int) -> Outcome:
        kind, targets = _fallbacks_for(alias, error)
        table = self._table()
        for target in targets if depth == 0 else ():
            other = table.get(target)
            if other is None or other.name == alias.name:
                continue
            if call.meter.trace is not None:
                call.meter.trace.fell_back(alias.name, target, kind)
            try:
                outcome = await self.dispatch(call.retargeted(target), other, depth=1)
            except TurnoutError:
                continue
            outcome.reply.headers["x-turnout-fallback"] = f"{alias.name} -> {target} ({kind})"
            return outcome
        raise error


def _privacy_refusal(call: Call, alias: Alias) -> PermissionDenied:
    """No deployment is allowed for the privacy level; the key's own level is not the header's fault,
    so the message says whose it is and names no header."""
    tiers = ", ".join(sorted({d.privacy_tier for d in alias.deployments}))
    whose = "this API key's privacy level" if call.privacy_is_keys else "privacy level"
    return PermissionDenied(
        f"the model {alias.name!r} has no deployment allowed for {whose} {call.privacy!r} "
        f"(its deployments are {tiers}); nothing was sent",
        param=None if call.privacy_is_keys else "x-turnout-privacy",
        code="privacy_restricted",
    )


def hide_topology(headers: dict[str, str]) -> None:
    for name in TOPOLOGY_HEADERS:
        headers.pop(name, None)


def _tiers(privacy: str | None) -> frozenset[str] | None:
    if privacy is None:
        return None
    tiers = PRIVACY_LEVELS.get(privacy.strip().lower())
    if tiers is None:
        raise InvalidRequest(
            f"x-turnout-privacy must be one of {', '.join(PRIVACY_LEVELS)}; got {privacy!r}",
            param="x-turnout-privacy",
        )
    return tiers


def _fallbacks_for(alias: Alias, error: TurnoutError) -> tuple[str, tuple[str, ...]]:
    code = error.code or ""
    if code in _CONTEXT_CODES:
        return "context window", alias.fallbacks.context_window
    if code in _CONTENT_CODES:
        return "content policy", alias.fallbacks.content_policy
    if isinstance(error, UpstreamError) and (error.retryable or error.misconfigured):
        return "failure", alias.fallbacks.general
    return "", ()


def _backoff(retry: int, last: UpstreamError | None, settings: RouterSettings) -> float:
    """Exponential from 0.25 s, at least `retry_after`, honouring the upstream's retry-after (capped)."""
    wait = max(settings.retry_after, 0.25 * (2**retry))
    told = last.headers.get("retry-after") if last is not None else None
    if told:
        try:
            wait = max(wait, float(told))
        except ValueError:
            pass
    return float(min(wait, MAX_BACKOFF))


async def _tracked(
    stream: AsyncIterator[StreamPiece],
    router: Router,
    deployment: Deployment,
    started: float,
    span: AttemptTrace | None,
    tally: Tally,
) -> AsyncIterator[StreamPiece]:
    """The stream, with the deployment counted as busy until it ends (or the client leaves), and its
    attempt's span ended then (its usage known by then)."""
    try:
        async for chunk in stream:
            yield chunk
    finally:
        router.finished(deployment, time.monotonic() - started)
        if span is not None:
            span.streamed(tally)
