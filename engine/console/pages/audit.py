"""The audit log: every console change and sign-in, newest first, paginated by id."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from sqlalchemy import select

from engine.console.render import render
from engine.console.state import console_gateway
from engine.store.models import AuditRow

__all__ = ["ROUTES", "audit_page"]

_PAGE = 50


@get("/audit")
async def audit_page(request: Request[Any, Any, Any]) -> Response[str]:
    before = request.query_params.get("before")
    statement = select(AuditRow).order_by(AuditRow.id.desc()).limit(_PAGE + 1)
    if before is not None and before.isdigit() and len(before) < 19:
        statement = statement.where(AuditRow.id < int(before))
    async with console_gateway(request).sessions() as session:
        rows = list(await session.scalars(statement))
    more = len(rows) > _PAGE
    rows = rows[:_PAGE]
    return render(request, "audit.html", rows=rows, next_before=rows[-1].id if more else None)


ROUTES = [audit_page]
