"""licence.log_index: where the licence's issuance leaf sits in the transparency log (NULL for rows issued
before it was kept; verification then finds the leaf by its hash)

Revision ID: 0af2768c38f6
Revises: 2577cd4a31f1
Create Date: 2026-11-25 17:29:04.279093
"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0af2768c38f6'
down_revision: Union[str, Sequence[str], None] = '2577cd4a31f1'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('licence', schema=None) as batch_op:
        batch_op.add_column(sa.Column('log_index', sa.BigInteger(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('licence', schema=None) as batch_op:
        batch_op.drop_column('log_index')

