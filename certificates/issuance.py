"""Issuing licences: validate, number, encrypt the holder ID, sign the QR payload, seal the PDF, store.

Everything happens in the caller's transaction and the Vault calls (encryption, QR signature,
PDF seal) happen *before* it commits, so a Vault outage leaves no licence row at all. Many
licences of one department are issued with batched Vault calls (bulk jobs).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from audit import record_event
from audit.tlog import append_leaf
from certificates.blobs import BlobStore
from certificates.holders import HolderKind, PiiVault, normalise_holder_id
from certificates.identifiers import LicenceNumber, allocate_serials, format_number, new_token
from certificates.lifecycle import Status, check_window
from certificates.models import Licence, LicenceEvent, LicenceType
from certificates.statuslist import assign_indexes
from certificates.text import clean_text, clean_values
from certificates.times import checked_instant
from certificates.qr import QrClaims, fields_digest, qr_string, sign_payloads
from certificates.sealing import FieldRow, LicenceDocument, SealedRecord, Sealer, SealKeys
from certificates.types import get_type, validate_fields, validity_window
from ecert.clock import Clock
from ecert.errors import Conflict, Forbidden, InvalidInput
from keys import KeyStore

__all__ = [
    "Actor", "IssueRequest", "Prepared", "Issuer", "IdempotencyKeyReused", "IdempotentRequestInProgress",
    "IdempotencyKeyRequired", "require_key", "fingerprint", "with_key",
]


class IdempotentRequestInProgress(Conflict):
    slug = "idempotency-request-in-progress"
    title = "A request with this Idempotency-Key is being processed"


class IdempotencyKeyReused(InvalidInput):
    slug = "idempotency-key-reused"
    title = "The Idempotency-Key was already used for a different request"


class IdempotencyKeyRequired(InvalidInput):
    """An issuing request came without an Idempotency-Key, so a retry could issue a second licence."""

    slug = "idempotency-key-required"
    status = 400
    title = "An Idempotency-Key header is required"


def require_key(key: str | None) -> str:
    """The request's Idempotency-Key; IdempotencyKeyRequired when there is none."""
    if not key or not key.strip():
        raise IdempotencyKeyRequired(
            "send an Idempotency-Key header with a value unique to this request (e.g. a UUID, at most 128 "
            "characters); retrying with the same key returns the same result instead of issuing again"
        )
    return key


@dataclass(frozen=True)
class Actor:
    """Who acts: ``subject`` for the audit trail; ``department`` they act for (None: platform admin)."""

    subject: str
    department: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.department is None


@dataclass(frozen=True)
class IssueRequest:
    type_code: str
    holder_kind: str
    holder_name: str
    holder_id: str = field(repr=False)
    fields: dict[str, Any]
    type_version: int | None = None
    valid_from: dt.datetime | None = None
    idempotency_key: str | None = None
    supersedes_id: str | None = None
    associated_number: str | None = None
    document: bytes | None = field(default=None, repr=False)  # the department's own PDF, sealed instead of rendering
    bulk_item: str | None = None  # ``<job>:<row>`` of a bulk job's row: its own key, apart from clients' keys
    historical: bool = False  # a licence issued before ecert (back-dated, possibly expired): recorded as an import


def fingerprint(body: Any) -> str:
    """SHA-256 of a request's canonical JSON (sorted keys, no blanks): what an Idempotency-Key is bound to."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _normalised(request: IssueRequest, licence_type: LicenceType, kind: HolderKind, holder_id: str,
                fields: dict[str, Any]) -> dict[str, Any]:
    """The request as validated: the resolved type version, trimmed name, canonical ID, instants in UTC."""
    document = hashlib.sha256(request.document).hexdigest() if request.document is not None else None
    start = request.valid_from.astimezone(dt.timezone.utc).isoformat() if request.valid_from else None
    return {
        "type": [licence_type.code, licence_type.version],
        "holder": [kind.value, request.holder_name.strip(), holder_id],
        "fields": fields, "valid_from": start, "supersedes": request.supersedes_id, "document_sha256": document,
        **({"historical": True} if request.historical else {}),
    }


@dataclass(frozen=True)
class Prepared:
    """A request that passed every check that needs no Vault call."""

    request: IssueRequest
    department_code: str
    licence_type: LicenceType
    kind: HolderKind
    holder_id: str = field(repr=False)
    fields: dict[str, Any]
    valid_from: dt.datetime
    valid_until: dt.datetime | None
    fingerprint: str


def _holder_errors(request: IssueRequest) -> HolderKind:
    try:
        kind = HolderKind(request.holder_kind)
    except ValueError:
        detail = "must be 'person' or 'enterprise'"
        raise InvalidInput(f"holder kind {detail}", errors=[{"pointer": "#/holder/kind", "detail": detail}]) from None
    name = request.holder_name.strip() if isinstance(request.holder_name, str) else ""
    if not 0 < len(name) <= 200:
        detail = "must be 1-200 characters"
        raise InvalidInput(f"holder name {detail}", errors=[{"pointer": "#/holder/name", "detail": detail}])
    return kind


class Issuer:
    def __init__(
        self,
        *,
        keystore: KeyStore,
        clock: Clock,
        blobs: BlobStore,
        seal_keys: SealKeys,
        sealer: Sealer | None,
        public_url: str,
    ) -> None:
        self.keystore = keystore
        self.clock = clock
        self.blobs = blobs
        self.seal_keys = seal_keys
        self.sealer = sealer
        self.public_url = public_url
        self.pii = PiiVault(keystore)

    # -- checks (no Vault) ----------------------------------------------------------------
    def prepare(self, session: Session, actor: Actor, department_code: str, request: IssueRequest) -> Prepared:
        if actor.department is not None and actor.department != department_code:
            raise Forbidden(f"you act for department {actor.department}, not {department_code}")
        licence_type = get_type(
            session, department_code=department_code, code=request.type_code, version=request.type_version
        )
        request = replace(request, holder_name=clean_text(request.holder_name, "#/holder/name"),
                          fields=clean_values(request.fields, "#/fields"))
        kind = _holder_errors(request)
        holder_id = normalise_holder_id(kind, request.holder_id)
        fields = validate_fields(licence_type, request.fields)
        now = self.clock.now()
        start = checked_instant(request.valid_from, "#/valid_from", what="valid_from") if request.valid_from is not None else now
        valid_from, valid_until = validity_window(licence_type, fields, start)
        check_window(valid_from, valid_until, now=now, historical=request.historical)
        digest = fingerprint(_normalised(request, licence_type, kind, holder_id, fields))
        return Prepared(request, department_code, licence_type, kind, holder_id, fields, valid_from, valid_until, digest)

    def find_replay(self, session: Session, prepared: Prepared) -> Licence | None:
        """The licence the request's Idempotency-Key already produced (same body), None without a key or a
        licence; raise if the key was used for a different body."""
        key = prepared.request.idempotency_key
        if not key:
            return None
        existing = session.exec(
            select(Licence).where(Licence.department_code == prepared.department_code, Licence.idempotency_key == key)
        ).first()
        if existing is not None and existing.request_fingerprint != prepared.fingerprint:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {key!r} was used for a different request (licence {existing.number})"
            )
        return existing

    # -- issuance (Vault, then rows) --------------------------------------------------------
    def issue_batch(self, session: Session, actor: Actor, batch: Sequence[Prepared]) -> list[Licence]:
        """Issue prepared requests of ONE department, with batched Vault calls, in ``session``."""
        if not batch:
            return []
        department = batch[0].department_code
        assert all(p.department_code == department for p in batch)
        now = self.clock.now()
        protected: dict[int, tuple[str, str]] = {}
        for kind in HolderKind:
            positions = [i for i, p in enumerate(batch) if p.kind is kind]
            for i, pair in zip(positions, self.pii.protect(kind, [batch[i].holder_id for i in positions])):
                protected[i] = pair
        numbers = self._numbers(session, batch, now)
        licences = [self._new_row(actor, p, numbers[i], *protected[i], now) for i, p in enumerate(batch)]
        for row, (list_id, index) in zip(licences, assign_indexes(session, len(licences), now)):
            row.status_list, row.status_index = list_id, index
        key = self.seal_keys.qr_key(department)
        claims = [
            QrClaims(
                department, row.number, f"{row.type_code}/{row.type_version}", row.valid_from, row.valid_until,
                row.issued_at, bytes.fromhex(row.fields_digest), (row.status_list, row.status_index),
            )
            for row in licences
        ]
        for row, jws in zip(licences, sign_payloads(self.keystore, key, claims)):
            row.qr_payload = qr_string(self.public_url, row.token, jws)
        if self.sealer is not None:
            rendered = [(p, row) for p, row in zip(batch, licences) if p.request.document is None]
            pdfs = dict(zip((row.id for _, row in rendered),
                            self.sealer.seal(department, [self._document(p.licence_type, row) for p, row in rendered])))
            for p, row in zip(batch, licences):
                if p.request.document is not None:
                    pdfs[row.id] = self.sealer.seal_uploaded(
                        department, p.request.document, SealedRecord(row.number, department, row.qr_payload or ""))
            for row in licences:
                pdf = pdfs[row.id]
                row.pdf_blob_key = f"licences/{row.department_code}/{row.id}.pdf"
                row.pdf_sha256 = self.blobs.put(session, row.pdf_blob_key, pdf)
        for row in licences:
            row.log_index = append_leaf(session, cert_digest=transparency_digest(row), licence_number=row.number,
                                        kind="issued", at=row.issued_at).index
            session.add(row)
            session.add(LicenceEvent(
                licence_id=row.id, action="import" if row.historical else "issue", from_status=None, to_status=Status.VALID.value,
                effective_at=row.valid_from, actor=actor.subject, at=now,
            ))
            record_event(
                session, action="certificates.licence.issue", actor=actor.subject, target=f"licence:{row.id}",
                department=department,
                details={"number": row.number, "type": f"{row.type_code}/{row.type_version}", "supersedes": row.supersedes_id,
                         **({"historical": True, "valid_from": row.valid_from.isoformat()} if row.historical else {})},
                at=now,
            )
            session.flush()
        return licences

    @staticmethod
    def _numbers(session: Session, batch: Sequence[Prepared], now: dt.datetime) -> list[str]:
        """A licence number per prepared request, in order: one serial allocation per licence type."""
        numbers: list[str] = [""] * len(batch)
        for code in dict.fromkeys(p.licence_type.code for p in batch):
            positions = [i for i, p in enumerate(batch) if p.licence_type.code == code]
            department = batch[positions[0]].department_code
            serials = allocate_serials(session, type_code=code, department_code=department, year=now.year,
                                       count=len(positions))
            for i, serial in zip(positions, serials):
                numbers[i] = format_number(LicenceNumber(code, department, now.year, serial))
        return numbers

    def _new_row(self, actor: Actor, p: Prepared, number: str, cipher: str, index: str, now: dt.datetime) -> Licence:
        holder_name = p.request.holder_name.strip()
        return Licence(
            id=uuid.uuid4().hex,
            number=number,
            token=new_token(),
            type_code=p.licence_type.code,
            type_version=p.licence_type.version,
            department_code=p.department_code,
            holder_kind=p.kind.value,
            holder_name=holder_name,
            holder_id_cipher=cipher,
            holder_index=index,
            fields=p.fields,
            fields_digest=fields_digest(holder_name, p.fields).hex(),
            status=Status.VALID.value,
            valid_from=p.valid_from,
            valid_until=p.valid_until,
            issued_at=now,
            issued_by=actor.subject,
            updated_at=now,
            supersedes_id=p.request.supersedes_id,
            associated_number=p.request.associated_number,
            idempotency_key=p.request.idempotency_key,
            bulk_item=p.request.bulk_item,
            request_fingerprint=p.fingerprint,
            historical=p.request.historical,
        )

    def _document(self, licence_type: LicenceType, row: Licence) -> LicenceDocument:
        rows = tuple(
            FieldRow(item["label_zh"], item["label_en"], _text(row.fields.get(item["name"])))
            for item in licence_type.layout.get("fields", [])
            if item["name"] in row.fields
        )
        return LicenceDocument(
            licence_id=row.id, number=row.number, department_code=row.department_code, type_code=row.type_code,
            type_version=row.type_version, type_name_zh=licence_type.name_zh, type_name_en=licence_type.name_en,
            holder_kind=row.holder_kind, holder_name=row.holder_name, rows=rows, valid_from=row.valid_from,
            valid_until=row.valid_until, issued_at=row.issued_at, qr=row.qr_payload or "",
        )

    def issue_one(self, session: Session, actor: Actor, prepared: Prepared) -> tuple[Licence, bool]:
        """Issue one licence honouring its Idempotency-Key; (licence, replayed)."""
        existing = self.find_replay(session, prepared)
        if existing is not None:
            return existing, True
        key = prepared.request.idempotency_key
        try:
            return self.issue_batch(session, actor, [prepared])[0], False
        except sa.exc.IntegrityError as exc:
            if key and "idempotency" in str(exc.orig).lower() + str(exc).lower():
                raise IdempotentRequestInProgress(
                    f"a request with Idempotency-Key {key!r} is being processed; retry to get its result"
                ) from exc
            raise


def transparency_digest(licence: Licence) -> bytes:
    """What the transparency log commits to for a licence: its sealed PDF, or its content digest if unsealed."""
    return bytes.fromhex(licence.pdf_sha256 or licence.fields_digest)


def _text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def with_key(request: IssueRequest, key: str | None) -> IssueRequest:
    return replace(request, idempotency_key=key)
