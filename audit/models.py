"""Tables of the audit trail: the hash-chained events and the chain's head."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

__all__ = [
    "AuditEvent", "AuditHead", "AuditCheckpoint", "TlogHead", "TlogLeaf", "TlogNode", "TlogTreeHead", "StatsDaily",
    "GENESIS_HASH",
]

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


class AuditCheckpoint(SQLModel, table=True):
    """A signed statement "the trail had ``seq`` events and its last hash was ``hash`` at ``at``"."""

    __tablename__ = "audit_checkpoint"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    hash: str = Field(max_length=64)
    at: dt.datetime = Field(sa_type=sa.DateTime(timezone=True))
    key_name: str = Field(max_length=64)
    key_version: int
    signature: str = Field(max_length=256)  # base64 of the DER ECDSA signature


class TlogHead(SQLModel, table=True):
    """A single row (id=1): the transparency log's size; appenders serialise on it."""

    __tablename__ = "tlog_head"

    id: int = Field(default=1, primary_key=True)
    size: int = Field(default=0, sa_type=sa.BigInteger)


class TlogLeaf(SQLModel, table=True):
    """One entry of the transparency log; ``leaf_hash`` = SHA-256(0x00 || entry bytes)."""

    __tablename__ = "tlog_leaf"

    idx: int = Field(sa_type=sa.BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    leaf_hash: bytes = Field(sa_type=sa.LargeBinary(32), index=True)
    kind: int = Field(sa_type=sa.SmallInteger)
    timestamp: int = Field(sa_type=sa.BigInteger)  # milliseconds since the epoch
    cert_digest: bytes = Field(sa_type=sa.LargeBinary(32))
    number_hash: bytes = Field(sa_type=sa.LargeBinary(32))


class TlogNode(SQLModel, table=True):
    """Cached hash of a complete subtree (``level`` >= 4 only; smaller ones are rehashed from leaves)."""

    __tablename__ = "tlog_node"

    level: int = Field(sa_type=sa.SmallInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    idx: int = Field(sa_type=sa.BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    hash: bytes = Field(sa_type=sa.LargeBinary(32))


class TlogTreeHead(SQLModel, table=True):
    """A signed tree head (RFC 9162 TreeHeadDataV2 signed with the "transparency-log" key)."""

    __tablename__ = "tlog_sth"

    tree_size: int = Field(sa_type=sa.BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    root_hash: bytes = Field(sa_type=sa.LargeBinary(32))
    timestamp: int = Field(sa_type=sa.BigInteger)
    key_name: str = Field(max_length=64)
    key_version: int
    signature: bytes = Field(sa_type=sa.LargeBinary(256))


class StatsDaily(SQLModel, table=True):
    """Pre-aggregated counts: one row per department, day, metric (an audit action) and dimension."""

    __tablename__ = "stats_daily"

    department: str = Field(default="", max_length=32, primary_key=True)
    day: dt.date = Field(primary_key=True, index=True)
    metric: str = Field(max_length=64, primary_key=True)
    dimension: str = Field(default="", max_length=64, primary_key=True)
    count: int = Field(default=0, sa_type=sa.BigInteger)
