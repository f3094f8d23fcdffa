"""The router: which deployments may take a request, in what order, and what happened to each.

Per process it keeps, for every deployment, the requests in flight, moving averages of latency and time
to first byte, this minute's request and token counts, and recent failures. Selection filters the
alias's deployments (privacy tier, capabilities, context window, cooldown, limits) and orders the rest
by priority, then by the strategy. It is plain in-memory arithmetic: microseconds per request.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from engine.routing.table import Alias, Deployment, RouterSettings

__all__ = ["PRIVACY_LEVELS", "DeploymentStats", "Router", "Selection"]

log = logging.getLogger("turnout")

# x-turnout-privacy values -> the tiers a request may go to
PRIVACY_LEVELS = {
    "local": frozenset({"local"}),
    "private": frozenset({"local", "self-hosted"}),
    "self-hosted": frozenset({"local", "self-hosted"}),
    "any": frozenset({"local", "self-hosted", "third-party"}),
}
FAILURE_WINDOW = 60.0  # seconds in which `allowed_fails` is counted (LiteLLM: per minute)
SMOOTHING = 0.2  # weight of the newest sample in the moving averages


@dataclass(slots=True)
class DeploymentStats:
    inflight: int = 0
    latency: float | None = None  # moving average, seconds (whole answer)
    first_byte: float | None = None  # moving average, seconds (time to the upstream's first byte)
    minute: int = 0
    requests: int = 0  # this minute
    tokens: int = 0  # this minute (estimated prompt tokens)
    failures: deque[float] = field(default_factory=deque)
    cooldown_until: float = 0.0
    last_error: str | None = None
    served: int = 0
    failed: int = 0
    cooldowns: int = 0  # times this deployment was put into cooldown (here or by another replica)


@dataclass(slots=True)
class Selection:
    """The deployments to try, in order, and why the others were left out (by reason)."""

    ordered: list[Deployment]
    excluded: dict[str, list[Deployment]] = field(default_factory=dict)

    def leave_out(self, reason: str, deployment: Deployment) -> None:
        self.excluded.setdefault(reason, []).append(deployment)


class Router:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        seed: int | None = None,
        on_cooldown: Callable[[int, float], None] | None = None,
    ) -> None:
        self._clock = clock
        self._random = random.Random(seed)
        self._stats: dict[int, DeploymentStats] = {}
        self.missing: frozenset[int] = frozenset()  # deployments whose backend does not list their model
        # told (deployment id, seconds) when this process puts a deployment into cooldown: other replicas
        # are told through the change bus and apply it with `cool_down`
        self.on_cooldown = on_cooldown

    def set_missing(self, missing: frozenset[int]) -> None:
        """The deployments whose backend does not list their model (model discovery): they go last."""
        for deployment_id in sorted(missing - self.missing):
            log.warning(
                "deployment %s: its backend does not list its model; other deployments go first",
                deployment_id,
            )
        self.missing = missing

    def now(self) -> float:
        """The router's clock (monotonic seconds, unless a test injected one): cooldowns end on it."""
        return self._clock()

    def stats(self, deployment: Deployment) -> DeploymentStats:
        found = self._stats.get(deployment.id)
        if found is None:
            found = self._stats[deployment.id] = DeploymentStats()
        return found

    def select(
        self,
        alias: Alias,
        settings: RouterSettings,
        *,
        tiers: frozenset[str] | None = None,
        lacking: Callable[[Deployment], bool] | None = None,
        prompt_tokens: int = 0,
    ) -> Selection:
        """The deployments to try, in order. `lacking(d)` says d cannot do what the request needs."""
        now = self._clock()
        selection = Selection([])
        for deployment in alias.deployments:
            reason = self._unfit(deployment, settings, tiers, lacking, prompt_tokens, now)
            if reason is None:
                selection.ordered.append(deployment)
            else:
                selection.leave_out(reason, deployment)
        if not selection.ordered and "missing_model" in selection.excluded:
            # discovery can be wrong or stale: a listed-as-missing model is still better than none
            selection.ordered = selection.excluded.pop("missing_model")
        strategy = alias.routing_strategy or settings.routing_strategy
        selection.ordered = self._order(selection.ordered, strategy, now)
        return selection

    def _unfit(
        self,
        deployment: Deployment,
        settings: RouterSettings,
        tiers: frozenset[str] | None,
        lacking: Callable[[Deployment], bool] | None,
        prompt_tokens: int,
        now: float,
    ) -> str | None:
        if tiers is not None and deployment.privacy_tier not in tiers:
            return "privacy"
        if lacking is not None and lacking(deployment):
            return "capability"
        window = deployment.capabilities.max_input_tokens
        if settings.enable_pre_call_checks and window is not None and prompt_tokens > window:
            return "context_window"
        stats = self.stats(deployment)
        if stats.cooldown_until > now:
            return "cooldown"
        if deployment.id in self.missing:
            return "missing_model"
        return self._over_limit(deployment, stats, now)

    def _over_limit(self, deployment: Deployment, stats: DeploymentStats, now: float) -> str | None:
        limits = deployment.limits
        self._roll_minute(stats, now)
        if limits.max_parallel_requests is not None and stats.inflight >= limits.max_parallel_requests:
            return "limit"
        if limits.rpm is not None and stats.requests >= limits.rpm:
            return "limit"
        if limits.tpm is not None and stats.tokens >= limits.tpm:
            return "limit"
        return None

    @staticmethod
    def _roll_minute(stats: DeploymentStats, now: float) -> None:
        minute = int(now // 60)
        if minute != stats.minute:
            stats.minute, stats.requests, stats.tokens = minute, 0, 0

    def _order(self, deployments: list[Deployment], strategy: str, now: float) -> list[Deployment]:
        if len(deployments) < 2:
            return deployments
        key = self._strategy_key(strategy, now)
        return sorted(deployments, key=lambda d: (d.priority, key(d)))

    def _strategy_key(self, strategy: str, now: float) -> Callable[[Deployment], tuple[float, ...]]:
        draw = self._random.random
        if strategy == "ordered":
            return lambda d: (d.id,)
        if strategy == "least-busy":
            return lambda d: (self.stats(d).inflight, draw())
        if strategy == "latency-based-routing":  # unknown latency sorts first: every deployment gets tried
            return lambda d: (self.stats(d).latency or 0.0, draw())
        if strategy == "usage-based-routing-v2":
            return lambda d: (self._usage_share(d), draw())
        if strategy == "cost-based-routing":
            return lambda d: (_price(d), draw())
        # simple-shuffle: weighted random order (larger weight, earlier on average)
        return lambda d: (-(draw() ** (1.0 / max(d.weight, 1e-9))),)

    def _usage_share(self, deployment: Deployment) -> float:
        stats, limits = self.stats(deployment), deployment.limits
        shares = [0.0]
        if limits.rpm:
            shares.append(stats.requests / limits.rpm)
        if limits.tpm:
            shares.append(stats.tokens / limits.tpm)
        return max(shares)

    def started(self, deployment: Deployment, prompt_tokens: int) -> None:
        stats = self.stats(deployment)
        self._roll_minute(stats, self._clock())
        stats.inflight += 1
        stats.requests += 1
        stats.tokens += prompt_tokens

    def answered(self, deployment: Deployment, first_byte: float) -> None:
        stats = self.stats(deployment)
        stats.first_byte = _smooth(stats.first_byte, first_byte)

    def finished(self, deployment: Deployment, elapsed: float) -> None:
        stats = self.stats(deployment)
        stats.inflight = max(0, stats.inflight - 1)
        stats.latency = _smooth(stats.latency, elapsed)
        stats.served += 1

    def failed(self, deployment: Deployment, settings: RouterSettings, error: str, *, counts: bool) -> None:
        """A failed attempt; `counts` when it says the deployment is unwell (not the caller's fault)."""
        stats = self.stats(deployment)
        stats.inflight = max(0, stats.inflight - 1)
        stats.last_error = error
        stats.failed += 1
        if not counts:
            return
        now = self._clock()
        stats.failures.append(now)
        while stats.failures and stats.failures[0] < now - FAILURE_WINDOW:
            stats.failures.popleft()
        if len(stats.failures) > settings.allowed_fails:
            stats.cooldown_until = now + settings.cooldown_time
            stats.cooldowns += 1
            stats.failures.clear()
            if self.on_cooldown is not None:
                self.on_cooldown(deployment.id, settings.cooldown_time)

    def abandoned(self, deployment: Deployment) -> None:
        """An attempt that ended for a reason not the deployment's (the client's mistake or departure):
        no longer in flight, and neither a failure nor its `last_error`."""
        stats = self.stats(deployment)
        stats.inflight = max(0, stats.inflight - 1)

    def cool_down(self, deployment_id: int, seconds: float) -> None:
        """Another replica put this deployment into cooldown for `seconds` from now."""
        stats = self._stats.get(deployment_id)
        if stats is None:
            stats = self._stats[deployment_id] = DeploymentStats()
        until = self._clock() + seconds
        if until > stats.cooldown_until:
            stats.cooldown_until = until
            stats.cooldowns += 1

    def seconds_to_next_minute(self) -> int:
        """Whole seconds until the rpm and tpm windows start again (at least 1)."""
        return max(1, math.ceil(60 - self._clock() % 60))

    def cooldown_left(self, deployments: Iterable[Deployment]) -> float:
        """Seconds until the first of these deployments is out of cooldown."""
        now = self._clock()
        return max(0.0, min((self.stats(d).cooldown_until - now for d in deployments), default=0.0))


def _smooth(average: float | None, sample: float) -> float:
    return sample if average is None else average + SMOOTHING * (sample - average)


def _price(deployment: Deployment) -> float:
    return float(sum(c.price for c in deployment.costs if c.unit in ("input_token", "output_token")))
