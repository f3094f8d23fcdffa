"""What a database holds at start, found in one or two queries, and a fresh database created whole.

Every start after the first finds the database at the newest revision; the first finds it empty. Neither
needs Alembic, which costs a start ~0.5 s (it imports every migration script, Mako and its own
modules, then compares revisions) and a serving process ~10 MB. Only a database at an older revision
(or one this code does not know) is migrated by Alembic (engine.store.migrate).

An empty database gets the models' metadata and Alembic's version table stamped with `HEAD_REVISION`
in one transaction, which is what `alembic upgrade head` would leave: tests/unit/test_migrations.py
compares the two schemas, and pins `HEAD_REVISION` to the newest script in migrations/versions.
"""

from __future__ import annotations

from enum import Enum

from sqlalchemy import Column, Connection, MetaData, PrimaryKeyConstraint, String, Table, inspect, select

from engine.store.models import Base

__all__ = ["HEAD_REVISION", "VERSION_TABLE", "SchemaState", "create_schema", "schema_state"]

# the newest revision in migrations/versions; a new migration script changes it (a test checks)
HEAD_REVISION = "c4c8e1a2b3d4"
VERSION_TABLE = "alembic_version"

# Alembic's own version table, as `alembic.ddl.impl.DefaultImpl.version_table_impl` defines it
_versions = Table(
    VERSION_TABLE,
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
)


class SchemaState(Enum):
    CURRENT = "current"  # stamped with HEAD_REVISION: nothing to do
    EMPTY = "empty"  # no table at all: create_schema builds it whole
    BEHIND = "behind"  # anything else (an older revision, or tables without a stamp): Alembic's job


def schema_state(connection: Connection) -> SchemaState:
    """Where the database stands (run inside `AsyncConnection.run_sync`)."""
    tables = inspect(connection).get_table_names()
    if not tables:
        return SchemaState.EMPTY
    if VERSION_TABLE not in tables:
        return SchemaState.BEHIND
    stamped = connection.execute(select(_versions.c.version_num)).scalars().all()
    return SchemaState.CURRENT if stamped == [HEAD_REVISION] else SchemaState.BEHIND


def create_schema(connection: Connection) -> None:
    """Every table of the models and the version stamp, in the caller's transaction."""
    Base.metadata.create_all(connection)
    _versions.create(connection)
    connection.execute(_versions.insert().values(version_num=HEAD_REVISION))
