"""What every test session shares."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.services import empty_postgres


@pytest.fixture(scope="session", autouse=True)
def _leave_the_shared_database_empty(request: pytest.FixtureRequest) -> Iterator[None]:
    """The PostgreSQL tests share one database; the session leaves it as it found it: empty."""
    yield
    if any(item.get_closest_marker("postgres") for item in request.session.items):
        empty_postgres()
