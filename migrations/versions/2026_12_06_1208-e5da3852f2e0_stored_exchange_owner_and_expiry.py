"""Stored exchanges belong to a key and expire.

`key_id` (None: the gateway's own space) and a required `expires_at`, both indexed (a revoked key's
rows and the expired ones are purged).

Rows stored before this revision had no owner and no expiry: they go to the gateway's own space (the
master key may continue them, a virtual key may not) and live 30 days (the default
`stored_response_ttl`) from the upgrade.

Revision ID: e5da3852f2e0
Revises: b3634ed6319a
Create Date: 2026-12-06 12:08:34.819424
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = 'e5da3852f2e0'
down_revision: str | None = 'b3634ed6319a'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LEGACY_LIFETIME = timedelta(days=30)


def upgrade() -> None:
    exchanges = sa.table('stored_exchanges', sa.column('expires_at', sa.DateTime(timezone=True)))
    op.execute(
        exchanges.update()
        .where(exchanges.c.expires_at.is_(None))
        .values(expires_at=datetime.now(UTC) + _LEGACY_LIFETIME)
    )
    with op.batch_alter_table('stored_exchanges', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_id', sa.Integer(), nullable=True))
        batch_op.alter_column('expires_at', existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.create_index(batch_op.f('ix_stored_exchanges_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_stored_exchanges_key_id'), ['key_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('stored_exchanges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stored_exchanges_key_id'))
        batch_op.drop_index(batch_op.f('ix_stored_exchanges_expires_at'))
        batch_op.alter_column('expires_at', existing_type=sa.DateTime(timezone=True), nullable=True)
        batch_op.drop_column('key_id')
