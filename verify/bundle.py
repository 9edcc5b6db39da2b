"""The trust bundle: everything an offline verifier needs, signed, with its age visible.

Format (``docs/verification.md``)::

    {"bundle": {"format": "ecert-trust-bundle/1", "issuer": public URL, "issued_at", "next_update",
                "root": PEM, "intermediates": [PEM], "crls": [base64 DER],
                "seals": [{"kid", "department", "serial", "certificate", "not_before", "not_after",
                           "revoked_at", "invalidity_date", "reason"}],
                "token_keys": JWKS or null},
     "signature": {"alg": "ES256", "kid": "trust-bundle:v<n>", "x5c": [signer certificate, base64 DER],
                   "value": base64url(r || s) over SHA-256 of the canonical JSON of "bundle"}}

The signer is the Vault transit key ``trust-bundle`` (never exported), certified by our issuing CA
with a profile of its own (digitalSignature, EKU :data:`BUNDLE_SIGNING`). A verifier that pins
our root (its SHA-256 fingerprint is published) checks root -> issuing -> bundle signer ->
signature; nothing in the bundle has to be taken on trust. Canonical JSON: keys sorted, no
whitespace, UTF-8.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.x509.oid import NameOID
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from ca.hierarchy import issue_certificate
from ca.models import IssuedCertificate
from ca.profiles import Profile
from ecert.clock import Clock, as_utc
from ecert.db import session_scope
from ecert.errors import InvalidInput
from keys import KeyRef, KeyStore, KeyType
from verify.trust import SealEntry, TrustMaterial, seal_entries, trust_from_authority

__all__ = ["FORMAT", "BUNDLE_KEY", "BUNDLE_SIGNING", "BUNDLE_PROFILE", "BundleInvalid", "LoadedBundle", "BundlePublisher",
           "build_bundle", "load_bundle", "canonical", "fingerprint"]

FORMAT = "ecert-trust-bundle/1"
BUNDLE_KEY = "trust-bundle"
#: Extended key usage of the bundle signer (an ecert arc; only ecert verifiers look for it).
BUNDLE_SIGNING = x509.ObjectIdentifier("1.3.6.1.4.1.99999.2.1")
BUNDLE_PROFILE = Profile(
    name="trust-bundle", is_ca=False, key_usage=frozenset({"digital_signature"}), max_validity=dt.timedelta(days=400),
    extended_key_usage=(BUNDLE_SIGNING,), eku_critical=True,
)
LIFETIME = dt.timedelta(hours=24)
_RENEW_BEFORE = dt.timedelta(days=30)


class BundleInvalid(InvalidInput):
    slug = "trust-bundle-invalid"
    title = "The trust bundle cannot be used"


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _iso(value: dt.datetime | None) -> str | None:
    return as_utc(value).isoformat() if value else None


def _seal_json(seal: SealEntry) -> dict[str, Any]:
    return {"kid": seal.kid, "department": seal.department, "serial": format(seal.serial, "x"),
            "certificate": _pem(seal.certificate), "not_before": seal.not_before.isoformat(),
            "not_after": seal.not_after.isoformat(), "revoked_at": _iso(seal.revoked_at),
            "invalidity_date": _iso(seal.invalidity_date), "reason": seal.reason}


def build_bundle(trust: TrustMaterial, *, issuer: str, now: dt.datetime, token_keys: dict[str, Any] | None = None) -> dict[str, Any]:
    """The unsigned bundle body."""
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
    }


class BundlePublisher:
    """Builds, signs (Vault) and caches the bundle; rebuilds when it ages or a CRL changes."""

    def __init__(self, engine: Engine, keystore: KeyStore, clock: Clock, authority: Any, *,
                 token_keys: Callable[[], dict[str, Any] | None] | None = None, max_age_seconds: float = 300.0) -> None:
        self.engine = engine
        self.keystore = keystore
        self.clock = clock
        self.authority = authority
        self.token_keys = token_keys
        self.max_age = max_age_seconds
        self._lock = threading.Lock()
        self._cached: tuple[float, tuple[bytes, ...], bytes] | None = None

    def current_bytes(self) -> bytes:
        trust = trust_from_authority(self.authority)
        with self._lock:
            cached = self._cached
        if cached is not None and cached[0] > time.monotonic() and cached[1] == trust.crls:
            return cached[2]
        body = self.build()
        with self._lock:
            self._cached = (time.monotonic() + self.max_age, trust.crls, body)
        return body

    def build(self) -> bytes:
        now = self.clock.now()
        base = trust_from_authority(self.authority)
        with Session(self.engine) as session:
            trust = TrustMaterial(base.root, base.intermediates, base.crls, seal_entries(session))
        signer = self._signer(now)
        bundle = build_bundle(trust, issuer=self.authority.config.endpoints.base_url, now=now,
                              token_keys=self.token_keys() if self.token_keys else None)
        signature = self.keystore.sign_batch(signer[0], [hashlib.sha256(canonical(bundle)).digest()], ec_format="raw")[0]
        envelope = {"bundle": bundle, "signature": {
            "alg": "ES256", "kid": str(signer[0]), "x5c": [base64.b64encode(signer[1].public_bytes(serialization.Encoding.DER)).decode()],
            "value": _b64u(signature.value)}}
        return json.dumps(envelope, ensure_ascii=False, indent=1).encode()

    def _signer(self, now: dt.datetime) -> tuple[KeyRef, x509.Certificate]:
        """The bundle key and a certificate for it from our issuing CA (issued, or renewed, when needed)."""
        info = self.keystore.create(BUNDLE_KEY, KeyType.EC_P256)
        with Session(self.engine) as session:
            row = session.exec(select(IssuedCertificate).where(
                IssuedCertificate.profile == BUNDLE_PROFILE.name, IssuedCertificate.key_name == BUNDLE_KEY,
                IssuedCertificate.key_version == info.latest.version, IssuedCertificate.revoked_at == None,  # noqa: E711
            ).order_by(IssuedCertificate.not_after.desc())).first()  # type: ignore[attr-defined]
        if row is not None and as_utc(row.not_after) - now > _RENEW_BEFORE:
            return KeyRef(row.key_name, row.key_version), x509.load_der_x509_certificate(row.certificate_der)
        hierarchy = self.authority.hierarchy()
        config = self.authority.config
        subject = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, config.country),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, config.organization),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{config.organization} Trust Bundle Signer"[:64]),
        ])
        with session_scope(self.engine) as session:
            certificate, _ = issue_certificate(
                session, self.keystore, issuer=hierarchy.issuing, profile=BUNDLE_PROFILE, subject=subject, key=info.latest,
                validity=BUNDLE_PROFILE.max_validity - dt.timedelta(days=1), now=now, endpoints=config.endpoints, actor="system:trust-bundle")
        return info.latest, certificate


# -- reading a bundle (offline; no database, no Vault) ---------------------------------------------

@dataclass(frozen=True)
class LoadedBundle:
    trust: TrustMaterial
    issued_at: dt.datetime
    next_update: dt.datetime
    issuer: str
    root_sha256: str
    pinned: bool
    token_keys: dict[str, Any] | None

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
                  intermediates: list[x509.Certificate]) -> None:
    signer = x509.load_der_x509_certificate(base64.b64decode(signature["x5c"][0]))
    if not any(_issued(signer, ca) and _issued(ca, root) for ca in intermediates):
        raise BundleInvalid("the bundle's signer is not certified by the bundle's root")
    eku = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    if BUNDLE_SIGNING not in eku:
        raise BundleInvalid("the bundle's signer certificate is not for signing trust bundles")
    public = signer.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey) or signature.get("alg") != "ES256":
        raise BundleInvalid("the bundle signature must be ES256")
    raw = _unb64u(signature["value"])
    der = utils.encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:]))
    try:
        public.verify(der, canonical(bundle), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise BundleInvalid("the bundle's signature does not verify: it was altered or forged") from exc


def _issued(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


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
        _check_signer(signature, bundle, root, intermediates)
        seals = tuple(_seal(s) for s in bundle["seals"])
        for seal in seals:
            if not any(_issued(seal.certificate, ca) for ca in intermediates):
                raise BundleInvalid(f"the seal certificate {seal.kid} in the bundle is not issued by its CAs")
        crls = tuple(base64.b64decode(c) for c in bundle["crls"])
        for crl in crls:
            parsed = x509.load_der_x509_crl(crl)
            if not any(parsed.is_signature_valid(ca.public_key()) for ca in [root, *intermediates]):  # type: ignore[arg-type]
                raise BundleInvalid("a CRL in the bundle is not signed by one of its CAs")
        return LoadedBundle(
            TrustMaterial(root, tuple(intermediates), crls, seals), dt.datetime.fromisoformat(bundle["issued_at"]),
            dt.datetime.fromisoformat(bundle["next_update"]), bundle.get("issuer", ""), fingerprint(root),
            pinned_root is not None, bundle.get("token_keys"))
    except BundleInvalid:
        raise
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, x509.ExtensionNotFound) as exc:
        raise BundleInvalid(f"the trust bundle is malformed: {type(exc).__name__}: {exc}") from exc
