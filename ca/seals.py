"""Department seal (e-seal, document-signing) certificates: issue, renew with key rotation, look up.

A department's seal key is the Vault transit key ``seal-<code>``; renewal rotates it and certifies
the new version, while the old certificate stays valid until it expires (overlap), so documents
sealed earlier keep verifying. A department that holds its key elsewhere may send a CSR instead.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID
from sqlmodel import Session, col, select

from ca import profiles
from ca.departments import active_department
from ca.errors import InvalidCsr
from ca.hierarchy import CaConfig, Hierarchy, issue_certificate
from ca.models import Department, IssuedCertificate
from ecert.clock import as_utc
from keys import KeyRef, KeyStore, KeyType

__all__ = ["SealCredential", "seal_key_name", "seal_subject", "issue_seal", "current_seal", "list_seals", "seal_from_csr",
           "seal_history"]

EXTERNAL_KEY = "external"
_MAX_CSR_BYTES = 16 * 1024


@dataclass(frozen=True)
class SealCredential:
    """What sealing needs: the Vault key version, its certificate, and the chain up to the root."""

    department_code: str
    key: KeyRef
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # issuing CA first, root last


def seal_key_name(code: str) -> str:
    return f"seal-{code.lower()}"


def seal_subject(config: CaConfig, department: Department) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, config.country),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, config.organization),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, department.name),
        x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, department.code),
        x509.NameAttribute(NameOID.COMMON_NAME, department.name),
    ])


def issue_seal(
    session: Session, keystore: KeyStore, hierarchy: Hierarchy, config: CaConfig, code: str, *,
    actor: str, now: dt.datetime, rotate: bool = False,
) -> tuple[x509.Certificate, IssuedCertificate]:
    """Certify the department's seal key (its latest version, after rotating when ``rotate``)."""
    department = active_department(session, code)
    name = seal_key_name(code)
    info = keystore.create(name, KeyType.EC_P256)
    if rotate:
        info = keystore.rotate(name)
    return issue_certificate(
        session, keystore, issuer=hierarchy.issuing, profile=profiles.SEAL, subject=seal_subject(config, department),
        key=info.latest, validity=config.seal_validity, now=now, endpoints=config.endpoints, department=code, actor=actor,
    )


def seal_from_csr(
    session: Session, keystore: KeyStore, hierarchy: Hierarchy, config: CaConfig, code: str, csr_pem: bytes, *,
    actor: str, now: dt.datetime,
) -> tuple[x509.Certificate, IssuedCertificate]:
    """Certify a key the department holds itself. The subject is ours, not the CSR's; no extensions may be asked for."""
    department = active_department(session, code)
    if len(csr_pem) > _MAX_CSR_BYTES:
        raise InvalidCsr(f"the CSR is larger than {_MAX_CSR_BYTES} bytes")
    try:
        csr = x509.load_pem_x509_csr(csr_pem) if csr_pem.lstrip().startswith(b"-----") else x509.load_der_x509_csr(csr_pem)
        extensions = list(csr.extensions)
        public_key = csr.public_key()
        valid = csr.is_signature_valid
    except (ValueError, TypeError, x509.UnsupportedGeneralNameType) as exc:
        raise InvalidCsr(f"the CSR cannot be parsed: {exc}") from exc
    if not valid:
        raise InvalidCsr("the CSR's signature does not verify with its own public key (proof of possession failed)")
    if extensions:
        names = ", ".join(ext.oid.dotted_string for ext in extensions)
        raise InvalidCsr(f"the CSR asks for extensions ({names}); the seal profile sets them all, so none may be requested")
    return issue_certificate(
        session, keystore, issuer=hierarchy.issuing, profile=profiles.SEAL, subject=seal_subject(config, department),
        key=KeyRef(EXTERNAL_KEY, 0), validity=config.seal_validity, now=now, endpoints=config.endpoints,
        department=code, actor=actor, public_key=public_key,
    )


def list_seals(session: Session, code: str) -> list[IssuedCertificate]:
    return list(session.exec(
        select(IssuedCertificate)
        .where(IssuedCertificate.profile == profiles.SEAL.name, IssuedCertificate.department_code == code)
        .order_by(col(IssuedCertificate.issued_at).desc())
    ))


def seal_history(session: Session) -> list[IssuedCertificate]:
    """Every seal certificate ever issued, oldest first (the published key history)."""
    return list(session.exec(
        select(IssuedCertificate).where(IssuedCertificate.profile == profiles.SEAL.name)
        .order_by(col(IssuedCertificate.issued_at))
    ))


def current_seal(session: Session, hierarchy: Hierarchy, code: str, now: dt.datetime) -> SealCredential | None:
    """The newest valid, unrevoked seal certificate of the department whose key is in our Vault."""
    for row in list_seals(session, code):
        if row.revoked_at is None and row.key_name != EXTERNAL_KEY and as_utc(row.not_before) <= now < as_utc(row.not_after):
            return SealCredential(
                department_code=code, key=KeyRef(row.key_name, row.key_version),
                certificate=x509.load_der_x509_certificate(row.certificate_der),
                chain=(hierarchy.issuing.certificate, hierarchy.root.certificate),
            )
    return None
