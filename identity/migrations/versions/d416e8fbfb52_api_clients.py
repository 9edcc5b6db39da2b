"""api clients

Revision ID: d416e8fbfb52
Revises:
Create Date: 2026-11-25 12:03:08.930578
"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = 'd416e8fbfb52'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = ('identity',)
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('identity_api_client',
    sa.Column('client_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('department_code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('scopes', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('secret_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('client_id')
    )
    with op.batch_alter_table('identity_api_client', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_api_client_department_code'), ['department_code'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('identity_api_client', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_api_client_department_code'))

    op.drop_table('identity_api_client')
