"""The router's selection: strategies, priorities, cooldowns, limits, privacy, capabilities, context."""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from engine.routing.router import PRIVACY_LEVELS, Router
from engine.routing.table import Alias, Capabilities, Cost, Deployment, Limits, RouterSettings

TIERS = ["local", "self-hosted", "third-party"]


def _deployment(n: int, **fields: object) -> Deployment:
    return Deployment(id=n, alias="a", provider="p", upstream_model=f"m{n}", **fields)  # type: ignore[arg-type]


def _alias(*deployments: Deployment, strategy: str | None = None) -> Alias:
    return Alias("a", deployments, routing_strategy=strategy)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _ids(router: Router, alias: Alias, settings: RouterSettings | None = None, **kwargs: object) -> list[int]:
    selection = router.select(alias, settings or RouterSettings(), **kwargs)  # type: ignore[arg-type]
    return [d.id for d in selection.ordered]


def test_priority_first_then_strategy() -> None:
    alias = _alias(
        _deployment(1, priority=2), _deployment(2, priority=1), _deployment(3, priority=1), strategy="ordered"
    )
    assert _ids(Router(seed=1), alias) == [2, 3, 1]


def test_weighted_shuffle_follows_weights() -> None:
    router = Router(seed=7)
    alias = _alias(_deployment(1, weight=9.0), _deployment(2, weight=1.0))
    firsts = Counter(_ids(router, alias)[0] for _ in range(2000))
    assert 0.85 < firsts[1] / 2000 < 0.95


def test_least_busy_prefers_fewest_in_flight() -> None:
    router = Router(seed=1)
    busy, idle = _deployment(1), _deployment(2)
    router.started(busy, 0)
    assert _ids(router, _alias(busy, idle, strategy="least-busy")) == [2, 1]


def test_latency_based_prefers_the_faster_after_trying_each() -> None:
    router = Router(seed=1)
    slow, fast = _deployment(1), _deployment(2)
    for deployment, seconds in ((slow, 0.9), (fast, 0.1)):
        router.started(deployment, 0)
        router.finished(deployment, seconds)
    assert _ids(router, _alias(slow, fast, strategy="latency-based-routing")) == [2, 1]


def test_cost_based_prefers_the_cheaper() -> None:
    pricey = _deployment(1, costs=(Cost("input_token", Decimal("0.00001")),))
    cheap = _deployment(2, costs=(Cost("input_token", Decimal("0.000001")),))
    assert _ids(Router(seed=3), _alias(pricey, cheap, strategy="cost-based-routing")) == [2, 1]


def test_usage_based_skips_a_deployment_over_its_rpm() -> None:
    clock = Clock()
    router = Router(clock=clock, seed=1)
    limited, free = _deployment(1, limits=Limits(rpm=2)), _deployment(2)
    for _ in range(2):
        router.started(limited, 10)
        router.finished(limited, 0.1)
    selection = router.select(_alias(limited, free, strategy="usage-based-routing-v2"), RouterSettings())
    assert [d.id for d in selection.ordered] == [2]
    assert [d.id for d in selection.excluded["limit"]] == [1]
    clock.now += 60  # a new minute
    assert sorted(_ids(router, _alias(limited, free))) == [1, 2]


def test_cooldown_after_more_than_allowed_fails_then_back() -> None:
    clock = Clock()
    router = Router(clock=clock, seed=1)
    shaky = _deployment(1)
    settings = RouterSettings(allowed_fails=2, cooldown_time=30)
    for _ in range(3):
        router.started(shaky, 0)
        router.failed(shaky, settings, "HTTP 500", counts=True)
    selection = router.select(_alias(shaky), settings)
    assert selection.ordered == [] and selection.excluded["cooldown"] == [shaky]
    assert router.cooldown_left([shaky]) == 30
    clock.now += 31
    assert _ids(router, _alias(shaky), settings) == [1]


def test_client_errors_do_not_cool_a_deployment_down() -> None:
    router = Router(seed=1)
    deployment = _deployment(1)
    for _ in range(10):
        router.started(deployment, 0)
        router.failed(deployment, RouterSettings(allowed_fails=0), "HTTP 400", counts=False)
    assert _ids(router, _alias(deployment)) == [1]


def test_capability_and_context_window_filters() -> None:
    no_tools = _deployment(1, capabilities=Capabilities(tools=False))
    small = _deployment(2, capabilities=Capabilities(max_input_tokens=100))
    big = _deployment(3, capabilities=Capabilities(max_input_tokens=10_000))
    settings = RouterSettings(enable_pre_call_checks=True, routing_strategy="ordered")
    selection = Router().select(
        _alias(no_tools, small, big),
        settings,
        lacking=lambda d: d.capabilities.tools is False,
        prompt_tokens=500,
    )
    assert [d.id for d in selection.ordered] == [3]
    assert selection.excluded == {"capability": [no_tools], "context_window": [small]}


@given(
    tiers=st.lists(st.sampled_from(TIERS), min_size=1, max_size=12),
    level=st.sampled_from(sorted(PRIVACY_LEVELS)),
    strategy=st.sampled_from(["simple-shuffle", "ordered", "least-busy", "latency-based-routing"]),
)
def test_privacy_never_routes_to_a_disallowed_tier(tiers: list[str], level: str, strategy: str) -> None:
    alias = _alias(*(_deployment(n, privacy_tier=tier) for n, tier in enumerate(tiers)), strategy=strategy)
    selection = Router(seed=0).select(alias, RouterSettings(), tiers=PRIVACY_LEVELS[level])
    assert all(d.privacy_tier in PRIVACY_LEVELS[level] for d in selection.ordered)
    assert len(selection.ordered) + len(selection.excluded.get("privacy", [])) == len(tiers)


def test_selection_costs_microseconds() -> None:
    router = Router(seed=1)
    alias = _alias(*(_deployment(n, weight=1.0 + n % 3) for n in range(100)))
    started = time.perf_counter()
    for _ in range(200):
        router.select(alias, RouterSettings())
    per_call = (time.perf_counter() - started) / 200
    assert per_call < 0.002  # generous for a noisy CI machine; `make bench` reports the real figure


def test_a_missing_model_is_skipped_unless_nothing_else_is_left() -> None:
    router = Router(seed=1)
    gone, present = _deployment(1), _deployment(2)
    router.missing = frozenset({1})
    assert _ids(router, _alias(gone, present)) == [2]
    assert _ids(router, _alias(gone)) == [1]  # the last resort: discovery may be stale
