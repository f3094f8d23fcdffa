"""Stored exchanges: the canonical history a dialect with a `store` section continues by id.

A new table only; `expires_at` is nullable (no expiry unless a later writer sets one).

Revision ID: eda5acff3171
Revises: e0749a0fb16e
Create Date: 2026-11-22 06:27:56.772549
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'eda5acff3171'
down_revision: str | None = 'e0749a0fb16e'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('stored_exchanges',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('dialect', sa.String(length=50), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('messages', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stored_exchanges'))
    )


def downgrade() -> None:
    op.drop_table('stored_exchanges')
