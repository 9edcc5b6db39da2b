"""Signed tree heads and leaf entries of the transparency log: byte formats and signature checks, no I/O.

Like :mod:`audit.merkle` this imports no database code, so offline checkers can use it.

* Leaf entry (the ``d(i)`` hashed into the tree, ``leaf_hash = SHA-256(0x00 || entry)``), 74 bytes::

      uint8  version = 1
      uint8  kind            (1 = issued, 2 = superseded)
      uint64 timestamp       (milliseconds since 1970-01-01T00:00:00Z, big-endian)
      opaque cert_digest[32] (SHA-256 of the issued document)
      opaque number_hash[32] (SHA-256 of the licence number, UTF-8)

* Tree head, RFC 9162 section 4.10 ``TreeHeadDataV2``::

      uint64 timestamp; uint64 tree_size; opaque root_hash<32..2^8-1>; Extension sth_extensions<0..2^16-1>;

  i.e. ``timestamp || tree_size || 0x20 || root_hash || 0x0000``; the signature is ECDSA P-256
  (DER) over SHA-256 of those 51 bytes, made by the Vault transit key ``transparency-log``.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import struct
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from audit.merkle import HASH_SIZE, leaf_hash

__all__ = [
    "LeafKind",
    "LeafEntry",
    "TreeHead",
    "tree_head_data",
    "number_hash",
    "log_id",
    "verify_tree_head",
]


class LeafKind(enum.IntEnum):
    ISSUED = 1
    SUPERSEDED = 2


def number_hash(licence_number: str) -> bytes:
    return hashlib.sha256(licence_number.encode("utf-8")).digest()


@dataclass(frozen=True)
class LeafEntry:
    kind: LeafKind
    timestamp: int
    cert_digest: bytes
    number_hash: bytes

    def __post_init__(self) -> None:
        if len(self.cert_digest) != HASH_SIZE or len(self.number_hash) != HASH_SIZE:
            raise ValueError("cert_digest and number_hash must be 32-byte SHA-256 digests")
        if not 0 <= self.timestamp < 2**64:
            raise ValueError("timestamp out of range")

    def encode(self) -> bytes:
        return struct.pack(">BBQ", 1, int(self.kind), self.timestamp) + self.cert_digest + self.number_hash

    @classmethod
    def decode(cls, data: bytes) -> LeafEntry:
        if len(data) != 74 or data[0] != 1:
            raise ValueError("not a version 1 leaf entry")
        _, kind, timestamp = struct.unpack(">BBQ", data[:10])
        return cls(LeafKind(kind), timestamp, data[10:42], data[42:74])

    @property
    def leaf_hash(self) -> bytes:
        return leaf_hash(self.encode())

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.name.lower(), "timestamp": self.timestamp,
            "cert_digest": self.cert_digest.hex(), "number_hash": self.number_hash.hex(),
            "entry": base64.b64encode(self.encode()).decode(), "leaf_hash": base64.b64encode(self.leaf_hash).decode(),
        }


def tree_head_data(timestamp: int, tree_size: int, root_hash: bytes) -> bytes:
    """The TLS encoding of RFC 9162 ``TreeHeadDataV2`` with no extensions."""
    if len(root_hash) != HASH_SIZE:
        raise ValueError("root hash must be 32 bytes")
    return struct.pack(">QQB", timestamp, tree_size, HASH_SIZE) + root_hash + b"\x00\x00"


def log_id(public_key_pem: str) -> bytes:
    """SHA-256 of the DER SubjectPublicKeyInfo (the RFC 6962 LogID)."""
    key = serialization.load_pem_public_key(public_key_pem.encode())
    return hashlib.sha256(key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).digest()


@dataclass(frozen=True)
class TreeHead:
    tree_size: int
    root_hash: bytes
    timestamp: int
    key_name: str
    key_version: int
    signature: bytes

    def data(self) -> bytes:
        return tree_head_data(self.timestamp, self.tree_size, self.root_hash)

    def to_json(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size, "timestamp": self.timestamp,
            "sha256_root_hash": base64.b64encode(self.root_hash).decode(),
            "tree_head_signature": base64.b64encode(self.signature).decode(),
            "key_name": self.key_name, "key_version": self.key_version,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TreeHead:
        try:
            return cls(
                int(data["tree_size"]), base64.b64decode(data["sha256_root_hash"], validate=True), int(data["timestamp"]),
                str(data["key_name"]), int(data["key_version"]), base64.b64decode(data["tree_head_signature"], validate=True),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a signed tree head: {exc}") from exc


def verify_tree_head(head: TreeHead, public_key: ec.EllipticCurvePublicKey) -> bool:
    """True if ``head``'s signature is valid under ``public_key``."""
    try:
        digest = hashlib.sha256(head.data()).digest()
        public_key.verify(head.signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    except (InvalidSignature, ValueError):
        return False
    return True
