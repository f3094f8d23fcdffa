"""Requests: the request log, newest first, filtered by key, alias, status and time, paginated with
the API's cursor; a row opens its details (an htmx fragment, or a page of its own when opened
directly)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get
from litestar.params import FromPath
from sqlalchemy import select

from engine.console.key_names import MASTER_KEY_LABEL, all_key_labels, key_labels
from engine.console.pages.overview import money
from engine.console.render import render
from engine.console.request_filter import STATUS_CHOICES, TIME_CHOICES, parse_query
from engine.console.state import console_gateway
from engine.store.request_log import RequestLogRow
from engine.usage.cursor import encode_cursor
from engine.usage.report import UsageReport

__all__ = ["ROUTES", "request_detail", "request_log_page"]

_PAGE = 50


def _exact_cost(value: Decimal) -> str:
    """The cost as stored, plainly: "0.00012", "3", "0" (never "1.2E-4")."""
    return format(value.normalize(), "f")


def _duration(value: float | None) -> str:
    """Exact, unlike the overview's percentiles: "812 ms", "2.41 s"."""
    if value is None:
        return "—"
    return f"{value:.0f} ms" if value < 1000 else f"{value / 1000:.2f} s"


@get("/requests")
async def request_log_page(request: Request[Any, Any, Any]) -> Response[str]:
    gateway = console_gateway(request)
    now = datetime.fromtimestamp(gateway.clock(), UTC)
    query = parse_query(request.query_params, now)
    rows: list[RequestLogRow] = []
    if not query.errors:
        found = await UsageReport(gateway.sessions).requests(
            query.where, limit=_PAGE + 1, before_id=query.before_id
        )
        rows = found[:_PAGE]
    kept = {name: value for name, value in query.values.items() if value and name != "cursor"}
    older = None
    if rows and not query.errors and len(found) > _PAGE:
        older = urlencode({**kept, "cursor": encode_cursor(rows[-1].id)})
    async with gateway.sessions() as session:
        keys = await all_key_labels(session)
    labels = dict(keys)
    return render(
        request,
        "requests.html",
        status=400 if query.errors else 200,
        rows=rows,
        query=query,
        keys=keys,
        labels=labels,
        master=MASTER_KEY_LABEL,
        aliases=sorted(gateway.table.aliases),
        status_choices=STATUS_CHOICES,
        time_choices=TIME_CHOICES,
        older=older,
        newest=urlencode(kept) if query.values["cursor"] else None,
        duration=_duration,
        money=money,
    )


@get("/requests/{row_id:int}")
async def request_detail(request: Request[Any, Any, Any], row_id: FromPath[int]) -> Response[str]:
    """One request's details: a fragment for htmx, a page when opened from its own URL."""
    gateway = console_gateway(request)
    async with gateway.sessions() as session:
        row = await session.scalar(select(RequestLogRow).where(RequestLogRow.id == row_id))
        labels = await key_labels(session, [row.key_id] if row is not None and row.key_id else [])
    fragment = request.headers.get("hx-request") == "true"
    template = "requests/detail.html" if fragment else "requests/detail_page.html"
    key = (
        MASTER_KEY_LABEL
        if row is None or row.key_id is None
        else labels.get(row.key_id, f"key #{row.key_id}")
    )
    return render(
        request,
        template,
        status=200 if row is not None else 404,
        row=row,
        key=key,
        duration=_duration,
        exact_cost=_exact_cost,
    )


ROUTES = [request_log_page, request_detail]
