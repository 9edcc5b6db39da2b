"""Publishing the trust bundle: its Vault key (``trust-bundle``), that key's certificate from our
issuing CA, and a signed, cached bundle rebuilt when it ages or a CRL changes."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ca.hierarchy import issue_certificate
from ca.models import IssuedCertificate
from certificates.jws import canonical_json
from certificates.models import StatusList, StatusListToken
from certificates.statuslist import current_token
from ca.profiles import Profile
from ecert.clock import Clock, as_utc
from ecert.db import session_scope
from keys import KeyRef, KeyStore, KeyType
from verify.bundle import BUNDLE_KEY, BUNDLE_SIGNING, build_bundle, signature_envelope
from verify.online import seal_entries, trust_from_authority
from verify.trust import TrustMaterial, has_eku

__all__ = ["BUNDLE_PROFILE", "BundlePublisher"]

BUNDLE_PROFILE = Profile(
    name="trust-bundle", is_ca=False, key_usage=frozenset({"digital_signature"}), max_validity=dt.timedelta(days=400),
    extended_key_usage=(BUNDLE_SIGNING,), eku_critical=True,
)
_RENEW_BEFORE = dt.timedelta(days=30)


class BundlePublisher:
    """Builds, signs (Vault) and caches the bundle; rebuilds when it ages, a CRL changes, a status list opens or changes."""

    def __init__(self, engine: Engine, keystore: KeyStore, clock: Clock, authority: Any, *,
                 token_keys: Callable[[], dict[str, Any] | None] | None = None, max_age_seconds: float = 300.0) -> None:
        self.engine = engine
        self.keystore = keystore
        self.clock = clock
        self.authority = authority
        self.token_keys = token_keys
        self.max_age = max_age_seconds
        self._lock = threading.Lock()
        self._cached: tuple[float, tuple[object, ...], bytes] | None = None

    def _state(self) -> tuple[object, ...]:
        """What a cached bundle must still match: the CRLs, the status lists and their change counters."""
        with Session(self.engine) as session:
            lists = tuple(session.execute(
                select(StatusList.id, StatusListToken.changes)
                .join(StatusListToken, col(StatusListToken.list_id) == StatusList.id, isouter=True)
                .order_by(col(StatusList.id))
            ).all())
        return (trust_from_authority(self.authority).crls, lists)

    def current_bytes(self) -> bytes:
        state = self._state()
        with self._lock:
            cached = self._cached
        if cached is not None and cached[0] > time.monotonic() and cached[1] == state:
            return cached[2]
        body = self.build()
        with self._lock:
            self._cached = (time.monotonic() + self.max_age, state, body)
        return body

    def build(self) -> bytes:
        now = self.clock.now()
        base = trust_from_authority(self.authority)
        with Session(self.engine) as session:
            trust = TrustMaterial(base.root, base.intermediates, base.crls, seal_entries(session))
        base_url = self.authority.config.endpoints.base_url
        with session_scope(self.engine) as session:
            list_ids = session.exec(select(StatusList.id).order_by(col(StatusList.id))).all()
            status_lists = [current_token(session, self.keystore, list_id, public_url=base_url, now=now).token
                            for list_id in list_ids]
        signer = self._signer(now)
        bundle = build_bundle(trust, issuer=base_url, now=now,
                              token_keys=self.token_keys() if self.token_keys else None, status_lists=status_lists)
        signature = self.keystore.sign_batch(signer[0], [hashlib.sha256(canonical_json(bundle)).digest()], ec_format="raw")[0]
        return signature_envelope(bundle, kid=str(signer[0]), signer=signer[1], raw_signature=signature.value)

    def _signer(self, now: dt.datetime) -> tuple[KeyRef, x509.Certificate]:
        """The bundle key and a certificate for it from our issuing CA (issued, or renewed, when needed)."""
        info = self.keystore.create(BUNDLE_KEY, KeyType.EC_P256)
        with Session(self.engine) as session:
            row = session.exec(select(IssuedCertificate).where(
                IssuedCertificate.profile == BUNDLE_PROFILE.name, IssuedCertificate.key_name == BUNDLE_KEY,
                IssuedCertificate.key_version == info.latest.version, IssuedCertificate.revoked_at == None,  # noqa: E711
            ).order_by(col(IssuedCertificate.not_after).desc())).first()
        if row is not None and as_utc(row.not_after) - now > _RENEW_BEFORE:
            stored = x509.load_der_x509_certificate(row.certificate_der)
            if has_eku(stored, BUNDLE_SIGNING):  # else certified under an earlier profile: certify again
                return KeyRef(row.key_name, row.key_version), stored
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
