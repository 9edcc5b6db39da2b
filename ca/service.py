"""The certificate authority as one service object: what routes, commands and the sealer call.

It owns the caches (the hierarchy, current seals, OCSP answers) and opens its own short
transactions for reads; writes take the caller's session so they commit with the caller's work
and its audit events.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x509_ocsp
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from ca import departments, revocation, seals
from ca.crl import crl_state, refresh_crl
from ca.errors import HierarchyNotReady, UnknownAuthority
from ca.hierarchy import CaConfig, Hierarchy, ensure_hierarchy, load_hierarchy
from ca.models import CrlRecord, Department, IssuedCertificate
from ca.ocsp import CertStatus, Responder
from ca.profiles import Endpoints
from ca.seals import SealCredential
from ca.tsa import TimestampAuthority
from ecert.clock import Clock, as_utc
from ecert.db import session_scope
from ecert.errors import Conflict
from ecert.settings import Settings
from keys import KeyRef, KeyStore

__all__ = ["CertificateAuthority", "NoSealCertificate", "ca_config"]

log = logging.getLogger(__name__)


class NoSealCertificate(Conflict):
    """The department has no valid seal certificate with a key in ecert's Vault."""

    slug = "no-seal-certificate"
    title = "The department has no valid seal certificate"


class CertificateAuthority:
    def __init__(self, *, engine: Engine, keystore: KeyStore, clock: Clock, config: CaConfig,
                 seal_cache_seconds: float = 30.0) -> None:
        self.engine = engine
        self.keystore = keystore
        self.clock = clock
        self.config = config
        self._lock = threading.RLock()
        self._hierarchy: Hierarchy | None = None
        self._responder: Responder | None = None
        self._tsa: TimestampAuthority | None = None
        self._seals: dict[str, tuple[SealCredential, float]] = {}
        self._seal_ttl = seal_cache_seconds
        self._crls: dict[str, tuple[int, bytes]] = {}
        self._maintenance: tuple[threading.Thread, threading.Event] | None = None

    # -- hierarchy ------------------------------------------------------------------------
    def bootstrap(self) -> Hierarchy:
        """Create whatever part of the hierarchy is missing or due for renewal (idempotent)."""
        with session_scope(self.engine) as session:
            hierarchy = ensure_hierarchy(session, self.keystore, self.config, self.clock)
        self._use(hierarchy)
        for authority in hierarchy.authorities:  # so sealing finds CRLs without having to write one
            self.crl(authority.name, rebuild_if_stale=False)
        return hierarchy

    def hierarchy(self) -> Hierarchy:
        with self._lock:
            hierarchy = self._hierarchy
        if hierarchy is not None and hierarchy.ocsp.certificate.not_valid_after_utc > self.clock.now():
            return hierarchy
        try:
            with session_scope(self.engine) as session:
                hierarchy = load_hierarchy(session, self.clock.now(), self.config)
        except HierarchyNotReady:  # missing, or a delegate is due for renewal: create it
            return self.bootstrap()
        self._use(hierarchy)
        return hierarchy

    def _use(self, hierarchy: Hierarchy) -> None:
        with self._lock:
            if self._hierarchy != hierarchy:
                self._hierarchy = hierarchy
                self._responder = Responder(self.keystore, hierarchy.issuing, hierarchy.ocsp, self._status)
                self._tsa = TimestampAuthority(self.keystore, hierarchy.tsa, (hierarchy.issuing.certificate,))

    def trust_anchors(self) -> tuple[x509.Certificate, ...]:
        hierarchy = self.hierarchy()
        return (hierarchy.root.certificate,)

    def ca_certificate(self, name: str) -> x509.Certificate:
        return self.hierarchy().authority(name).certificate

    # -- departments and seals ------------------------------------------------------------
    def add_department(self, session: Session, code: str, name: str, *, name_en: str | None = None,
                       actor: str) -> tuple[Department, IssuedCertificate]:
        """Register a department and certify its first seal key, in the caller's transaction."""
        hierarchy = self.hierarchy()  # before writing: loading may create it in a transaction of its own
        now = self.clock.now()
        department = departments.add_department(session, code, name, name_en=name_en, actor=actor, now=now)
        _, row = seals.issue_seal(session, self.keystore, hierarchy, self.config, code, actor=actor, now=now)
        return department, row

    def renew_seal(self, session: Session, code: str, *, actor: str, rotate: bool = True) -> IssuedCertificate:
        """A new seal certificate (by default for a rotated key); the previous one stays valid until it expires."""
        _, row = seals.issue_seal(session, self.keystore, self.hierarchy(), self.config, code, actor=actor,
                                  now=self.clock.now(), rotate=rotate)
        self._forget_seal(code)
        return row

    def seal_from_csr(self, session: Session, code: str, csr: bytes, *, actor: str) -> IssuedCertificate:
        _, row = seals.seal_from_csr(session, self.keystore, self.hierarchy(), self.config, code, csr, actor=actor,
                                     now=self.clock.now())
        return row

    def current_seal(self, department_code: str) -> SealCredential:
        """The credential that seals this department's documents now (cached briefly)."""
        with self._lock:
            cached = self._seals.get(department_code)
        if cached is not None and cached[1] > time.monotonic() and self._valid(cached[0].certificate):
            return cached[0]
        with session_scope(self.engine) as session:
            credential = seals.current_seal(session, self.hierarchy(), department_code, self.clock.now())
        if credential is None:
            raise NoSealCertificate(f"department {department_code} has no valid seal certificate")
        with self._lock:
            self._seals[department_code] = (credential, time.monotonic() + self._seal_ttl)
        return credential

    def qr_key(self, department_code: str) -> KeyRef:
        """The seal key version that signs the department's QR payloads (certificates.sealing.SealKeys)."""
        return self.current_seal(department_code).key

    def _valid(self, cert: x509.Certificate) -> bool:
        now = self.clock.now()
        return cert.not_valid_before_utc <= now < cert.not_valid_after_utc

    def _forget_seal(self, code: str | None) -> None:
        with self._lock:
            if code is None:
                self._seals.clear()
            else:
                self._seals.pop(code, None)

    # -- revocation -----------------------------------------------------------------------
    def revoke(self, session: Session, serial: str, reason: str, *, actor: str, department: str | None = None,
               invalidity_date: dt.datetime | None = None) -> IssuedCertificate:
        row = revocation.revoke(session, serial, reason, actor=actor, now=self.clock.now(),
                                invalidity_date=invalidity_date, department=department)
        self._forget_seal(row.department_code)
        return row

    def certificate(self, session: Session, serial: str) -> IssuedCertificate | None:
        return session.get(IssuedCertificate, serial.lower().lstrip("0") or "0")

    def _status(self, issuer: str, serial: int) -> CertStatus | None:
        with Session(self.engine) as session:
            row = session.execute(
                select(IssuedCertificate.revoked_at, IssuedCertificate.revocation_reason)
                .where(IssuedCertificate.serial == format(serial, "x"), IssuedCertificate.issuer == issuer)
            ).first()
        if row is None:
            return None
        return CertStatus(as_utc(row[0]) if row[0] else None, row[1])

    def crl(self, ca_name: str, *, rebuild_if_stale: bool = True) -> bytes:
        """The CA's current CRL (DER), rebuilt when a revocation or the schedule made it stale.

        With ``rebuild_if_stale=False`` (evidence embedded while sealing, inside an issuing
        transaction) any unexpired stored CRL is returned without writing, so sealing never waits
        on a second writer (SQLite has one); publication and the maintenance thread rebuild.
        """
        authority = self.hierarchy().authority(ca_name)
        now = self.clock.now()
        with session_scope(self.engine) as session:
            state = crl_state(session, ca_name, now)
            usable = state.fresh or (not rebuild_if_stale and state.next_update is not None and now < state.next_update)
            cached = self._crls.get(ca_name)
            if usable and cached is not None and cached[0] == state.number:
                return cached[1]
            if usable:
                stored = session.get(CrlRecord, ca_name)
                if stored is not None and stored.crl_der is not None:
                    with self._lock:
                        self._crls[ca_name] = (stored.number, stored.crl_der)
                    return stored.crl_der
            validity = self.config.root_crl_validity if authority.role == "root" else self.config.crl_validity
            der = refresh_crl(session, self.keystore, authority, validity, now)
        number = x509.load_der_x509_crl(der).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        with self._lock:
            self._crls[ca_name] = (number, der)
        return der

    def refresh_crls(self) -> None:
        """Scheduled task: keep every CRL fresh before its nextUpdate."""
        for authority in self.hierarchy().authorities:
            self.crl(authority.name)

    def maintain(self) -> None:
        """Scheduled work: renew delegate certificates that are due, refresh CRLs before nextUpdate."""
        self.bootstrap()
        self.refresh_crls()

    def start_maintenance(self, interval: float = 300.0) -> None:
        """Run :meth:`maintain` now and then every ``interval`` seconds in a daemon thread."""
        with self._lock:
            if self._maintenance is not None:
                return
            stop = threading.Event()

            def loop() -> None:
                while True:
                    try:
                        self.maintain()
                    except Exception:  # noqa: BLE001  # Vault or database down: log, try again next round
                        log.exception("CA maintenance failed; retrying in %s s", interval)
                    if stop.wait(interval):
                        return

            thread = threading.Thread(target=loop, name="ca-maintenance", daemon=True)
            self._maintenance = (thread, stop)
        thread.start()

    def stop_maintenance(self) -> None:
        with self._lock:
            maintenance, self._maintenance = self._maintenance, None
        if maintenance is not None:
            maintenance[1].set()
            maintenance[0].join(timeout=30)

    def crl_for(self, issuer: x509.Certificate) -> bytes:
        for authority in self.hierarchy().authorities:
            if authority.certificate == issuer:
                return self.crl(authority.name, rebuild_if_stale=False)
        raise UnknownAuthority(f"{issuer.subject.rfc4514_string()} is not a CA of ecert")

    def ocsp(self, request_der: bytes) -> bytes:
        self.hierarchy()
        assert self._responder is not None
        return self._responder.respond(request_der, self.clock.now())

    def ocsp_for(self, certificate: x509.Certificate, issuer: x509.Certificate) -> bytes:
        """An OCSP response for one certificate (for embedding validation data in PDFs)."""
        request = x509_ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA256()).build()
        return self.ocsp(request.public_bytes(serialization.Encoding.DER))

    # -- time-stamping --------------------------------------------------------------------
    def timestamp(self, message_imprint: bytes, hash_name: str, *, nonce: int | None = None) -> bytes:
        """A DER RFC 3161 TimeStampToken (in-process, for the PDF sealer)."""
        self.hierarchy()
        assert self._tsa is not None
        return self._tsa.timestamp(message_imprint, hash_name, nonce=nonce, now=self.clock.now())

    def timestamp_batch(self, message_imprints: list[bytes], hash_name: str) -> list[bytes]:
        """Tokens for many imprints with one Vault round trip (for bulk sealing)."""
        self.hierarchy()
        assert self._tsa is not None
        return self._tsa.timestamp_batch(message_imprints, hash_name, now=self.clock.now())

    def tsa_respond(self, request_der: bytes) -> bytes:
        self.hierarchy()
        assert self._tsa is not None
        return self._tsa.respond(request_der, self.clock.now())

    @property
    def tsa_certificate(self) -> x509.Certificate:
        return self.hierarchy().tsa.certificate


def ca_config(settings: Settings) -> CaConfig:
    return CaConfig(organization=settings.ca_organization, country=settings.ca_country,
                    endpoints=Endpoints(settings.public_url))

