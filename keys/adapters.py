"""Private-key objects for ``cryptography`` whose ``sign()`` calls the key store.

An instance can be handed to ``CertificateBuilder.sign``, ``CertificateRevocationListBuilder.sign``
and ``OCSPResponseBuilder.sign`` like a local key; the private half never leaves Vault, so every
method that would reveal it raises :class:`KeyExportForbidden`.
"""

from __future__ import annotations

import typing

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import NoDigestInfo, Prehashed
from cryptography.utils import Buffer

from keys.errors import KeyExportForbidden
from keys.model import HashName, KeyRef, KeyStore

__all__ = ["RemoteECPrivateKey", "RemoteRSAPrivateKey", "remote_private_key", "digest_for"]

_HASHES: dict[str, HashName] = {"sha256": "sha256", "sha384": "sha384", "sha512": "sha512"}


def digest_for(data: bytes, algorithm: hashes.HashAlgorithm | Prehashed) -> tuple[bytes, HashName]:
    """The digest to send to the store, and the store's name for its hash."""
    inner = algorithm._algorithm if isinstance(algorithm, Prehashed) else algorithm  # noqa: SLF001
    if inner.name not in _HASHES:
        raise ValueError(f"the key store signs only with SHA-2 (256/384/512), not {inner.name}")
    if isinstance(algorithm, Prehashed):
        return data, _HASHES[inner.name]
    h = hashes.Hash(inner)
    h.update(data)
    return h.finalize(), _HASHES[inner.name]


class RemoteECPrivateKey(ec.EllipticCurvePrivateKey):
    """An EC private key held in the key store, pinned to one key version."""

    def __init__(self, store: KeyStore, key: KeyRef) -> None:
        public = store.public_key(key)
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise TypeError(f"{key} is not an EC key")
        self._store = store
        self._key = key
        self._public = public

    @property
    def key_ref(self) -> KeyRef:
        return self._key

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def sign(self, data: Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise TypeError("only ECDSA is supported")
        digest, hash_name = digest_for(bytes(data), signature_algorithm.algorithm)
        return self._store.sign(self._key, digest, hash_name=hash_name).value

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise KeyExportForbidden("key agreement is not offered by the key store")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        raise KeyExportForbidden(f"{self._key} stays in Vault")

    def private_bytes(self, *args: typing.Any, **kwargs: typing.Any) -> bytes:
        raise KeyExportForbidden(f"{self._key} stays in Vault")

    def __copy__(self) -> RemoteECPrivateKey:
        return self

    def __deepcopy__(self, memo: dict[int, typing.Any]) -> RemoteECPrivateKey:
        return self

    def __repr__(self) -> str:
        return f"RemoteECPrivateKey({self._key})"


class RemoteRSAPrivateKey(rsa.RSAPrivateKey):
    """An RSA private key held in the key store, pinned to one key version."""

    def __init__(self, store: KeyStore, key: KeyRef) -> None:
        public = store.public_key(key)
        if not isinstance(public, rsa.RSAPublicKey):
            raise TypeError(f"{key} is not an RSA key")
        self._store = store
        self._key = key
        self._public = public

    @property
    def key_ref(self) -> KeyRef:
        return self._key

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    def sign(
        self,
        data: bytes,
        padding_: padding.AsymmetricPadding,
        algorithm: hashes.HashAlgorithm | Prehashed | NoDigestInfo,
    ) -> bytes:
        if isinstance(algorithm, NoDigestInfo):
            raise TypeError("the key store signs a digest inside its DigestInfo, not raw data")
        digest, hash_name = digest_for(data, algorithm)
        if isinstance(padding_, padding.PKCS1v15):
            return self._store.sign(self._key, digest, hash_name=hash_name, rsa_padding="pkcs1v15").value
        if isinstance(padding_, padding.PSS):
            return self._store.sign(self._key, digest, hash_name=hash_name, rsa_padding="pss").value
        raise TypeError(f"unsupported RSA padding {padding_.name}")

    def decrypt(self, ciphertext: bytes, padding_: padding.AsymmetricPadding) -> bytes:
        raise KeyExportForbidden("RSA decryption is not offered by the key store")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        raise KeyExportForbidden(f"{self._key} stays in Vault")

    def private_bytes(self, *args: typing.Any, **kwargs: typing.Any) -> bytes:
        raise KeyExportForbidden(f"{self._key} stays in Vault")

    def __copy__(self) -> RemoteRSAPrivateKey:
        return self

    def __deepcopy__(self, memo: dict[int, typing.Any]) -> RemoteRSAPrivateKey:
        return self

    def __repr__(self) -> str:
        return f"RemoteRSAPrivateKey({self._key})"


def remote_private_key(store: KeyStore, key: KeyRef) -> RemoteECPrivateKey | RemoteRSAPrivateKey:
    """The adapter matching the key's type."""
    public = store.public_key(key)
    if isinstance(public, ec.EllipticCurvePublicKey):
        return RemoteECPrivateKey(store, key)
    return RemoteRSAPrivateKey(store, key)
