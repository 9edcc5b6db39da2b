"""The QR code's content: the verification link plus a compact signed payload for offline checks.

Format (documented in ``docs/qr-payload.md``)::

    {public_url}/v/{token}#{compact JWS}

The fragment never reaches a server when a phone opens the link; an offline verifier reads it.
The JWS (RFC 7515 compact serialisation) is signed by the department's seal key in Vault
(``ES256`` for P-256, ``ES384`` for P-384, ``RS256`` for RSA) with header
``{"alg", "kid": "<vault key name>:v<version>", "typ": "ecert-qr+jws"}`` and claims::

    {"v": 1, "iss": dept, "no": licence number, "lt": "TYPE/version",
     "nbf": "YYYY-MM-DD", "exp": "YYYY-MM-DD" | null, "iat": unix seconds,
     "fd": base64url(SHA-256(canonical JSON {"holder": name, "fields": fields})),
     "sl": [status list number, index]}   (see certificates.statuslist)
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from certificates.jws import b64url, canonical_json, sign_compact, verify_compact
from keys import KeyRef, KeyStore

__all__ = ["QrClaims", "fields_digest", "sign_payloads", "verify_payload", "qr_string", "split_qr", "b64url"]

QR_TYPE = "ecert-qr+jws"


def fields_digest(holder_name: str, fields: dict[str, Any]) -> bytes:
    return hashlib.sha256(canonical_json({"holder": holder_name, "fields": fields})).digest()


@dataclass(frozen=True)
class QrClaims:
    issuer: str
    number: str
    licence_type: str
    valid_from: dt.datetime
    valid_until: dt.datetime | None
    issued_at: dt.datetime
    digest: bytes
    status_slot: tuple[int | None, int | None] | None = None  # (status list, index)

    def to_json(self) -> dict[str, Any]:
        slot = {"sl": list(self.status_slot)} if self.status_slot and self.status_slot[0] is not None else {}
        return {
            "v": 1,
            "iss": self.issuer,
            "no": self.number,
            "lt": self.licence_type,
            "nbf": self.valid_from.date().isoformat(),
            "exp": self.valid_until.date().isoformat() if self.valid_until else None,
            "iat": int(self.issued_at.timestamp()),
            "fd": b64url(self.digest),
            **slot,
        }


def sign_payloads(keys: KeyStore, key: KeyRef, claims: Sequence[QrClaims]) -> list[str]:
    """Compact JWS for each claim set, signed in Vault in one batch."""
    return sign_compact(keys, key, QR_TYPE, [c.to_json() for c in claims])


def verify_payload(jws: str, public_key: CertificatePublicKeyTypes) -> dict[str, Any]:
    """Check a compact JWS against a public key; return its header and claims or raise ValueError."""
    try:
        header, claims = verify_compact(jws, public_key)
    except ValueError as exc:
        raise ValueError(f"the QR payload does not verify: {exc}") from exc
    return {"header": header, "claims": claims}


def qr_string(public_url: str, token: str, jws: str | None) -> str:
    link = f"{public_url.rstrip('/')}/v/{token}"
    return f"{link}#{jws}" if jws else link


def split_qr(text: str) -> tuple[str, str | None]:
    """(link, JWS or None) from a scanned QR string."""
    link, _, fragment = text.partition("#")
    return link, fragment or None
