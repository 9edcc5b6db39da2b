"""licence.historical: the licence was issued before ecert and recorded as a historical import (it may be
back-dated and already expired; its history starts at valid_from)

Revision ID: 5e1c0d2a7b94
Revises: a8c7d653da29
Create Date: 2026-12-04 17:10:00.000000
"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


revision: str = '5e1c0d2a7b94'
down_revision: Union[str, Sequence[str], None] = 'a8c7d653da29'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('licence', schema=None) as batch_op:
        batch_op.add_column(sa.Column('historical', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('licence', schema=None) as batch_op:
        batch_op.drop_column('historical')
