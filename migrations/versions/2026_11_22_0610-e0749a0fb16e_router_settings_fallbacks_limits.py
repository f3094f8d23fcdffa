"""Router settings and fallbacks per source, an alias's own strategy, typed deployment limits, forced params.

`deployments.limits` (a JSON document holding rpm / tpm) becomes three nullable integer columns, so
the loader reads typed values and `max_parallel_requests` joins them; the values are copied over.
`forced_params` is added nullable, filled with {} and then made NOT NULL, so tables with rows upgrade.

Revision ID: e0749a0fb16e
Revises: 69382d679281
Create Date: 2026-11-22 06:10:16.241453
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision: str = 'e0749a0fb16e'
down_revision: str | None = '69382d679281'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIMIT_KEYS = ('rpm', 'tpm', 'max_parallel_requests')

# the columns this revision reads and writes, as they are while it runs
deployments = sa.table(
    'deployments',
    sa.column('id', sa.Integer()),
    sa.column('limits', sa.JSON()),
    sa.column('forced_params', sa.JSON()),
    *(sa.column(key, sa.Integer()) for key in LIMIT_KEYS),
)


def _copy(read: list[str], write: Callable[[Any], dict[str, object]]) -> None:
    """Rewrite every deployment with `write(row)` -> values (online only: offline has no rows to read)."""
    if context.is_offline_mode():
        return
    connection = op.get_bind()
    rows = connection.execute(sa.select(deployments.c.id, *(deployments.c[name] for name in read))).all()
    for row in rows:
        connection.execute(
            deployments.update().where(deployments.c.id == row.id).values(**write(row))
        )


def upgrade() -> None:
    op.create_table('fallbacks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=50), nullable=False),
    sa.Column('alias', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('target', sa.String(length=200), nullable=False),
    sa.CheckConstraint("kind IN ('general', 'context_window', 'content_policy')", name=op.f('ck_fallbacks_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fallbacks')),
    sa.UniqueConstraint('source', 'alias', 'kind', 'position', name=op.f('uq_fallbacks_source_alias_kind_position'))
    )
    op.create_table('router_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=50), nullable=False),
    sa.Column('key', sa.String(length=50), nullable=False),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_router_settings')),
    sa.UniqueConstraint('source', 'key', name=op.f('uq_router_settings_source_key'))
    )
    with op.batch_alter_table('aliases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('routing_strategy', sa.String(length=50), nullable=True))

    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('forced_params', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('rpm', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('tpm', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('max_parallel_requests', sa.Integer(), nullable=True))

    def limits(row: Any) -> dict[str, object]:
        return {'forced_params': {}, **{key: (row.limits or {}).get(key) for key in LIMIT_KEYS}}

    _copy(['limits'], limits)
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.alter_column('forced_params', existing_type=sa.JSON(), nullable=False)
        batch_op.drop_column('limits')


def downgrade() -> None:
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('limits', sa.JSON(), nullable=True))

    def limits(row: Any) -> dict[str, object]:
        return {'limits': {key: row[index + 1] for index, key in enumerate(LIMIT_KEYS) if row[index + 1] is not None}}

    _copy(list(LIMIT_KEYS), limits)
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.alter_column('limits', existing_type=sa.JSON(), nullable=False)
        batch_op.drop_column('max_parallel_requests')
        batch_op.drop_column('tpm')
        batch_op.drop_column('rpm')
        batch_op.drop_column('forced_params')

    with op.batch_alter_table('aliases', schema=None) as batch_op:
        batch_op.drop_column('routing_strategy')

    op.drop_table('router_settings')
    op.drop_table('fallbacks')
