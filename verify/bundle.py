"""The trust bundle: everything an offline verifier needs, signed, with its age visible.

Format (``docs/verification.md``)::

    {"bundle": {"format": "ecert-trust-bundle/1", "issuer": public URL, "issued_at", "next_update",
                "root": PEM, "intermediates": [PEM], "crls": [base64 DER],
                "seals": [{"kid", "department", "serial", "certificate", "not_before", "not_after",
                           "revoked_at", "invalidity_date", "reason"}],
                "token_keys": JWKS or null,
                "status_lists": [statuslist+jwt tokens of every licence status list (docs/status-lists.md)]},
     "signature": {"alg": "ES256", "kid": "trust-bundle:v<n>", "x5c": [signer certificate, base64 DER],
                   "value": base64url(r || s) over SHA-256 of the canonical JSON of "bundle"}}

The signer is the Vault transit key ``trust-bundle`` (never exported), certified by our issuing CA
with a profile of its own (:mod:`verify.publisher` builds and signs it) (digitalSignature, EKU :data:`BUNDLE_SIGNING`). A verifier that pins
our root (its SHA-256 fingerprint is published) checks root -> issuing -> bundle signer ->
signature; nothing in the bundle has to be taken on trust. Canonical JSON: keys sorted, no
whitespace, UTF-8.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from certificates.jws import b64url, canonical_json, unb64url
from certificates.lifecycle import Status
from certificates.statusbits import BITS, LIST_SIZE, STATUS_OF_CODE, decode, entry
from ecert.clock import as_utc
from ecert.errors import InvalidInput
from verify.trust import SealEntry, TrustMaterial, has_eku, signed_by

__all__ = ["FORMAT", "BUNDLE_KEY", "BUNDLE_SIGNING", "LIFETIME", "BundleInvalid", "LoadedBundle", "build_bundle", "load_bundle",
           "fingerprint", "signature_envelope"]

FORMAT = "ecert-trust-bundle/1"
BUNDLE_KEY = "trust-bundle"
#: Extended key usage of the bundle signer: ecert's own, minted under the UUID arc 2.25 (ITU-T X.667), which
#: needs no registration and collides with no one's; only ecert verifiers look for it. (Before 2026-11-25 this was
#: an unregistered 1.3.6.1.4.1.99999 number, which belongs to someone else's arc; bundle signers are re-certified.)
BUNDLE_SIGNING = x509.ObjectIdentifier("2.25.246531049696619054240796782398166327829")
LIFETIME = dt.timedelta(hours=24)


class BundleInvalid(InvalidInput):
    slug = "trust-bundle-invalid"
    title = "The trust bundle cannot be used"


def fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _iso(value: dt.datetime | None) -> str | None:
    return as_utc(value).isoformat() if value else None


def _seal_json(seal: SealEntry) -> dict[str, Any]:
    return {"kid": seal.kid, "department": seal.department, "serial": format(seal.serial, "x"),
            "certificate": _pem(seal.certificate), "not_before": seal.not_before.isoformat(),
            "not_after": seal.not_after.isoformat(), "revoked_at": _iso(seal.revoked_at),
            "invalidity_date": _iso(seal.invalidity_date), "reason": seal.reason}


def signature_envelope(bundle: dict[str, Any], *, kid: str, signer: x509.Certificate, raw_signature: bytes) -> bytes:
    """The published file: the bundle and its ES256 signature (raw r||s) with the signer's certificate."""
    envelope = {"bundle": bundle, "signature": {
        "alg": "ES256", "kid": kid, "x5c": [base64.b64encode(signer.public_bytes(serialization.Encoding.DER)).decode()],
        "value": b64url(raw_signature)}}
    return json.dumps(envelope, ensure_ascii=False, indent=1).encode()


def build_bundle(trust: TrustMaterial, *, issuer: str, now: dt.datetime, token_keys: dict[str, Any] | None = None,
                 status_lists: Sequence[str] = ()) -> dict[str, Any]:
    """The unsigned bundle body (``status_lists``: the signed ``statuslist+jwt`` tokens of every list)."""
    next_update = now + LIFETIME
    crl_next = trust.crl_next_update()
    if crl_next is not None:
        next_update = min(next_update, crl_next)
    return {
        "format": FORMAT, "issuer": issuer, "issued_at": now.isoformat(), "next_update": next_update.isoformat(),
        "root": _pem(trust.root), "root_sha256": fingerprint(trust.root),
        "intermediates": [_pem(c) for c in trust.intermediates],
        "crls": [base64.b64encode(c).decode() for c in trust.crls],
        "seals": [_seal_json(s) for s in trust.seals],
        "token_keys": token_keys,
        "status_lists": list(status_lists),
    }


# -- reading a bundle (offline; no database, no Vault) ---------------------------------------------

@dataclass(frozen=True)
class StatusSnapshot:
    """One status list as the bundle carried it (its signature is covered by the bundle's)."""

    list_id: int
    issued_at: dt.datetime
    expires_at: dt.datetime
    data: bytes


def _status_snapshot(token: str) -> StatusSnapshot:
    claims = json.loads(unb64url(token.split(".")[1]))
    status_list = claims["status_list"]
    if status_list.get("bits") != BITS:
        raise BundleInvalid("a status list in the bundle has an unsupported entry size")
    return StatusSnapshot(
        list_id=int(str(claims["sub"]).rstrip("/").rsplit("/", 1)[1]),
        issued_at=dt.datetime.fromtimestamp(int(claims["iat"]), dt.timezone.utc),
        expires_at=dt.datetime.fromtimestamp(int(claims["exp"]), dt.timezone.utc),
        data=decode(str(status_list["lst"])),
    )


@dataclass(frozen=True)
class LoadedBundle:
    trust: TrustMaterial
    issued_at: dt.datetime
    next_update: dt.datetime
    issuer: str
    root_sha256: str
    pinned: bool
    token_keys: dict[str, Any] | None
    status_lists: dict[int, StatusSnapshot] = field(default_factory=dict)

    def licence_status(self, slot: Any) -> tuple[Status, StatusSnapshot] | None:
        """A licence's status from the bundle's lists by its QR ``sl`` slot ``[list, index]``, if the bundle has it."""
        try:
            list_id, index = int(slot[0]), int(slot[1])
        except (TypeError, ValueError, IndexError, KeyError):
            return None
        snapshot = self.status_lists.get(list_id)
        if snapshot is None or not 0 <= index < LIST_SIZE:
            return None
        code = entry(snapshot.data, index)
        return (STATUS_OF_CODE.get(code, Status.OTHER), snapshot)

    def age_seconds(self, now: dt.datetime) -> float:
        return max(0.0, (now - self.issued_at).total_seconds())

    def stale(self, now: dt.datetime) -> bool:
        return now > self.next_update


def _cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def _seal(item: dict[str, Any]) -> SealEntry:
    def when(key: str) -> dt.datetime | None:
        return dt.datetime.fromisoformat(item[key]) if item.get(key) else None

    return SealEntry(kid=item["kid"], department=item["department"], serial=int(item["serial"], 16),
                     certificate=_cert(item["certificate"]), revoked_at=when("revoked_at"),
                     invalidity_date=when("invalidity_date"), reason=item.get("reason"))


def _check_signer(signature: dict[str, Any], bundle: dict[str, Any], root: x509.Certificate,
                  intermediates: list[x509.Certificate]) -> x509.Certificate:
    signer = x509.load_der_x509_certificate(base64.b64decode(signature["x5c"][0]))
    if not any(signed_by(signer, ca) and signed_by(ca, root) for ca in intermediates):
        raise BundleInvalid("the bundle's signer is not certified by the bundle's root")
    if not has_eku(signer, BUNDLE_SIGNING):
        raise BundleInvalid("the bundle's signer certificate is not for signing trust bundles")
    public = signer.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey) or signature.get("alg") != "ES256":
        raise BundleInvalid("the bundle signature must be ES256")
    raw = unb64url(signature["value"])
    der = utils.encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:]))
    try:
        public.verify(der, canonical_json(bundle), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise BundleInvalid("the bundle's signature does not verify: it was altered or forged") from exc
    return signer


def load_bundle(data: bytes, *, pinned_root: x509.Certificate | None = None) -> LoadedBundle:
    """Parse and check a bundle (signature chain up to its root, and the pin when given); raise :class:`BundleInvalid`."""
    try:
        envelope = json.loads(data)
        bundle, signature = envelope["bundle"], envelope["signature"]
        if bundle.get("format") != FORMAT:
            raise BundleInvalid(f"unknown bundle format {bundle.get('format')!r}")
        root = _cert(bundle["root"])
        intermediates = [_cert(p) for p in bundle["intermediates"]]
        if pinned_root is not None and root != pinned_root:
            raise BundleInvalid("the bundle's root is not the pinned root certificate")
        signer = _check_signer(signature, bundle, root, intermediates)
        seals = tuple(_seal(s) for s in bundle["seals"])
        for seal in seals:
            if not any(signed_by(seal.certificate, ca) for ca in intermediates):
                raise BundleInvalid(f"the seal certificate {seal.kid} in the bundle is not issued by its CAs")
        crls = tuple(base64.b64decode(c) for c in bundle["crls"])
        for crl in crls:
            parsed = x509.load_der_x509_crl(crl)
            if not any(parsed.is_signature_valid(ca.public_key()) for ca in [root, *intermediates]):  # type: ignore[arg-type]  # other keys: TypeError, BundleInvalid below
                raise BundleInvalid("a CRL in the bundle is not signed by one of its CAs")
        trust = TrustMaterial(root, tuple(intermediates), crls, seals)
        issued_at = dt.datetime.fromisoformat(bundle["issued_at"])
        if not signer.not_valid_before_utc <= issued_at <= signer.not_valid_after_utc:
            raise BundleInvalid("the bundle was signed outside its signer certificate's validity period")
        for certificate in (signer, *intermediates):
            if trust.revocation(certificate) is not None:
                raise BundleInvalid(f"{certificate.subject.rfc4514_string()} in the bundle's chain is revoked")
        return LoadedBundle(
            trust, issued_at,
            dt.datetime.fromisoformat(bundle["next_update"]), bundle.get("issuer", ""), fingerprint(root),
            pinned_root is not None, bundle.get("token_keys"),
            {snap.list_id: snap for snap in map(_status_snapshot, bundle.get("status_lists") or [])})
    except BundleInvalid:
        raise
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, x509.ExtensionNotFound) as exc:
        raise BundleInvalid(f"the trust bundle is malformed: {type(exc).__name__}: {exc}") from exc
