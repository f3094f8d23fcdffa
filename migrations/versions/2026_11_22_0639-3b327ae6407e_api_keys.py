"""Virtual keys: API keys issued by the admin API, stored as their SHA-256 only.

A new table only; budgets and limits are stored, not yet enforced.

Revision ID: 3b327ae6407e
Revises: eda5acff3171
Create Date: 2026-11-22 06:39:44.610673
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '3b327ae6407e'
down_revision: str | None = 'eda5acff3171'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('key_prefix', sa.String(length=8), nullable=False),
    sa.Column('key_alias', sa.String(length=200), nullable=True),
    sa.Column('models', sa.JSON(), nullable=False),
    sa.Column('max_budget', sa.Numeric(precision=20, scale=10), nullable=True),
    sa.Column('budget_duration', sa.String(length=20), nullable=True),
    sa.Column('spend', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('rpm_limit', sa.Integer(), nullable=True),
    sa.Column('tpm_limit', sa.Integer(), nullable=True),
    sa.Column('max_parallel_requests', sa.Integer(), nullable=True),
    sa.Column('privacy', sa.String(length=20), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('metadata', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("privacy IN ('local', 'private')", name=op.f('ck_api_keys_privacy')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash'))
    )


def downgrade() -> None:
    op.drop_table('api_keys')
