"""Compact JWS (RFC 7515) signed by a key-store key: the QR payloads and the status lists use it.

Signing sends only digests to Vault (batched); ECDSA signatures come back in the raw ``r||s`` form
JWS requires. Verification is local, with the public key from a trust bundle or the key store.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from keys import KeyRef, KeyStore, KeyType
from keys.model import HashName

__all__ = ["sign_compact", "verify_compact", "b64url", "unb64url", "canonical_json", "ALGORITHMS"]

#: key type -> (JWS alg, hash)
ALGORITHMS: dict[KeyType, tuple[str, HashName]] = {
    KeyType.EC_P256: ("ES256", "sha256"),
    KeyType.EC_P384: ("ES384", "sha384"),
    KeyType.RSA_3072: ("RS256", "sha256"),
    KeyType.RSA_4096: ("RS256", "sha256"),
}
_HASH_OF = {"ES256": "sha256", "ES384": "sha384", "RS256": "sha256"}
_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_compact(keys: KeyStore, key: KeyRef, typ: str, payloads: Sequence[Mapping[str, Any]]) -> list[str]:
    """A compact JWS per payload, header ``{"alg", "kid": "<key>:v<n>", "typ"}``, signed in one batch."""
    info = keys.key_info(key.name)
    alg, hash_name = ALGORITHMS[info.key_type]
    header = b64url(canonical_json({"alg": alg, "kid": str(key), "typ": typ}))
    inputs = [f"{header}.{b64url(canonical_json(dict(p)))}" for p in payloads]
    digests = [hashlib.new(hash_name, i.encode()).digest() for i in inputs]
    signatures = keys.sign_batch(key, digests, hash_name=hash_name, ec_format="raw")
    return [f"{i}.{b64url(s.value)}" for i, s in zip(inputs, signatures)]


def verify_compact(jws: str, public_key: CertificatePublicKeyTypes) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a compact JWS that verifies with ``public_key``; ValueError otherwise."""
    try:
        header_b64, claims_b64, signature_b64 = jws.strip().split(".")
        header = json.loads(unb64url(header_b64))
        claims = json.loads(unb64url(claims_b64))
        signature = unb64url(signature_b64)
        hash_name = _HASH_OF[header["alg"]]
        if not isinstance(claims, dict):
            raise TypeError("claims are not a JSON object")
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"malformed JWS: {exc}") from exc
    data = f"{header_b64}.{claims_b64}".encode()
    algorithm = _HASHES[hash_name]()
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            if header["alg"] not in ("ES256", "ES384"):
                raise ValueError(f"alg {header['alg']} does not match an EC key")
            half = len(signature) // 2
            der = utils.encode_dss_signature(int.from_bytes(signature[:half]), int.from_bytes(signature[half:]))
            public_key.verify(der, data, ec.ECDSA(algorithm))
        elif isinstance(public_key, rsa.RSAPublicKey):
            if header["alg"] != "RS256":
                raise ValueError(f"alg {header['alg']} does not match an RSA key")
            public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
        else:
            raise ValueError("unsupported public key")
    except InvalidSignature as exc:
        raise ValueError("the signature does not verify") from exc
    return header, claims
