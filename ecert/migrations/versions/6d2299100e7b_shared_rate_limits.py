"""shared rate limits: per-key hit counts per window and the workers that share them (ecert.ratelimit)

Revision ID: 6d2299100e7b
Revises: 
Create Date: 2026-11-25 15:05:28.442825
"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '6d2299100e7b'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = ('ecert',)
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('ecert_rate_count',
    sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('slot', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hits', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'key', 'slot')
    )
    with op.batch_alter_table('ecert_rate_count', schema=None) as batch_op:
        batch_op.create_index('ix_ecert_rate_count_scope_slot', ['scope', 'slot'], unique=False)

    op.create_table('ecert_rate_worker',
    sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('worker', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('seen_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'worker')
    )


def downgrade() -> None:
    op.drop_table('ecert_rate_worker')
    with op.batch_alter_table('ecert_rate_count', schema=None) as batch_op:
        batch_op.drop_index('ix_ecert_rate_count_scope_slot')

    op.drop_table('ecert_rate_count')
