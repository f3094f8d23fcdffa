"""Reading a test gateway's request log from SQLite, as the batched writer leaves it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine

from engine.store.request_log import RequestLogRow
from tests.support.server import GatewayServer

__all__ = ["request_log_db", "row_for"]


@contextmanager
def request_log_db(gateway: GatewayServer) -> Iterator[Engine]:
    """A synchronous engine on the gateway's SQLite database."""
    engine = create_engine(gateway.settings.database_url.replace("sqlite+aiosqlite", "sqlite"))
    try:
        yield engine
    finally:
        engine.dispose()


def row_for(db: Engine, request_id: str, timeout: float = 5.0) -> RequestLogRow:
    """The row of one request, once the batched writer has written it."""
    deadline = time.monotonic() + timeout
    with db.connect() as connection:
        while True:
            found = connection.execute(
                select(RequestLogRow.__table__).where(RequestLogRow.request_id == request_id)
            ).first()
            if found is not None:
                return RequestLogRow(**found._asdict())
            assert time.monotonic() < deadline, f"no request_log row for {request_id}"
            time.sleep(0.05)
