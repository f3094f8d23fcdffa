"""Prometheus metrics: cheap in-memory aggregates on the request path, the text exposition on scrape.

The request path only adds to dicts (microseconds). `prometheus_client` is imported on the first
scrape, never at import time, and is handed a snapshot built from these aggregates and the router's
live state, so nothing is registered globally and a gateway built in a test starts from zero.

Labels come from what the operator configured, never from what a client or an upstream sends: the
alias label is a configured alias (of the routing table in use, which may reload) or UNKNOWN_ALIAS
for any other name a client asks for; an upstream's error code is kept only while it is short and
plain and fewer than MAX_CODES codes were seen (else OTHER_CODE). The exposition's size is thus
bounded by the configuration, not by traffic. Never a key, a request id or a prompt.

Families:

    turnout_requests_total{alias,operation,status}                          counter
    turnout_request_duration_seconds{alias,operation}                       histogram
    turnout_time_to_first_token_seconds{alias}                              histogram, streams only
    turnout_tokens_total{alias,kind}                                        counter, kind: prompt,
                                                                              completion, reasoning, cached
    turnout_cost_usd_total{alias}                                           counter
    turnout_upstream_errors_total{provider,deployment,status,code}          counter, per failed attempt
    turnout_requests_in_flight                                              gauge
    turnout_deployment_cooling_down{alias,deployment,provider,model}        gauge, 1 or 0 at scrape time
    turnout_deployment_cooldowns_total{alias,deployment,provider,model}     counter
    turnout_usage_rows_dropped_total{reason}                                counter, reason:
                                                                              buffer_full, refused
    turnout_console_sign_in_failures_total                                  counter, wrong credentials
                                                                              at the console's sign-in
    turnout_cache_{hits,misses,stores}_total{alias}, _failures_total{reason}  the response cache's, when
                                                                              on (engine/cache/metrics.py)
    and the families of each `watch` source (engine.reload.status: mapping and config reloads)
"""

from __future__ import annotations

import re
import time
from bisect import bisect_left
from collections.abc import Callable, Container, Iterable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING

from engine.routing.router import Router
from engine.routing.table import RoutingTable
from engine.usage.record import UsageRecord
from engine.usage.recorder import BUFFER_FULL, REFUSED

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

__all__ = ["BUCKETS", "MAX_CODES", "OTHER_CODE", "UNKNOWN_ALIAS", "Metrics"]

# seconds; LLM calls range from a cached embedding (milliseconds) to a long reasoning answer (minutes)
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
_BOUNDS = (*(repr(b) for b in BUCKETS), "+Inf")  # the `le` labels; repr matches Go's for these floats
TOKEN_KINDS = ("prompt", "completion", "reasoning", "cached")
# The client's `model` field when it names no configured alias (a refused request may name anything)
UNKNOWN_ALIAS = "_unknown_"
# An upstream error body's `code`: kept while short and plain, for the first MAX_CODES distinct ones
MAX_CODES = 100
OTHER_CODE = "_other_"
_CODE_LENGTH = 64
_PLAIN_CODE = re.compile(r"[A-Za-z0-9_.:-]+")


class _Histogram:
    """Per-bucket counts (not cumulative; the last is +Inf) and the sum of the observed values."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def add(self, value: float) -> None:
        self.counts[bisect_left(BUCKETS, value)] += 1  # Prometheus buckets are `le`: value <= bound
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        running, buckets = 0, []
        for bound, count in zip(_BOUNDS, self.counts, strict=True):
            running += count
            buckets.append((bound, float(running)))
        return buckets


def _observe(histograms: dict[tuple[str, ...], _Histogram], labels: tuple[str, ...], value: float) -> None:
    found = histograms.get(labels)
    if found is None:
        found = histograms[labels] = _Histogram()
    found.add(value)


class Metrics:
    """One process's counters. Updated and rendered on the event loop, so a scrape reads a consistent
    state without locks (render is synchronous: no request runs while it reads)."""

    def __init__(
        self,
        aliases: Callable[[], Container[str]],
        *,
        max_age: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._aliases = aliases  # the configured aliases now (the routing table's, read per request)
        self._max_age = max_age
        self._clock = clock
        self._rendered: tuple[float, bytes, str] | None = None  # (when, exposition, content type)
        self._codes: set[str] = set()
        self._requests: dict[tuple[str, str, int], int] = {}
        self._durations: dict[tuple[str, ...], _Histogram] = {}
        self._first_token: dict[tuple[str, ...], _Histogram] = {}
        self._tokens: dict[str, list[int]] = {}  # alias -> counts in TOKEN_KINDS order
        self._cost: dict[str, Decimal] = {}  # summed as Decimal; a float only in the exposition
        self._upstream_errors: dict[tuple[str, str, str, str], int] = {}
        self._in_flight = 0
        self._dropped = dict.fromkeys((BUFFER_FULL, REFUSED), 0)
        self._sign_in_failures: Callable[[], int] = lambda: 0
        self._more: list[Callable[[], Iterable[Metric]]] = []  # other parts' families (the cache's)

    def watch(self, families: Callable[[], Iterable[Metric]]) -> None:
        """Add the families `families` gives at each scrape (a part that counts for itself: the
        response cache, engine/cache/metrics.py; mapping and config reloads, engine/reload/status.py)."""
        self._more.append(families)

    def watch_sign_ins(self, failures: Callable[[], int]) -> None:
        """Read the console's failed sign-ins from `failures` at each scrape (the console's throttle
        counts them; it is built after the gateway, so it is handed over here)."""
        self._sign_in_failures = failures

    def _code(self, code: object) -> str:
        if code is None:
            return ""
        if not isinstance(code, str) or len(code) > _CODE_LENGTH:
            return OTHER_CODE
        if code in self._codes:
            return code
        if len(self._codes) < MAX_CODES and _PLAIN_CODE.fullmatch(code):
            self._codes.add(code)
            return code
        return OTHER_CODE

    def observe(self, record: UsageRecord) -> None:
        """One finished request (answered or refused)."""
        alias = record.alias if record.alias in self._aliases() else UNKNOWN_ALIAS
        key = (alias, record.operation, record.status)
        self._requests[key] = self._requests.get(key, 0) + 1
        _observe(self._durations, (alias, record.operation), record.latency_ms / 1000)
        if record.ttft_ms is not None:
            _observe(self._first_token, (alias,), record.ttft_ms / 1000)
        tokens = self._tokens.get(alias)
        if tokens is None:
            tokens = self._tokens[alias] = [0, 0, 0, 0]
        tokens[0] += record.prompt_tokens or 0
        tokens[1] += record.completion_tokens or 0
        tokens[2] += record.reasoning_tokens or 0
        tokens[3] += record.cached_tokens or 0
        if record.cost is not None:
            self._cost[alias] = self._cost.get(alias, Decimal(0)) + record.cost

    def upstream_failed(self, provider: str, deployment_id: int, status: int, code: str | None) -> None:
        """One failed upstream attempt (a request may make several before it succeeds or gives up)."""
        key = (provider, str(deployment_id), str(status), self._code(code))
        self._upstream_errors[key] = self._upstream_errors.get(key, 0) + 1

    def started(self) -> None:
        self._in_flight += 1

    def finished(self) -> None:
        self._in_flight -= 1

    def dropped(self, rows: int, reason: str) -> None:
        """The usage recorder gave up on `rows` request-log rows, for `reason` (recorder.BUFFER_FULL,
        recorder.REFUSED)."""
        self._dropped[reason] = self._dropped.get(reason, 0) + rows

    def render(self, router: Router, table: RoutingTable) -> tuple[bytes, str]:
        """The text exposition and its content type, rendered anew at most every `max_age` seconds.

        A render takes milliseconds per configured alias on the event loop; scrapes in a loop (or from
        anyone, when /metrics is open) get the last one meanwhile, so they cannot starve requests."""
        now = self._clock()
        rendered = self._rendered
        if rendered is not None and now - rendered[0] < self._max_age:
            return rendered[1], rendered[2]
        from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

        more = [family for families in self._more for family in families()]
        families = _Families([*self._families(), *_deployment_families(router, table), *more])
        body = generate_latest(families)
        self._rendered = (now, body, CONTENT_TYPE_LATEST)
        return body, CONTENT_TYPE_LATEST

    def _families(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        requests = CounterMetricFamily(
            "turnout_requests",
            "Requests finished, by alias, operation and the status the client got",
            labels=["alias", "operation", "status"],
        )
        for (alias, operation, status), count in self._requests.items():
            requests.add_metric([alias, operation, str(status)], count)
        yield requests
        yield _histogram(
            "turnout_request_duration_seconds",
            "Time from request to last byte",
            ["alias", "operation"],
            self._durations,
        )
        yield _histogram(
            "turnout_time_to_first_token_seconds",
            "Streams: time until the first chunk reached the client",
            ["alias"],
            self._first_token,
        )
        tokens = CounterMetricFamily("turnout_tokens", "Tokens used, by kind", labels=["alias", "kind"])
        for alias, counts in self._tokens.items():
            for kind, count in zip(TOKEN_KINDS, counts, strict=True):
                tokens.add_metric([alias, kind], count)
        yield tokens
        cost = CounterMetricFamily("turnout_cost_usd", "Cost of the priced requests, USD", labels=["alias"])
        for alias, total in self._cost.items():
            cost.add_metric([alias], float(total))
        yield cost
        errors = CounterMetricFamily(
            "turnout_upstream_errors",
            "Failed upstream attempts",
            labels=["provider", "deployment", "status", "code"],
        )
        for labels, count in self._upstream_errors.items():
            errors.add_metric(list(labels), count)
        yield errors
        yield GaugeMetricFamily("turnout_requests_in_flight", "Requests being served", value=self._in_flight)
        dropped = CounterMetricFamily(
            "turnout_usage_rows_dropped", "Request-log rows the usage recorder dropped", labels=["reason"]
        )
        for reason, count in self._dropped.items():
            dropped.add_metric([reason], count)
        yield dropped
        yield CounterMetricFamily(
            "turnout_console_sign_in_failures",
            "Failed sign-ins at the admin console (wrong name, key or password)",
            value=self._sign_in_failures(),
        )


def _histogram(
    name: str, documentation: str, labels: list[str], histograms: dict[tuple[str, ...], _Histogram]
) -> Metric:
    from prometheus_client.core import HistogramMetricFamily

    family = HistogramMetricFamily(name, documentation, labels=labels)
    for values, histogram in histograms.items():
        family.add_metric(list(values), histogram.cumulative(), histogram.total)
    return family


def _deployment_families(router: Router, table: RoutingTable) -> Iterator[Metric]:
    """Each deployment's cooldown state, read from the router now (the router counts; we only show)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    labels = ["alias", "deployment", "provider", "model"]
    cooling = GaugeMetricFamily(
        "turnout_deployment_cooling_down", "1 while the deployment is skipped after failures", labels=labels
    )
    cooldowns = CounterMetricFamily(
        "turnout_deployment_cooldowns", "Times the deployment was put into cooldown", labels=labels
    )
    for alias in table.aliases.values():
        for deployment in alias.deployments:
            values = [alias.name, str(deployment.id), deployment.provider, deployment.upstream_model]
            # cooldown_left reads the router's own clock (monotonic, or a test's)
            cooling.add_metric(values, 1 if router.cooldown_left([deployment]) > 0 else 0)
            cooldowns.add_metric(values, router.stats(deployment).cooldowns)
    yield cooling
    yield cooldowns


class _Families:
    """A fixed list of families, shaped as the collector `generate_latest` reads."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families
