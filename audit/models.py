"""Tables of the audit trail: the hash-chained events and the chain's head."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

__all__ = ["AuditEvent", "AuditHead", "GENESIS_HASH"]

GENESIS_HASH = "0" * 64


class AuditEvent(SQLModel, table=True):
    """One event; ``hash`` covers every field and the previous event's hash."""

    __tablename__ = "audit_event"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: dt.datetime = Field(sa_type=sa.DateTime(timezone=True), index=True)
    action: str = Field(max_length=64, index=True)
    actor: str = Field(max_length=128)
    target: str | None = Field(default=None, max_length=256, index=True)
    department: str | None = Field(default=None, max_length=32, index=True)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class AuditHead(SQLModel, table=True):
    """A single row (id=1): the last sequence number and hash; writers serialise on it."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = Field(default=GENESIS_HASH, max_length=64)
