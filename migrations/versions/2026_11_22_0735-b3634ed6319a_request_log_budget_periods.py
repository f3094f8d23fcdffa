"""The request log (one row per request, written in batches) and the end of each key's budget period.

Revision ID: b3634ed6319a
Revises: 3b327ae6407e
Create Date: 2026-11-22 07:35:59.048818
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'b3634ed6319a'
down_revision: str | None = '3b327ae6407e'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('request_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('request_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('key_id', sa.Integer(), nullable=True),
    sa.Column('alias', sa.String(length=200), nullable=False),
    sa.Column('operation', sa.String(length=20), nullable=False),
    sa.Column('stream', sa.Boolean(), nullable=False),
    sa.Column('deployment_id', sa.Integer(), nullable=True),
    sa.Column('provider', sa.String(length=100), nullable=True),
    sa.Column('upstream_model', sa.String(length=200), nullable=True),
    sa.Column('prompt_tokens', sa.Integer(), nullable=True),
    sa.Column('completion_tokens', sa.Integer(), nullable=True),
    sa.Column('reasoning_tokens', sa.Integer(), nullable=True),
    sa.Column('cached_tokens', sa.Integer(), nullable=True),
    sa.Column('tokens_estimated', sa.Boolean(), nullable=False),
    sa.Column('cost', sa.Numeric(precision=20, scale=10), nullable=True),
    sa.Column('latency_ms', sa.Double(), nullable=False),
    sa.Column('ttft_ms', sa.Double(), nullable=True),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('error_type', sa.String(length=100), nullable=True),
    sa.Column('error_code', sa.String(length=100), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_request_log')),
    sa.UniqueConstraint('request_id', name=op.f('uq_request_log_request_id'))
    )
    with op.batch_alter_table('request_log', schema=None) as batch_op:
        batch_op.create_index('ix_request_log_alias_created_at', ['alias', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_request_log_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_request_log_deployment_id_created_at', ['deployment_id', 'created_at'], unique=False)
        batch_op.create_index('ix_request_log_key_id_created_at', ['key_id', 'created_at'], unique=False)

    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('budget_reset_at', sa.DateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('budget_reset_at')

    with op.batch_alter_table('request_log', schema=None) as batch_op:
        batch_op.drop_index('ix_request_log_key_id_created_at')
        batch_op.drop_index('ix_request_log_deployment_id_created_at')
        batch_op.drop_index(batch_op.f('ix_request_log_created_at'))
        batch_op.drop_index('ix_request_log_alias_created_at')

    op.drop_table('request_log')
