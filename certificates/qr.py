"""The QR code's content: the verification link plus a compact signed payload for offline checks.

Format (documented in ``docs/qr-payload.md``)::

    {public_url}/v/{token}#{compact JWS}

The fragment never reaches a server when a phone opens the link; an offline verifier reads it.
The JWS (RFC 7515 compact serialisation) is signed by the department's seal key in Vault
(``ES256`` for P-256, ``ES384`` for P-384, ``RS256`` for RSA) with header
``{"alg", "kid": "<vault key name>:v<version>", "typ": "ecert-qr+jws"}`` and claims::

    {"v": 1, "iss": dept, "no": licence number, "lt": "TYPE/version",
     "nbf": "YYYY-MM-DD", "exp": "YYYY-MM-DD" | null, "iat": unix seconds,
     "fd": base64url(SHA-256(canonical JSON {"holder": name, "fields": fields}))}
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from keys import KeyRef, KeyStore, KeyType, PublicKey

__all__ = ["QrClaims", "fields_digest", "sign_payloads", "verify_payload", "qr_string", "split_qr", "b64url"]

_ALGS: dict[KeyType, tuple[str, str]] = {
    KeyType.EC_P256: ("ES256", "sha256"),
    KeyType.EC_P384: ("ES384", "sha384"),
    KeyType.RSA_3072: ("RS256", "sha256"),
    KeyType.RSA_4096: ("RS256", "sha256"),
}
_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fields_digest(holder_name: str, fields: dict[str, Any]) -> bytes:
    return hashlib.sha256(_canonical({"holder": holder_name, "fields": fields})).digest()


@dataclass(frozen=True)
class QrClaims:
    issuer: str
    number: str
    licence_type: str
    valid_from: dt.datetime
    valid_until: dt.datetime | None
    issued_at: dt.datetime
    digest: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "v": 1,
            "iss": self.issuer,
            "no": self.number,
            "lt": self.licence_type,
            "nbf": self.valid_from.date().isoformat(),
            "exp": self.valid_until.date().isoformat() if self.valid_until else None,
            "iat": int(self.issued_at.timestamp()),
            "fd": b64url(self.digest),
        }


def sign_payloads(keys: KeyStore, key: KeyRef, claims: Sequence[QrClaims]) -> list[str]:
    """Compact JWS for each claim set, signed in Vault in one batch."""
    info = keys.key_info(key.name)
    alg, hash_name = _ALGS[info.key_type]
    header = b64url(_canonical({"alg": alg, "kid": str(key), "typ": "ecert-qr+jws"}))
    inputs = [f"{header}.{b64url(_canonical(c.to_json()))}" for c in claims]
    digests = [hashlib.new(hash_name, i.encode()).digest() for i in inputs]
    signatures = keys.sign_batch(key, digests, hash_name=hash_name, ec_format="raw")  # type: ignore[arg-type]
    return [f"{i}.{b64url(s.value)}" for i, s in zip(inputs, signatures)]


def verify_payload(jws: str, public_key: PublicKey) -> dict[str, Any]:
    """Check a compact JWS against a public key; return its header and claims or raise ValueError."""
    try:
        header_b64, claims_b64, signature_b64 = jws.split(".")
        header = json.loads(_unb64url(header_b64))
        claims = json.loads(_unb64url(claims_b64))
        signature = _unb64url(signature_b64)
        hash_name = {"ES256": "sha256", "ES384": "sha384", "RS256": "sha256"}[header["alg"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"malformed QR payload: {exc}") from exc
    data = f"{header_b64}.{claims_b64}".encode()
    algorithm = _HASHES[hash_name]()
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            half = len(signature) // 2
            der = utils.encode_dss_signature(int.from_bytes(signature[:half]), int.from_bytes(signature[half:]))
            public_key.verify(der, data, ec.ECDSA(algorithm))
        elif isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
    except InvalidSignature as exc:
        raise ValueError("the QR payload's signature does not verify") from exc
    return {"header": header, "claims": claims}


def qr_string(public_url: str, token: str, jws: str | None) -> str:
    link = f"{public_url.rstrip('/')}/v/{token}"
    return f"{link}#{jws}" if jws else link


def split_qr(text: str) -> tuple[str, str | None]:
    """(link, JWS or None) from a scanned QR string."""
    link, _, fragment = text.partition("#")
    return link, fragment or None
