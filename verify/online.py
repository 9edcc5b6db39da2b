"""Online verification against the running service: trust from the CA in-process, PDFs against the register."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections import OrderedDict
from typing import Any

from cryptography import x509
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ca import profiles
from ca.models import IssuedCertificate
from certificates.models import Licence
from ecert.clock import Clock, as_utc
from verify.link import LinkVerifier
from verify.model import Check, Outcome, Verdict, check, failed_outcome
from verify.findings import PdfLimits, SealFindings, check_document
from verify.isolation import IsolatedChecks
from verify.trust import SealEntry, TrustMaterial

__all__ = ["PdfVerifier", "trust_from_authority", "seal_entries"]


def seal_entries(session: Session) -> tuple[SealEntry, ...]:
    """Every seal certificate ever issued (revoked and expired included), newest first."""
    rows = session.exec(select(IssuedCertificate).where(IssuedCertificate.profile == profiles.SEAL.name)
                        .order_by(col(IssuedCertificate.issued_at).desc())).all()
    return tuple(
        SealEntry(
            kid=f"{row.key_name}:v{row.key_version}", department=row.department_code or "", serial=int(row.serial, 16),
            certificate=x509.load_der_x509_certificate(row.certificate_der),
            revoked_at=as_utc(row.revoked_at) if row.revoked_at else None,
            invalidity_date=as_utc(row.invalidity_date) if row.invalidity_date else None,
            reason=row.revocation_reason,
        )
        for row in rows
    )


def trust_from_authority(authority: Any, *, with_seals: bool = False) -> TrustMaterial:
    """Trust material from the running :class:`ca.service.CertificateAuthority` (current CRLs, in-process)."""
    hierarchy = authority.hierarchy()
    crls = tuple(authority.crl(a.name) for a in hierarchy.authorities)
    seals: tuple[SealEntry, ...] = ()
    if with_seals:
        with Session(authority.engine) as session:
            seals = seal_entries(session)
    return TrustMaterial(hierarchy.root.certificate, (hierarchy.issuing.certificate,), crls, seals)


class PdfVerifier:
    """Online PDF verification: document checks, then the registered copy and the record's status."""

    def __init__(self, engine: Engine, clock: Clock, authority: object, link: LinkVerifier, *,
                 limits: PdfLimits = PdfLimits(), cache_size: int = 1024, check_seconds: float | None = 10.0) -> None:
        self.engine = engine
        self.clock = clock
        self.authority = authority
        self.link = link
        self.limits = limits
        self._trust = lambda: trust_from_authority(authority)
        self._findings: OrderedDict[tuple[bytes, bytes], SealFindings] = OrderedDict()
        self._lock = threading.Lock()
        self.cache_size = cache_size
        #: pyHanko's checks run in worker processes stopped after ``check_seconds`` (None: in this process)
        self.isolation = IsolatedChecks(deadline=check_seconds) if check_seconds is not None else None

    def verify(self, data: bytes) -> Verdict:
        now = self.clock.now()
        findings = self._document_checks(data, now)
        verdict = self._with_record(findings, now)
        department = verdict.licence.issuer if verdict.licence else None
        self.link.counter.add("verify.upload", department, verdict.outcome.value)
        return verdict

    def _document_checks(self, data: bytes, now: dt.datetime) -> SealFindings:
        """The document checks (seal profile, else pyHanko), remembered per (document, CRLs): the result depends on nothing else
        once the seal is timestamped."""
        trust = self._trust()
        key = (hashlib.sha256(data).digest(), hashlib.sha256(b"".join(trust.crls)).digest())
        with self._lock:
            cached = self._findings.get(key)
            if cached is not None:
                self._findings.move_to_end(key)
                return cached
        findings = check_document(data, trust, now=now, limits=self.limits, isolation=self.isolation)
        if findings.signed_at is not None and self.cache_size:
            with self._lock:
                self._findings[key] = findings
                while len(self._findings) > self.cache_size:
                    self._findings.popitem(last=False)
        return findings

    def _with_record(self, findings: SealFindings, now: dt.datetime) -> Verdict:
        checks = list(findings.checks)
        if not findings.passed or findings.number is None:
            if findings.passed:
                checks.append(check("registered", False, "The sealed document does not name a licence number.",
                                    "盖章文件中没有证照编号。"))
            return Verdict(failed_outcome(checks), tuple(checks), None, now)
        with Session(self.engine, expire_on_commit=False) as session:
            licence = session.exec(select(Licence).where(Licence.number == findings.number)).first()
            if licence is None:
                checks.append(check("registered", False, f"No licence {findings.number} is registered.", f"登记库中没有编号为 {findings.number} 的证照。"))
                return Verdict(Outcome.INVALID, tuple(checks), None, now)
            checks.append(_issuer_check(licence, findings))
            if findings.qr is not None:
                checks.append(_link_check(licence, findings.qr))
            checks.append(_copy_check(licence, findings))
        return self.link.verdict_for(licence, now=now, extra_checks=tuple(checks))


def _issuer_check(licence: Licence, findings: SealFindings) -> Check:
    ok = findings.department == licence.department_code
    return check("issuer", ok,
                 f"Sealed by the issuing department ({licence.department_code})." if ok
                 else f"Sealed by {findings.department}, but licence {licence.number} was issued by {licence.department_code}.",
                 f"由发证部门（{licence.department_code}）盖章。" if ok else f"盖章部门 {findings.department} 与发证部门 {licence.department_code} 不符。")


def _link_check(licence: Licence, qr: str) -> Check:
    """The signed record's QR link leads to this licence's page (link and signed payload name one licence)."""
    from verify.offline import token_of

    ok = token_of(qr) == licence.token
    return check("qr_link", ok, "The QR link and the signed record name the same licence." if ok
                 else f"The QR link leads to another licence than the signed record ({licence.number}) names.",
                 "二维码链接与已签名的证照记录指向同一证照。" if ok else f"二维码链接指向的证照与已签名记录（{licence.number}）不符。")


def _copy_check(licence: Licence, findings: SealFindings) -> Check:
    ok = licence.pdf_sha256 is not None and findings.sha256 == licence.pdf_sha256
    if ok:
        return check("registered_copy", True, "The file is exactly the registered copy of the licence.", "该文件与登记的证照文件完全一致。")
    if licence.pdf_sha256 is None:
        return check("registered_copy", False, "No PDF is registered for this licence.", "该证照没有登记的 PDF 文件。")
    return check("registered_copy", False, "The file differs from the registered copy of the licence.", "该文件与登记的证照文件不一致。")
