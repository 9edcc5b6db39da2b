"""Certificate revocation lists: built from the revoked rows of one CA, numbered, kept fresh.

A CRL is rebuilt when a revocation made it stale or when less than half of its validity is
left, so a published CRL never expires while the service runs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlmodel import Session, col, select

from ca import der, profiles
from ca.hierarchy import Authority
from ca.models import CrlRecord, IssuedCertificate
from ecert.clock import as_utc
from keys import KeyStore, PublicKey, remote_private_key
from keys.model import HashName

__all__ = ["RevokedEntry", "build_crl", "revoked_entries", "CrlState", "crl_state", "refresh_crl"]


@dataclass(frozen=True)
class RevokedEntry:
    serial: int
    revoked_at: dt.datetime
    reason: str | None
    invalidity_date: dt.datetime | None


@dataclass(frozen=True)
class CrlState:
    issuer: str
    number: int
    this_update: dt.datetime | None
    next_update: dt.datetime | None
    fresh: bool


_SIGNATURE_OIDS = {"sha256": "1.2.840.10045.4.3.2", "sha384": "1.2.840.10045.4.3.3"}  # ecdsa-with-SHA256/384
_REASON_CODES = {flag.value: code for code, flag in enumerate(
    [x509.ReasonFlags.unspecified, x509.ReasonFlags.key_compromise, x509.ReasonFlags.ca_compromise,
     x509.ReasonFlags.affiliation_changed, x509.ReasonFlags.superseded, x509.ReasonFlags.cessation_of_operation,
     x509.ReasonFlags.certificate_hold])} | {x509.ReasonFlags.privilege_withdrawn.value: 9}
#: entry extension "reasonCode" per reason, ready-made
_REASON_EXTENSIONS = {
    name: der.sequence(der.oid("2.5.29.21"), der.octet_string(der.tlv(0x0A, bytes([code]))))
    for name, code in _REASON_CODES.items()
}


def _extension(oid: x509.ObjectIdentifier, value: x509.ExtensionType) -> bytes:
    return der.sequence(der.oid(oid.dotted_string), der.octet_string(value.public_bytes()))


def _entry(entry: RevokedEntry, times: dict[dt.datetime, bytes]) -> bytes:
    when = times.get(entry.revoked_at)
    if when is None:  # revocations often share a second (bulk revocations): encode each time once
        when = times[entry.revoked_at] = der.time(entry.revoked_at)
    extensions = b""
    if entry.reason and entry.reason != x509.ReasonFlags.unspecified.value:
        extensions += _REASON_EXTENSIONS[entry.reason]
    if entry.invalidity_date is not None:
        generalized = der.tlv(0x18, entry.invalidity_date.astimezone(dt.timezone.utc).strftime("%Y%m%d%H%M%SZ").encode())
        extensions += der.sequence(der.oid("2.5.29.24"), der.octet_string(generalized))
    return der.sequence(der.integer(entry.serial), when, der.sequence(extensions) if extensions else b"")


def build_crl(
    keystore: KeyStore, authority: Authority, entries: Iterable[RevokedEntry], *, number: int,
    this_update: dt.datetime, next_update: dt.datetime,
) -> x509.CertificateRevocationList:
    """Sign a CRL for ``authority`` listing ``entries`` (RFC 5280 §5: v2, number, AKI, reasons, invalidity dates).

    The to-be-signed bytes are assembled directly (:mod:`ca.der`), then Vault signs their digest.
    """
    signer = remote_private_key(keystore, authority.key)
    hash_algorithm = profiles.signature_hash(signer.public_key())
    algorithm = der.sequence(der.oid(_SIGNATURE_OIDS[hash_algorithm.name]))
    times: dict[dt.datetime, bytes] = {}
    revoked = b"".join(_entry(e, times) for e in entries)
    issuer_key = cast(PublicKey, authority.certificate.public_key())  # our CA certificates hold EC or RSA keys
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key)
    tbs = der.sequence(
        der.integer(1),  # v2
        algorithm,
        authority.certificate.subject.public_bytes(),
        der.time(this_update),
        der.time(next_update),
        der.sequence(revoked) if revoked else b"",
        der.explicit(0, der.sequence(_extension(x509.CRLNumber.oid, x509.CRLNumber(number)),
                                     _extension(x509.AuthorityKeyIdentifier.oid, aki))),
    )
    digest = hashlib.new(hash_algorithm.name, tbs).digest()
    hash_name = cast(HashName, hash_algorithm.name)  # "sha256" or "sha384": profiles.signature_hash
    signature = keystore.sign(authority.key, digest, hash_name=hash_name).value
    crl = x509.load_der_x509_crl(der.sequence(tbs, algorithm, der.bit_string(signature)))
    if not crl.is_signature_valid(issuer_key):
        raise RuntimeError("the assembled CRL does not verify")
    return crl


def revoked_entries(session: Session, issuer: str) -> list[RevokedEntry]:
    rows = session.execute(
        select(IssuedCertificate.serial, IssuedCertificate.revoked_at, IssuedCertificate.revocation_reason,
               IssuedCertificate.invalidity_date)
        .where(IssuedCertificate.issuer == issuer, col(IssuedCertificate.revoked_at).is_not(None))
    )
    return [
        RevokedEntry(int(serial, 16), as_utc(at), reason, as_utc(invalid) if invalid else None)
        for serial, at, reason, invalid in rows
    ]


def crl_state(session: Session, issuer: str, now: dt.datetime) -> CrlState:
    """Whether ``issuer``'s stored CRL can be served as it is (no DER is read)."""
    row = session.execute(
        sa.select(col(CrlRecord.number), col(CrlRecord.this_update), col(CrlRecord.next_update), col(CrlRecord.changes),
                  col(CrlRecord.built_from))
        .where(col(CrlRecord.issuer) == issuer)
    ).first()
    if row is None:
        return CrlState(issuer, 0, None, None, fresh=False)
    number, this_update, next_update, changes, built_from = row
    fresh = (
        built_from == changes and this_update is not None and next_update is not None
        and now < as_utc(this_update) + (as_utc(next_update) - as_utc(this_update)) / 2
    )
    return CrlState(issuer, number, as_utc(this_update) if this_update else None,
                    as_utc(next_update) if next_update else None, fresh)


def refresh_crl(session: Session, keystore: KeyStore, authority: Authority, validity: dt.timedelta, now: dt.datetime) -> bytes:
    """The CA's current CRL as DER, rebuilding it under a row lock if it is stale."""
    record = session.get(CrlRecord, authority.name, with_for_update=True)
    if record is None:
        record = CrlRecord(issuer=authority.name)
        session.add(record)
        session.flush()
    state = crl_state(session, authority.name, now)
    if state.fresh and record.crl_der is not None:
        return record.crl_der
    seen = record.changes
    crl = build_crl(keystore, authority, revoked_entries(session, authority.name), number=record.number + 1,
                    this_update=now, next_update=now + validity)
    der = crl.public_bytes(serialization.Encoding.DER)
    stored = session.execute(
        sa.update(CrlRecord).where(col(CrlRecord.issuer) == authority.name, col(CrlRecord.number) == record.number).values(
            number=record.number + 1, this_update=now, next_update=now + validity, crl_der=der, built_from=seen,
        )
    )
    if stored.rowcount == 0:  # type: ignore[attr-defined]  # a CursorResult. 0: another process numbered one first: serve theirs
        session.expire(record)
        latest = session.get(CrlRecord, authority.name, populate_existing=True)
        assert latest is not None and latest.crl_der is not None
        return latest.crl_der
    return der
