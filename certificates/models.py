"""Tables of the e-certificate library: licence types, licences, their history and bulk jobs.

Personal ID numbers are never stored in clear: ``holder_id_cipher`` is Vault transit
ciphertext (key ``pii``) and ``holder_index`` a keyed hash (key ``pii-index``) used to find a
holder's licences without decrypting anything.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from certificates.times import UtcDateTime

__all__ = [
    "LicenceType",
    "Licence",
    "LicenceEvent",
    "StatusList",
    "StatusListToken",
    "LicenceSerial",
    "BulkJob",
    "BulkJobItem",
    "StoredBlob",
    "LicenceAccess",
]

_TS = UtcDateTime()  # aware UTC in and out, on SQLite as on PostgreSQL


class LicenceType(SQLModel, table=True):
    """One version of a kind of licence a department issues (its schema, validity rule, layout)."""

    __tablename__ = "licence_type"
    __table_args__ = (sa.UniqueConstraint("department_code", "code", "version", name="uq_licence_type_version"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=16, index=True)
    department_code: str = Field(max_length=32, index=True)
    version: int = 1
    name_zh: str = Field(max_length=200)
    name_en: str = Field(max_length=200)
    fields_schema: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    validity: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    layout: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    disclosure: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    active: bool = True
    created_at: dt.datetime = Field(sa_type=_TS)
    created_by: str = Field(max_length=128)


class Licence(SQLModel, table=True):
    """The one authoritative record of an issued e-licence."""

    __tablename__ = "licence"
    __table_args__ = (
        sa.UniqueConstraint("department_code", "idempotency_key", name="uq_licence_idempotency"),
        sa.UniqueConstraint("bulk_item", name="uq_licence_bulk_item"),
        sa.Index("ix_licence_department_issued", "department_code", "issued_at"),
        sa.Index("ix_licence_status_slot", "status_list", "status_index", unique=True),
    )

    id: str = Field(primary_key=True, max_length=32)
    number: str = Field(max_length=64, unique=True)
    token: str = Field(max_length=32, unique=True)
    type_code: str = Field(max_length=16)
    type_version: int
    department_code: str = Field(max_length=32)
    holder_kind: str = Field(max_length=16)
    holder_name: str = Field(max_length=200)
    holder_id_cipher: str = Field(max_length=512)
    holder_index: str = Field(max_length=64, index=True)
    fields: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    fields_digest: str = Field(max_length=64)
    status: str = Field(max_length=16, index=True)
    status_reason: str | None = Field(default=None, max_length=500)
    status_effective_at: dt.datetime | None = Field(default=None, sa_type=_TS)
    valid_from: dt.datetime = Field(sa_type=_TS)
    valid_until: dt.datetime | None = Field(default=None, sa_type=_TS, index=True)
    issued_at: dt.datetime = Field(sa_type=_TS)
    issued_by: str = Field(max_length=128)
    updated_at: dt.datetime = Field(sa_type=_TS)
    supersedes_id: str | None = Field(default=None, max_length=32)
    superseded_by_id: str | None = Field(default=None, max_length=32)
    associated_number: str | None = Field(default=None, max_length=64)
    qr_payload: str | None = Field(default=None, sa_type=sa.Text)
    pdf_blob_key: str | None = Field(default=None, max_length=128)
    pdf_sha256: str | None = Field(default=None, max_length=64)
    idempotency_key: str | None = Field(default=None, max_length=128)  # the client's key (per department)
    request_fingerprint: str | None = Field(default=None, max_length=64)
    bulk_item: str | None = Field(default=None, max_length=64)  # ``<job>:<row>`` for a bulk row: never a client's key
    status_list: int | None = Field(default=None)
    status_index: int | None = Field(default=None)
    log_index: int | None = Field(default=None, sa_type=sa.BigInteger)  # the transparency log index of its issuance leaf
    historical: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})  # imported: issued before ecert


class LicenceEvent(SQLModel, table=True):
    """One status change of a licence (its full history, oldest first by ``id``)."""

    __tablename__ = "licence_event"

    id: int | None = Field(default=None, primary_key=True)
    licence_id: str = Field(max_length=32, index=True)
    action: str = Field(max_length=32)
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str = Field(max_length=16)
    reason: str | None = Field(default=None, max_length=500)
    effective_at: dt.datetime = Field(sa_type=_TS)
    actor: str = Field(max_length=128)
    at: dt.datetime = Field(sa_type=_TS)


class LicenceSerial(SQLModel, table=True):
    """The serial counter per (type, department, year), bumped inside the issuing transaction."""

    __tablename__ = "licence_serial"

    type_code: str = Field(primary_key=True, max_length=16)
    department_code: str = Field(primary_key=True, max_length=32)
    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    last: int = 0


class BulkJob(SQLModel, table=True):
    """Many licences issued from one submission, processed in the background."""

    __tablename__ = "bulk_job"
    __table_args__ = (sa.UniqueConstraint("department_code", "idempotency_key", name="uq_bulk_job_idempotency"),)

    id: str = Field(primary_key=True, max_length=32)
    department_code: str = Field(max_length=32, index=True)
    type_code: str = Field(max_length=16)
    type_version: int | None = None
    status: str = Field(max_length=16, index=True)
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    cancel_requested: bool = False
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: dt.datetime | None = Field(default=None, sa_type=_TS)
    heartbeat_at: dt.datetime | None = Field(default=None, sa_type=_TS)  # the lease holder's last sign of life
    failures: int = 0  # outages in a row (Vault, blob store): the next try waits longer and issues one row
    retry_at: dt.datetime | None = Field(default=None, sa_type=_TS)  # no worker takes the job before this
    last_error: str | None = Field(default=None, max_length=500)
    created_by: str = Field(max_length=128)
    created_at: dt.datetime = Field(sa_type=_TS)
    updated_at: dt.datetime = Field(sa_type=_TS)
    finished_at: dt.datetime | None = Field(default=None, sa_type=_TS)
    idempotency_key: str | None = Field(default=None, max_length=128)
    request_fingerprint: str | None = Field(default=None, max_length=64)


class BulkJobItem(SQLModel, table=True):
    """One row of a bulk job and its result."""

    __tablename__ = "bulk_job_item"

    job_id: str = Field(primary_key=True, max_length=32)
    row: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    status: str = Field(max_length=16, index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    licence_id: str | None = Field(default=None, max_length=32)
    error: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)


class StoredBlob(SQLModel, table=True):
    """A blob (signed PDF) kept in the database by :class:`certificates.blobs.DatabaseBlobStore`."""

    __tablename__ = "licence_blob"

    key: str = Field(primary_key=True, max_length=128)
    data: bytes = Field(sa_type=sa.LargeBinary)
    sha256: str = Field(max_length=64)
    created_at: dt.datetime = Field(sa_type=_TS)


class StatusList(SQLModel, table=True):
    """One status list: its size, how many slots are taken and its permutation key (the claim row)."""

    __tablename__ = "status_list"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    size: int
    bits: int
    perm_key: bytes
    filled: int = 0
    created_at: dt.datetime = Field(sa_type=_TS)


class StatusListToken(SQLModel, table=True):
    """A list's change counter and its cached signed token, apart from the claim row: status changes
    and rebuilds never hold the row that issuance claims slots on."""

    __tablename__ = "status_list_token"

    list_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    changes: int = 0
    built_from: int = -1
    built_at: dt.datetime | None = Field(default=None, sa_type=_TS)
    token: str | None = Field(default=None, sa_type=sa.Text)


class LicenceAccess(SQLModel, table=True):
    """One disclosure of a licence to an identified checker (the holder's "who checked" history).

    The holder is named by the licence's blind index, never in clear; ``disclosed`` lists what the
    checker saw (field names, and whether the holder's name and ID number were shown masked or in full).
    Anonymous link checks are only counted (``audit.stats``), never recorded here.
    """

    __tablename__ = "licence_access"
    __table_args__ = (sa.Index("ix_licence_access_holder", "holder_index", "holder_kind", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    licence_id: str = Field(max_length=32, index=True)
    licence_number: str = Field(max_length=64)
    type_code: str = Field(max_length=16)
    holder_kind: str = Field(max_length=16)
    holder_index: str = Field(max_length=64)
    checker_kind: str = Field(max_length=16)  # staff | department | app
    checker_id: str = Field(max_length=64, index=True)
    checker_name: str = Field(max_length=200)
    checker_org: str | None = Field(default=None, max_length=64)  # service hall or department code
    purpose: str = Field(max_length=32)
    purpose_text: str | None = Field(default=None, max_length=200)
    channel: str = Field(max_length=16)  # counter | api-verify | api-pdf | api-consent
    disclosed: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    at: dt.datetime = Field(sa_type=_TS)
