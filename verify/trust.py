"""What a verifier trusts: our root, our issuing CAs, their CRLs, and every seal certificate.

Online, :func:`verify.online.trust_from_authority` reads it from the running CA (in-process, current CRLs);
offline, :mod:`verify.bundle` reads it from a signed trust bundle. PDF and QR checks take a
:class:`TrustMaterial` and never touch the network.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from ecert.clock import as_utc

__all__ = ["SealEntry", "Revocation", "TrustMaterial", "signed_by", "has_eku"]


@dataclass(frozen=True)
class SealEntry:
    """A department seal certificate, keyed by the Vault key version (the QR payload's ``kid``)."""

    kid: str
    department: str
    serial: int
    certificate: x509.Certificate
    revoked_at: dt.datetime | None = None
    invalidity_date: dt.datetime | None = None
    reason: str | None = None

    @property
    def not_before(self) -> dt.datetime:
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc

    def compromised_from(self) -> dt.datetime | None:
        """From when signatures by this seal are not to be trusted (invalidity date, else revocation)."""
        return self.invalidity_date or self.revoked_at


@dataclass(frozen=True)
class Revocation:
    revoked_at: dt.datetime
    reason: str
    invalidity_date: dt.datetime | None

    @property
    def effective(self) -> dt.datetime:
        return self.invalidity_date or self.revoked_at


@dataclass(frozen=True)
class TrustMaterial:
    root: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]
    crls: tuple[bytes, ...]  # DER
    seals: tuple[SealEntry, ...] = ()
    _parsed: list[x509.CertificateRevocationList] = field(default_factory=list, compare=False, repr=False)

    def parsed_crls(self) -> list[x509.CertificateRevocationList]:
        if not self._parsed and self.crls:
            self._parsed.extend(x509.load_der_x509_crl(c) for c in self.crls)
        return self._parsed

    def revocation(self, certificate: x509.Certificate) -> Revocation | None:
        """The certificate's entry on its issuer's CRL, if it is revoked."""
        for crl in self.parsed_crls():
            if crl.issuer != certificate.issuer:
                continue
            entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
            if entry is None:
                continue
            reason, invalidity = "unspecified", None
            for ext in entry.extensions:
                if isinstance(ext.value, x509.CRLReason):
                    reason = ext.value.reason.value
                elif isinstance(ext.value, x509.InvalidityDate):
                    invalidity = as_utc(ext.value.invalidity_date)
            return Revocation(entry.revocation_date_utc, reason, invalidity)
        return None

    def crl_next_update(self) -> dt.datetime | None:
        updates = [c.next_update_utc for c in self.parsed_crls() if c.next_update_utc is not None]
        return min(updates) if updates else None

    def seal_by_kid(self, kid: str) -> SealEntry | None:
        for seal in self.seals:
            if seal.kid == kid:
                return seal
        return None

    def is_ours(self, issuer: x509.Certificate) -> bool:
        return issuer == self.root or issuer in self.intermediates


@functools.lru_cache(maxsize=1024)
def signed_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """``child`` carries ``parent``'s signature (remembered: the same few seal, TSA and CA certificates recur)."""
    try:
        child.verify_directly_issued_by(parent)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


def has_eku(certificate: x509.Certificate, usage: x509.ObjectIdentifier) -> bool:
    """The certificate's extended key usage names ``usage`` (a certificate without the extension names nothing)."""
    try:
        return usage in certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
