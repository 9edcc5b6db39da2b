"""Idempotency keys apart: bulk rows get licence.bulk_item (``<job>:<row>``) instead of a key in the clients'
namespace, and a bulk job keeps its client's Idempotency-Key and request fingerprint

Rows a bulk job issued before (key ``bulk:<job>:<row>`` and issuer ``bulk:<job>``) move their key to bulk_item,
so a job resumed after the upgrade finds them; a client's own key that merely looks like that stays the client's.

Revision ID: 9071eb925e3a
Revises: 0af2768c38f6
Create Date: 2026-12-04 16:49:13.149709
"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '9071eb925e3a'
down_revision: Union[str, Sequence[str], None] = '0af2768c38f6'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('bulk_job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True))
        batch_op.add_column(sa.Column('request_fingerprint', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.create_unique_constraint('uq_bulk_job_idempotency', ['department_code', 'idempotency_key'])

    with op.batch_alter_table('licence', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bulk_item', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.create_unique_constraint('uq_licence_bulk_item', ['bulk_item'])

    op.execute(
        "UPDATE licence SET bulk_item = substr(idempotency_key, 6), idempotency_key = NULL "
        "WHERE issued_by LIKE 'bulk:%' AND idempotency_key LIKE issued_by || ':%'"
    )


def downgrade() -> None:
    op.execute("UPDATE licence SET idempotency_key = 'bulk:' || bulk_item WHERE bulk_item IS NOT NULL")
    with op.batch_alter_table('licence', schema=None) as batch_op:
        batch_op.drop_constraint('uq_licence_bulk_item', type_='unique')
        batch_op.drop_column('bulk_item')

    with op.batch_alter_table('bulk_job', schema=None) as batch_op:
        batch_op.drop_constraint('uq_bulk_job_idempotency', type_='unique')
        batch_op.drop_column('request_fingerprint')
        batch_op.drop_column('idempotency_key')
