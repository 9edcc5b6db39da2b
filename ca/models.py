"""Tables of the certificate authority: departments, CAs, every certificate issued, CRL state."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

__all__ = ["Department", "CaRecord", "IssuedCertificate", "CrlRecord"]

_TS = sa.DateTime(timezone=True)


class Department(SQLModel, table=True):
    """A department of the provincial platform, known by its short code (e.g. ``SCJGJ``)."""

    __tablename__ = "ca_department"

    code: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    created_at: dt.datetime = Field(sa_type=_TS)
    disabled_at: dt.datetime | None = Field(default=None, sa_type=_TS)


class CaRecord(SQLModel, table=True):
    """A certificate authority of ecert (the root, an issuing CA): its key version and certificate."""

    __tablename__ = "ca_authority"

    name: str = Field(primary_key=True, max_length=32)
    role: str = Field(max_length=16)  # root | issuing
    parent: str | None = Field(default=None, max_length=32)
    key_name: str = Field(max_length=64)
    key_version: int
    serial: str = Field(max_length=40)
    certificate_der: bytes
    not_before: dt.datetime = Field(sa_type=_TS)
    not_after: dt.datetime = Field(sa_type=_TS)
    created_at: dt.datetime = Field(sa_type=_TS)


class IssuedCertificate(SQLModel, table=True):
    """Every certificate a CA of ecert signed (CAs included), with its revocation state."""

    __tablename__ = "ca_certificate"
    __table_args__ = (
        sa.Index("ix_ca_certificate_revoked", "issuer", "revoked_at"),
        sa.Index("ix_ca_certificate_holder", "profile", "department_code", "not_after"),
    )

    serial: str = Field(primary_key=True, max_length=40)  # lower-case hex, no leading zeros
    issuer: str = Field(max_length=32)  # CaRecord.name
    profile: str = Field(max_length=16)  # issuing | seal | ocsp | tsa
    subject: str = Field(max_length=512)
    department_code: str | None = Field(default=None, max_length=32)
    key_name: str = Field(max_length=64)
    key_version: int
    not_before: dt.datetime = Field(sa_type=_TS)
    not_after: dt.datetime = Field(sa_type=_TS)
    certificate_der: bytes
    issued_at: dt.datetime = Field(sa_type=_TS)
    revoked_at: dt.datetime | None = Field(default=None, sa_type=_TS)
    revocation_reason: str | None = Field(default=None, max_length=32)
    invalidity_date: dt.datetime | None = Field(default=None, sa_type=_TS)


class CrlRecord(SQLModel, table=True):
    """The latest CRL of a CA: its number, times and DER.

    A revocation bumps ``changes``; a CRL built from an older ``changes`` is stale and is rebuilt
    on the next request (and by the scheduler before ``next_update``).
    """

    __tablename__ = "ca_crl"

    issuer: str = Field(primary_key=True, max_length=32)
    number: int = 0
    this_update: dt.datetime | None = Field(default=None, sa_type=_TS)
    next_update: dt.datetime | None = Field(default=None, sa_type=_TS)
    crl_der: bytes | None = None
    changes: int = 1
    built_from: int = 0
