"""Metrics: aggregates observed on the request path, rendered and parsed back as Prometheus reads them."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from engine.routing.router import Router
from engine.routing.table import Alias, Deployment, RoutingTable
from engine.usage.metrics import MAX_CODES, OTHER_CODE, UNKNOWN_ALIAS, Metrics
from engine.usage.record import UsageRecord

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
CONFIGURED = frozenset({"a", "b", "free"})


def _metrics(aliases: frozenset[str] = CONFIGURED) -> Metrics:
    return Metrics(lambda: aliases)


def _record(**fields: Any) -> UsageRecord:
    base: dict[str, Any] = {
        "request_id": "r",
        "created_at": datetime.now(UTC),
        "operation": "chat",
        "alias": "a",
    }
    return UsageRecord(**{**base, **fields})


def _table(*deployments: Deployment) -> RoutingTable:
    return RoutingTable({"a": Alias("a", deployments)})


def _deployment(n: int) -> Deployment:
    return Deployment(id=n, alias="a", provider="p", upstream_model=f"m{n}")


def _scrape(metrics: Metrics, router: Router | None = None, table: RoutingTable | None = None) -> Samples:
    body, content_type = metrics.render(router or Router(), table or RoutingTable())
    assert content_type.startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def _series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: value for (sample, labels), value in samples.items() if sample == name}


def test_requests_counted_by_alias_operation_and_status() -> None:
    metrics = _metrics()
    metrics.observe(_record())
    metrics.observe(_record())
    metrics.observe(_record(status=502, error_type="upstream_error"))
    metrics.observe(_record(alias="b", operation="embeddings"))
    samples = _scrape(metrics)
    assert _series(samples, "turnout_requests_total") == {
        frozenset({("alias", "a"), ("operation", "chat"), ("status", "200")}): 2,
        frozenset({("alias", "a"), ("operation", "chat"), ("status", "502")}): 1,
        frozenset({("alias", "b"), ("operation", "embeddings"), ("status", "200")}): 1,
    }


def test_duration_histogram_buckets_are_cumulative_and_inclusive() -> None:
    metrics = _metrics()
    for latency_ms in (120, 1000, 3000):  # 1000 ms lands in le="1.0": Prometheus buckets are <=
        metrics.observe(_record(latency_ms=latency_ms))
    samples = _scrape(metrics)
    bucket = "turnout_request_duration_seconds_bucket"
    labels = {"alias": "a", "operation": "chat"}
    expected = {"0.1": 0, "0.25": 1, "0.5": 1, "1.0": 2, "2.5": 2, "5.0": 3, "120.0": 3, "+Inf": 3}
    assert {le: _value(samples, bucket, le=le, **labels) for le in expected} == expected
    assert _value(samples, "turnout_request_duration_seconds_count", **labels) == 3
    assert _value(samples, "turnout_request_duration_seconds_sum", **labels) == 4.12


def test_time_to_first_token_only_for_streams() -> None:
    metrics = _metrics()
    metrics.observe(_record(latency_ms=900))  # not a stream: no ttft
    metrics.observe(_record(stream=True, latency_ms=2000, ttft_ms=300))
    samples = _scrape(metrics)
    assert _value(samples, "turnout_time_to_first_token_seconds_count", alias="a") == 1
    assert _value(samples, "turnout_time_to_first_token_seconds_sum", alias="a") == 0.3
    assert _value(samples, "turnout_time_to_first_token_seconds_bucket", alias="a", le="0.25") == 0
    assert _value(samples, "turnout_time_to_first_token_seconds_bucket", alias="a", le="0.5") == 1


def test_tokens_by_kind_and_cost_summed_exactly() -> None:
    metrics = _metrics()
    metrics.observe(
        _record(
            prompt_tokens=10, completion_tokens=5, reasoning_tokens=2, cached_tokens=4, cost=Decimal("0.1")
        )
    )
    metrics.observe(_record(prompt_tokens=1, completion_tokens=1, cost=Decimal("0.2")))
    metrics.observe(_record(status=502))  # no usage, no price: adds nothing
    samples = _scrape(metrics)
    assert {dict(k)["kind"]: v for k, v in _series(samples, "turnout_tokens_total").items()} == {
        "prompt": 11,
        "completion": 6,
        "reasoning": 2,
        "cached": 4,
    }
    # summed as Decimal: 0.3, where float addition would give 0.30000000000000004
    assert _value(samples, "turnout_cost_usd_total", alias="a") == 0.3


def test_unpriced_alias_has_no_cost_series() -> None:
    metrics = _metrics()
    metrics.observe(_record(alias="free", cost=None))
    assert _series(_scrape(metrics), "turnout_cost_usd_total") == {}


def test_upstream_errors_by_provider_deployment_status_and_code() -> None:
    metrics = _metrics()
    metrics.upstream_failed("p", 7, 500, None)
    metrics.upstream_failed("p", 7, 500, None)
    metrics.upstream_failed("p", 8, 429, "rate_limit_exceeded")
    assert _series(_scrape(metrics), "turnout_upstream_errors_total") == {
        frozenset({("provider", "p"), ("deployment", "7"), ("status", "500"), ("code", "")}): 2,
        frozenset(
            {("provider", "p"), ("deployment", "8"), ("status", "429"), ("code", "rate_limit_exceeded")}
        ): 1,
    }


def test_in_flight_gauge_and_dropped_rows() -> None:
    metrics = _metrics()
    metrics.started()
    metrics.started()
    metrics.finished()
    metrics.dropped(3, "buffer_full")
    metrics.dropped(2, "buffer_full")
    metrics.dropped(1, "refused")
    samples = _scrape(metrics)
    assert _value(samples, "turnout_requests_in_flight") == 1
    assert _value(samples, "turnout_usage_rows_dropped_total", reason="buffer_full") == 5
    assert _value(samples, "turnout_usage_rows_dropped_total", reason="refused") == 1


def test_empty_metrics_render_every_unlabelled_family_at_zero() -> None:
    samples = _scrape(_metrics())
    assert _value(samples, "turnout_requests_in_flight") == 0
    assert _value(samples, "turnout_usage_rows_dropped_total", reason="buffer_full") == 0
    assert _value(samples, "turnout_usage_rows_dropped_total", reason="refused") == 0
    assert _series(samples, "turnout_requests_total") == {}
    assert _value(samples, "turnout_console_sign_in_failures_total") == 0


def test_console_sign_in_failures_are_read_at_each_scrape() -> None:
    metrics, failures = _metrics(), [3]
    metrics.watch_sign_ins(lambda: failures[0])
    assert _value(_scrape(metrics), "turnout_console_sign_in_failures_total") == 3
    failures[0] = 4
    assert _value(_scrape(metrics), "turnout_console_sign_in_failures_total") == 4


def test_cooling_down_gauge_and_cooldown_count_from_the_router() -> None:
    router = Router()
    table = _table(_deployment(1), _deployment(2))
    router.cool_down(1, 30)
    samples = _scrape(_metrics(), router, table)

    def labels(n: int) -> dict[str, str]:
        return {"alias": "a", "deployment": str(n), "provider": "p", "model": f"m{n}"}

    assert _value(samples, "turnout_deployment_cooling_down", **labels(1)) == 1
    assert _value(samples, "turnout_deployment_cooling_down", **labels(2)) == 0
    assert _value(samples, "turnout_deployment_cooldowns_total", **labels(1)) == 1
    assert _value(samples, "turnout_deployment_cooldowns_total", **labels(2)) == 0


def test_cooldown_over_shows_zero_but_keeps_its_count() -> None:
    now = [1000.0]
    router = Router(clock=lambda: now[0])
    table = _table(_deployment(1))
    router.cool_down(1, 30)
    now[0] += 31
    samples = _scrape(_metrics(), router, table)
    labels = {"alias": "a", "deployment": "1", "provider": "p", "model": "m1"}
    assert _value(samples, "turnout_deployment_cooling_down", **labels) == 0
    assert _value(samples, "turnout_deployment_cooldowns_total", **labels) == 1


def test_alias_label_is_a_configured_alias_or_unknown() -> None:
    """A refused request's alias is whatever the client sent: it never becomes a label of its own."""
    metrics = _metrics()
    for n in range(1000):
        metrics.observe(_record(alias=f"made-up-{n}", status=404))
    metrics.observe(_record(alias="m" * 4_000_000, status=404))
    metrics.observe(_record(alias="a"))
    series = _series(_scrape(metrics), "turnout_requests_total")
    assert series == {
        frozenset({("alias", UNKNOWN_ALIAS), ("operation", "chat"), ("status", "404")}): 1001,
        frozenset({("alias", "a"), ("operation", "chat"), ("status", "200")}): 1,
    }


def test_the_alias_label_follows_the_routing_table_as_it_reloads() -> None:
    configured = {"a"}
    metrics = Metrics(lambda: configured)
    metrics.observe(_record(alias="new"))
    configured = {"a", "new"}  # a reload added it
    metrics.observe(_record(alias="new"))
    series = _series(_scrape(metrics), "turnout_requests_total")
    assert series[frozenset({("alias", UNKNOWN_ALIAS), ("operation", "chat"), ("status", "200")})] == 1
    assert series[frozenset({("alias", "new"), ("operation", "chat"), ("status", "200")})] == 1


def test_upstream_error_codes_are_bounded_in_length_form_and_number() -> None:
    """An upstream's error code comes from its error body: hostile in size, shape and variety."""
    metrics = _metrics()
    metrics.upstream_failed("p", 1, 400, "c" * 65)
    metrics.upstream_failed("p", 1, 400, "spaces and\nnewlines")
    metrics.upstream_failed("p", 1, 400, 42)  # type: ignore[arg-type]  # not text at all
    for n in range(MAX_CODES + 50):
        metrics.upstream_failed("p", 1, 400, f"code_{n}")
    codes = {
        dict(k)["code"]: v for k, v in _series(_scrape(metrics), "turnout_upstream_errors_total").items()
    }
    assert len(codes) == MAX_CODES + 1
    assert codes[OTHER_CODE] == 3 + 50
    assert codes["code_0"] == 1


def test_a_render_is_served_again_until_it_is_max_age_old() -> None:
    now = [100.0]
    metrics = Metrics(lambda: CONFIGURED, max_age=1.0, clock=lambda: now[0])
    router, table = Router(), RoutingTable()
    first, _ = metrics.render(router, table)
    metrics.observe(_record())
    now[0] += 0.999
    assert metrics.render(router, table)[0] is first, "not rendered again"
    now[0] += 0.001
    fresh, _ = metrics.render(router, table)
    assert fresh != first and b'turnout_requests_total{alias="a"' in fresh


def test_importing_metrics_does_not_import_prometheus_client() -> None:
    """The request path pays nothing for the exposition library until the first scrape."""
    code = "import sys, engine.usage.metrics; assert 'prometheus_client' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
