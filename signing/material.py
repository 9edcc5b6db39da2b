"""What sealing needs from the CA, as small protocols (``ca`` implements them; nothing here imports it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cryptography import x509

from keys import KeyRef

__all__ = [
    "Seal",
    "SealCredential",
    "SealDirectory",
    "TimestampAuthority",
    "BatchTimestampAuthority",
    "RevocationSource",
]


@dataclass(frozen=True)
class SealCredential:
    """A department's seal: the Vault key version and the certificate that binds it."""

    department_code: str
    key: KeyRef  # Vault transit key version of the seal (ecdsa-p256)
    certificate: x509.Certificate  # the department's seal certificate
    chain: tuple[x509.Certificate, ...]  # issuing CA first, root last


class Seal(Protocol):
    """Anything shaped like :class:`SealCredential` (``ca.seals.SealCredential`` is one)."""

    @property
    def department_code(self) -> str: ...

    @property
    def key(self) -> KeyRef: ...

    @property
    def certificate(self) -> x509.Certificate: ...

    @property
    def chain(self) -> tuple[x509.Certificate, ...]: ...


@runtime_checkable
class SealDirectory(Protocol):
    def current_seal(self, department_code: str) -> Seal:
        """The seal a department signs with today."""
        ...


@runtime_checkable
class TimestampAuthority(Protocol):
    def timestamp(self, message_imprint: bytes, hash_name: str, *, nonce: int | None = None) -> bytes:
        """A DER RFC 3161 TimeStampToken (CMS ContentInfo) over ``message_imprint``."""
        ...


@runtime_checkable
class BatchTimestampAuthority(TimestampAuthority, Protocol):
    """Optional: a TSA that stamps many imprints in one go (used when offered)."""

    def timestamp_batch(self, message_imprints: list[bytes], hash_name: str) -> list[bytes]:
        ...


@runtime_checkable
class RevocationSource(Protocol):
    def crl_for(self, issuer: x509.Certificate) -> bytes:
        """The current DER CRL issued by ``issuer``."""
        ...

    def ocsp_for(self, certificate: x509.Certificate, issuer: x509.Certificate) -> bytes:
        """A DER OCSPResponse on ``certificate``."""
        ...
