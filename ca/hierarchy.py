"""The CA hierarchy: a root, an issuing CA, and the issuing CA's OCSP responder and TSA certificates.

:func:`ensure_hierarchy` creates what is missing (keys in Vault, certificates here) and runs under a
database lock, so several processes starting at once create one hierarchy.
:class:`Hierarchy` is the loaded, immutable view every other module works from.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID
from sqlmodel import Session, col, select

from audit.trail import record_event
from ca import profiles
from ca.errors import HierarchyNotReady, UnknownAuthority
from ca.models import CaRecord, IssuedCertificate
from ca.profiles import CertificateRequest, Endpoints, Profile
from ecert.clock import Clock, as_utc
from keys import KeyRef, KeyStore, KeyType, remote_private_key

__all__ = ["CaConfig", "Hierarchy", "Authority", "Delegate", "ensure_hierarchy", "load_hierarchy", "sign_certificate", "serial_hex"]

log = logging.getLogger(__name__)

ROOT_NAME = "root-1"
ISSUING_NAME = "issuing-1"
BACKDATE = dt.timedelta(minutes=5)  # tolerate relying parties whose clocks run a little slow


@dataclass(frozen=True)
class CaConfig:
    """Names and lifetimes of the hierarchy (from settings)."""

    organization: str
    country: str
    endpoints: Endpoints
    root_validity: dt.timedelta = dt.timedelta(days=20 * 365)
    issuing_validity: dt.timedelta = dt.timedelta(days=10 * 365)
    seal_validity: dt.timedelta = dt.timedelta(days=2 * 365)
    responder_validity: dt.timedelta = dt.timedelta(days=60)
    tsa_validity: dt.timedelta = dt.timedelta(days=5 * 365)
    crl_validity: dt.timedelta = dt.timedelta(hours=24)
    root_crl_validity: dt.timedelta = dt.timedelta(days=30)


@dataclass(frozen=True)
class Authority:
    """One CA: its certificate and the Vault key version that signs for it."""

    name: str
    role: str
    certificate: x509.Certificate
    key: KeyRef

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_hash(self, algorithm: str) -> bytes:
        """Hash of the CA's public key BIT STRING, as OCSP CertIDs carry it."""
        spki = self.certificate.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        from asn1crypto import keys as asn1_keys

        bits = asn1_keys.PublicKeyInfo.load(spki)["public_key"].contents[1:]  # drop the unused-bits octet
        return hashlib.new(algorithm, bits).digest()

    def name_hash(self, algorithm: str) -> bytes:
        return hashlib.new(algorithm, self.certificate.subject.public_bytes()).digest()


@dataclass(frozen=True)
class Delegate:
    """A certificate the issuing CA delegated a job to (OCSP signing, time-stamping)."""

    certificate: x509.Certificate
    key: KeyRef


@dataclass(frozen=True)
class Hierarchy:
    root: Authority
    issuing: Authority
    ocsp: Delegate
    tsa: Delegate

    def authority(self, name: str) -> Authority:
        for ca in (self.root, self.issuing):
            if ca.name == name:
                return ca
        raise UnknownAuthority(f"no certificate authority named {name!r}")

    @property
    def authorities(self) -> tuple[Authority, ...]:
        return (self.root, self.issuing)


def serial_hex(serial: int) -> str:
    return format(serial, "x")


def _name(config: CaConfig, common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, config.country),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, config.organization),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def sign_certificate(
    keystore: KeyStore,
    request: CertificateRequest,
    *,
    issuer: Authority | None,
    issuer_key: KeyRef,
    endpoints: Endpoints,
) -> x509.Certificate:
    """Validate ``request`` against its profile, then sign it with the issuer's Vault key."""
    signer = remote_private_key(keystore, issuer_key)
    issuer_public = signer.public_key()
    builder = profiles.build_certificate(
        request, issuer=issuer.certificate if issuer else None, issuer_public_key=issuer_public, endpoints=endpoints
    )
    return builder.sign(signer, profiles.signature_hash(issuer_public))


def _store_issued(session: Session, cert: x509.Certificate, *, issuer: str, profile: Profile, key: KeyRef,
                  department: str | None, now: dt.datetime) -> IssuedCertificate:
    row = IssuedCertificate(
        serial=serial_hex(cert.serial_number), issuer=issuer, profile=profile.name, subject=cert.subject.rfc4514_string()[:512],
        department_code=department, key_name=key.name, key_version=key.version,
        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
        certificate_der=cert.public_bytes(serialization.Encoding.DER), issued_at=now,
    )
    session.add(row)
    return row


def issue_certificate(
    session: Session, keystore: KeyStore, *, issuer: Authority, profile: Profile, subject: x509.Name, key: KeyRef,
    validity: dt.timedelta, now: dt.datetime, endpoints: Endpoints, department: str | None = None, actor: str = "system",
    public_key: CertificatePublicKeyTypes | None = None,
) -> tuple[x509.Certificate, IssuedCertificate]:
    """Issue one end-entity or CA certificate for a Vault key (or a given public key), stored and audited."""
    not_after = min(now + validity, issuer.certificate.not_valid_after_utc)
    request = CertificateRequest(
        profile=profile, subject=subject, public_key=public_key or keystore.public_key(key),
        serial=x509.random_serial_number(), not_before=max(now - BACKDATE, issuer.certificate.not_valid_before_utc),
        not_after=not_after, issuer_name=issuer.name,
    )
    cert = sign_certificate(keystore, request, issuer=issuer, issuer_key=issuer.key, endpoints=endpoints)
    row = _store_issued(session, cert, issuer=issuer.name, profile=profile, key=key, department=department, now=now)
    record_event(
        session, action="ca.certificate.issued", actor=actor, target=f"cert:{row.serial}", department=department,
        details={"profile": profile.name, "issuer": issuer.name, "subject": row.subject, "key": str(key),
                 "not_after": cert.not_valid_after_utc.isoformat()},
        at=now,
    )
    return cert, row


def _authority(row: CaRecord) -> Authority:
    return Authority(name=row.name, role=row.role, certificate=x509.load_der_x509_certificate(row.certificate_der),
                     key=KeyRef(row.key_name, row.key_version))


def _delegate(session: Session, profile: Profile, now: dt.datetime, margin: dt.timedelta = dt.timedelta(0)) -> Delegate | None:
    row = session.exec(
        select(IssuedCertificate)
        .where(IssuedCertificate.profile == profile.name, IssuedCertificate.issuer == ISSUING_NAME,
               col(IssuedCertificate.revoked_at).is_(None))
        .order_by(col(IssuedCertificate.not_after).desc())
    ).first()
    if row is None or as_utc(row.not_after) - margin <= now:
        return None
    return Delegate(x509.load_der_x509_certificate(row.certificate_der), KeyRef(row.key_name, row.key_version))


def load_hierarchy(session: Session, now: dt.datetime, config: CaConfig | None = None) -> Hierarchy:
    """The hierarchy as stored; :class:`HierarchyNotReady` if any part is missing.

    With ``config``, a delegate certificate with less than a third of its lifetime left counts as
    missing too, so :func:`ensure_hierarchy` renews it before relying parties see a gap.
    """
    rows = {row.name: row for row in session.exec(select(CaRecord))}
    if ROOT_NAME not in rows or ISSUING_NAME not in rows:
        raise HierarchyNotReady("the CA hierarchy does not exist yet; run `ecert ca init` or start the service")
    zero = dt.timedelta(0)
    ocsp = _delegate(session, profiles.OCSP_RESPONDER, now, config.responder_validity / 3 if config else zero)
    tsa = _delegate(session, profiles.TSA, now, config.tsa_validity / 3 if config else zero)
    if ocsp is None or tsa is None:
        raise HierarchyNotReady("the OCSP responder or TSA certificate is missing or expired")
    return Hierarchy(root=_authority(rows[ROOT_NAME]), issuing=_authority(rows[ISSUING_NAME]), ocsp=ocsp, tsa=tsa)


def _insert_ca(session: Session, record: CaRecord) -> CaRecord:
    session.add(record)
    session.flush()
    return record


def _serialise(session: Session) -> None:
    """Only one process at a time changes the hierarchy (PostgreSQL advisory lock; SQLite has one writer)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(7262051)"))


def _ensure_root(session: Session, keystore: KeyStore, config: CaConfig, now: dt.datetime) -> Authority:
    row = session.get(CaRecord, ROOT_NAME)
    if row is None:
        key = keystore.create("ca-root-1", KeyType.EC_P384).latest
        request = CertificateRequest(
            profile=profiles.ROOT, subject=_name(config, f"{config.organization} Root CA"),
            public_key=keystore.public_key(key), serial=x509.random_serial_number(),
            not_before=now - BACKDATE, not_after=now + config.root_validity,
        )
        cert = sign_certificate(keystore, request, issuer=None, issuer_key=key, endpoints=config.endpoints)
        row = _insert_ca(session, _ca_record(ROOT_NAME, "root", None, key, cert, now))
        record_event(session, action="ca.root.created", actor="system", target=f"ca:{ROOT_NAME}",
                     details={"subject": cert.subject.rfc4514_string(), "key": str(key),
                              "sha256": cert.fingerprint(hashes.SHA256()).hex()}, at=now)
    return _authority(row)


def _ca_record(name: str, role: str, parent: str | None, key: KeyRef, cert: x509.Certificate, now: dt.datetime) -> CaRecord:
    return CaRecord(name=name, role=role, parent=parent, key_name=key.name, key_version=key.version,
                    serial=serial_hex(cert.serial_number), certificate_der=cert.public_bytes(serialization.Encoding.DER),
                    not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc, created_at=now)


def _ensure_issuing(session: Session, keystore: KeyStore, config: CaConfig, root: Authority, now: dt.datetime) -> Authority:
    row = session.get(CaRecord, ISSUING_NAME)
    if row is None:
        key = keystore.create("ca-issuing-1", KeyType.EC_P256).latest
        cert, _ = issue_certificate(
            session, keystore, issuer=root, profile=profiles.ISSUING,
            subject=_name(config, f"{config.organization} Issuing CA 1"), key=key,
            validity=config.issuing_validity, now=now, endpoints=config.endpoints,
        )
        row = _insert_ca(session, _ca_record(ISSUING_NAME, "issuing", ROOT_NAME, key, cert, now))
    return _authority(row)


def _ensure_delegate(session: Session, keystore: KeyStore, config: CaConfig, issuing: Authority, profile: Profile,
                     key_name: str, common_name: str, validity: dt.timedelta, now: dt.datetime) -> None:
    if _delegate(session, profile, now, validity / 3) is not None:
        return
    key = keystore.create(key_name, KeyType.EC_P256).latest
    issue_certificate(session, keystore, issuer=issuing, profile=profile, subject=_name(config, common_name), key=key,
                      validity=validity, now=now, endpoints=config.endpoints)


def ensure_hierarchy(session: Session, keystore: KeyStore, config: CaConfig, clock: Clock) -> Hierarchy:
    """Create whatever part of the hierarchy is missing (or due for renewal), then load it."""
    now = clock.now()
    try:
        return load_hierarchy(session, now, config)
    except HierarchyNotReady:
        pass
    _serialise(session)
    root = _ensure_root(session, keystore, config, now)
    issuing = _ensure_issuing(session, keystore, config, root, now)
    _ensure_delegate(session, keystore, config, issuing, profiles.OCSP_RESPONDER, "ocsp-issuing-1",
                     f"{config.organization} OCSP Responder", config.responder_validity, now)
    _ensure_delegate(session, keystore, config, issuing, profiles.TSA, "tsa-1",
                     f"{config.organization} TSA", config.tsa_validity, now)
    session.flush()
    return load_hierarchy(session, now)
