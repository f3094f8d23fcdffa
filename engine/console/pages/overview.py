"""Overview: totals, charts and a breakdown of the request log over the last hour / day / 30 days, and
every deployment's live state (a fragment the page polls)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from litestar import Request, Response, get

from engine.console.render import render
from engine.console.state import console_gateway
from engine.console.usage_overview import GROUPINGS, PERIODS, Overview, read_overview
from engine.routing.states import deployment_states

__all__ = ["ROUTES", "overview_deployments", "overview_page"]

_DEFAULT_PERIOD = "day"
_DEFAULT_GROUPING = "alias"
_GROUP_ROWS = 100  # the breakdown table's longest list (most requests first)


def milliseconds(value: float | None) -> str:
    """A duration for people: "≈ 840 ms", "≈ 2.4 s", or "—" when nothing was measured."""
    if value is None:
        return "—"
    if value < 1000:
        return f"≈ {value:.0f} ms"
    return f"≈ {value / 1000:.1f} s"


def money(value: Decimal) -> str:
    """Cost in the price rows' currency, to 1e-4 (enough to see a cent move)."""
    return f"{value:,.4f}"


def whole(value: int) -> str:
    return f"{value:,}"


def _chart_data(overview: Overview) -> dict[str, Any]:
    """What static/pages/overview.js draws: one list per series, aligned with `times` (epoch s)."""
    series = overview.series
    return {
        "times": [int(bucket.timestamp()) for bucket in overview.buckets],
        "requests": [figures.requests for figures in series],
        "errors": [figures.errors for figures in series],
        "prompt_tokens": [figures.prompt_tokens for figures in series],
        "completion_tokens": [figures.completion_tokens for figures in series],
        "cost": [float(figures.cost) for figures in series],
        "latency_p50": [_rounded(figures.latency(0.5)) for figures in series],
        "latency_p95": [_rounded(figures.latency(0.95)) for figures in series],
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _deployments(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    gateway = console_gateway(request)
    return deployment_states(gateway.table, gateway.router, gateway.redactor.text)


@get("/")
async def overview_page(request: Request[Any, Any, Any]) -> Response[str]:
    params = request.query_params
    period = PERIODS.get(params.get("period", ""), PERIODS[_DEFAULT_PERIOD])
    group_by = params.get("by", "")
    if group_by not in GROUPINGS:
        group_by = _DEFAULT_GROUPING
    gateway = console_gateway(request)
    now = datetime.fromtimestamp(gateway.clock(), UTC)
    overview = await read_overview(gateway.sessions, period, group_by, now)
    return render(
        request,
        "overview.html",
        overview=overview,
        periods=PERIODS,
        groupings=GROUPINGS,
        groups=overview.groups[:_GROUP_ROWS],
        hidden_groups=max(0, len(overview.groups) - _GROUP_ROWS),
        chart=_chart_data(overview),
        deployments=_deployments(request),
        milliseconds=milliseconds,
        money=money,
        whole=whole,
    )


@get("/overview/deployments")
async def overview_deployments(request: Request[Any, Any, Any]) -> Response[str]:
    """The deployments' states, which the overview re-reads every few seconds."""
    return render(request, "overview/deployments.html", deployments=_deployments(request))


ROUTES = [overview_page, overview_deployments]
