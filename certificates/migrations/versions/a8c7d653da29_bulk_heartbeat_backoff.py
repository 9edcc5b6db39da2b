"""bulk_job.heartbeat_at (a dead worker's job is taken over when its heartbeat stops), failures and retry_at
(exponential backoff while Vault or the blob store fails)

Revision ID: a8c7d653da29
Revises: 9071eb925e3a
Create Date: 2026-12-04 17:08:00
"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


revision: str = 'a8c7d653da29'
down_revision: Union[str, Sequence[str], None] = '9071eb925e3a'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('bulk_job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('failures', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('retry_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('bulk_job', schema=None) as batch_op:
        batch_op.drop_column('retry_at')
        batch_op.drop_column('failures')
        batch_op.drop_column('heartbeat_at')
