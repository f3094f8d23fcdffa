"""The request log says which requests the response cache answered.

`cache_hit`, false for every row logged before (the cache did not exist), so that a hit's zero cost
and tokens can be told from a request with no price.

Revision ID: c4c8e1a2b3d4
Revises: 5f0c1e7a9b21
Create Date: 2026-12-06 19:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4c8e1a2b3d4"
down_revision: str | None = "5f0c1e7a9b21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a plain ADD COLUMN, not a batch: SQLite adds a NOT NULL column with a constant default in place,
    # where a batch would copy the whole log (tens of seconds for a million rows)
    column = sa.Column("cache_hit", sa.Boolean(), server_default=sa.false(), nullable=False)
    op.add_column("request_log", column)


def downgrade() -> None:
    with op.batch_alter_table("request_log", schema=None) as batch_op:
        batch_op.drop_column("cache_hit")
