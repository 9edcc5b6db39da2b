"""Tables of ecert itself (infrastructure shared by every package): rate-limit windows shared by all workers."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

__all__ = ["RateCount", "RateWorker"]


class RateCount(SQLModel, table=True):
    """Hits of one client key in one fixed window (``slot`` = seconds since the epoch // window length).

    Workers add their local counts in batches (:class:`ecert.ratelimit.SharedWindows`); rows older
    than the previous window are deleted as they go.
    """

    __tablename__ = "ecert_rate_count"
    __table_args__ = (sa.Index("ix_ecert_rate_count_scope_slot", "scope", "slot"),)

    scope: str = Field(primary_key=True, max_length=32)
    key: str = Field(primary_key=True, max_length=128)
    slot: int = Field(primary_key=True, sa_type=sa.BigInteger, sa_column_kwargs={"autoincrement": False})
    hits: float = Field(default=0.0, sa_type=sa.Float)


class RateWorker(SQLModel, table=True):
    """A worker that recently synced a scope's counts (``seen_at`` in seconds since the epoch): how many share it."""

    __tablename__ = "ecert_rate_worker"

    scope: str = Field(primary_key=True, max_length=32)
    worker: str = Field(primary_key=True, max_length=64)
    seen_at: float = Field(sa_type=sa.Float)
