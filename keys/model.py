"""What a key store is: the protocol and its small immutable value types.

Keys are named; each name has numbered versions (rotation adds one). A certificate binds
one *version*, so signing always names the version it needs (:class:`KeyRef`).
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

__all__ = [
    "KeyType",
    "KeyRef",
    "KeyVersion",
    "KeyInfo",
    "Signature",
    "KeyStore",
    "DataProtector",
    "PublicKey",
    "HashName",
    "validate_key_name",
]

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
HashName = Literal["sha256", "sha384", "sha512"]
_KEY_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}[a-z0-9]$")


def validate_key_name(name: str) -> str:
    """Key names are lower-case slugs, so they are safe in Vault paths and in logs."""
    if not _KEY_NAME.match(name):
        raise ValueError(f"invalid key name {name!r}: use 2-64 of a-z, 0-9 and '-'")
    return name


class KeyType(str, enum.Enum):
    """Vault transit key types ecert uses."""

    EC_P256 = "ecdsa-p256"
    EC_P384 = "ecdsa-p384"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"
    AES256_GCM = "aes256-gcm96"

    @property
    def is_signing(self) -> bool:
        return self is not KeyType.AES256_GCM


@dataclass(frozen=True)
class KeyRef:
    """One version of one named key."""

    name: str
    version: int

    def __str__(self) -> str:
        return f"{self.name}:v{self.version}"


@dataclass(frozen=True)
class KeyVersion:
    version: int
    created_at: dt.datetime
    public_key_pem: str | None

    def public_key(self) -> PublicKey:
        if self.public_key_pem is None:
            raise ValueError("symmetric keys have no public key")
        key = serialization.load_pem_public_key(self.public_key_pem.encode())
        assert isinstance(key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey))
        return key


@dataclass(frozen=True)
class KeyInfo:
    name: str
    key_type: KeyType
    latest_version: int
    exportable: bool
    deletion_allowed: bool
    versions: Mapping[int, KeyVersion] = field(default_factory=dict)

    @property
    def latest(self) -> KeyRef:
        return KeyRef(self.name, self.latest_version)

    def public_key(self, version: int | None = None) -> PublicKey:
        return self.versions[version or self.latest_version].public_key()


@dataclass(frozen=True)
class Signature:
    """A signature and the key version that made it.

    ``value`` is DER for ECDSA (or raw r||s when asked for ``ec_format="raw"``) and the
    PKCS#1 / PSS octet string for RSA.
    """

    key: KeyRef
    value: bytes


@runtime_checkable
class KeyStore(Protocol):
    """Custody of private keys: they are created inside the store and never leave it."""

    def create(self, name: str, key_type: KeyType) -> KeyInfo:
        """Create a non-exportable key, or return the existing one of the same type."""
        ...

    def key_info(self, name: str) -> KeyInfo:
        """Versions and public keys of a key."""
        ...

    def public_key(self, key: KeyRef) -> PublicKey:
        """The public key of one version (old versions stay readable after rotation)."""
        ...

    def sign(
        self,
        key: KeyRef,
        digest: bytes,
        *,
        hash_name: HashName = "sha256",
        ec_format: Literal["der", "raw"] = "der",
        rsa_padding: Literal["pkcs1v15", "pss"] = "pkcs1v15",
    ) -> Signature:
        """Sign a precomputed digest with one key version."""
        ...

    def sign_batch(
        self,
        key: KeyRef,
        digests: Sequence[bytes],
        *,
        hash_name: HashName = "sha256",
        ec_format: Literal["der", "raw"] = "der",
        rsa_padding: Literal["pkcs1v15", "pss"] = "pkcs1v15",
    ) -> list[Signature]:
        """Sign many digests in as few round trips as the store allows."""
        ...

    def rotate(self, name: str) -> KeyInfo:
        """Add a new version; earlier versions keep their public keys and keep verifying."""
        ...


@runtime_checkable
class DataProtector(Protocol):
    """Encryption and keyed hashing of personal data with keys that stay in the store."""

    def encrypt(self, key_name: str, plaintexts: Sequence[bytes], *, context: bytes = b"") -> list[str]:
        ...

    def decrypt(self, key_name: str, ciphertexts: Sequence[str], *, context: bytes = b"") -> list[bytes]:
        ...

    def hmac(self, key_name: str, messages: Sequence[bytes]) -> list[bytes]:
        ...
