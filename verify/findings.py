"""What both PDF paths share: the findings shape, the seal checks and their wording (no pyHanko here).

:mod:`verify.profile` (our own seal profile, asn1crypto + cryptography) and :mod:`verify.pdf`
(pyHanko, any PDF) establish the facts differently; :func:`seal_checks` turns the facts into the
same checks, with the same names and reasons, whichever path found them. :func:`check_document` is
the entry point: the profile path first, pyHanko (imported only then) for everything else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from verify.model import Check, check
from verify.trust import TrustMaterial, signed_by

__all__ = ["PdfLimits", "SealFindings", "SealFacts", "SEAL_FIELD", "READABLE", "check_document", "seal_checks", "issued_by_us",
           "licence_number", "conclude"]

SEAL_FIELD = "ecert-seal"
_NUMBER = re.compile(r"([A-Z0-9]{1,16}-[A-Z0-9]{1,32}-\d{4}-\d{1,12}-[0-9A-Z*])\s*$")
READABLE = check("readable", True, "The file is a readable PDF.", "文件是可读取的 PDF。")


@dataclass(frozen=True)
class PdfLimits:
    max_bytes: int = 20 * 1024 * 1024
    max_objects: int = 20_000
    max_stream_bytes: int = 16 * 1024 * 1024  # per stream, decoded
    max_total_decoded: int = 64 * 1024 * 1024
    max_revisions: int = 32  # a sealed licence has 2-4; each revision costs pyHanko a difference analysis


@dataclass(frozen=True)
class SealFindings:
    """What the document checks found: the checks, and what the signed document says it is.

    ``number`` is the licence the seal vouches for when ``claims`` (the signed licence record, see
    :mod:`verify.binding`) hold, else the number the document's title claims (unbound: only the registered
    copy online can confirm it). ``qr`` is the record's QR string. ``path`` says which validator answered
    (``profile`` or ``pyhanko``); it is not part of equality.
    """

    checks: tuple[Check, ...]
    number: str | None = None
    department: str | None = None
    signed_at: dt.datetime | None = None
    sha256: str | None = None
    path: str = field(default="pyhanko", compare=False)
    claims: dict[str, Any] | None = field(default=None, compare=False)
    qr: str | None = None

    @property
    def bound(self) -> bool:
        """The seal vouches for a signed licence record (offline verdicts need it)."""
        return self.claims is not None

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)


@dataclass(frozen=True)
class SealFacts:
    """What a validator established about the seal signature, before it is worded as checks.

    ``trusted``: the signer's path to our root validated (now, or at the trusted timestamp time).
    ``signed_at``: the trusted timestamp's time, None when there is no trusted timestamp.
    """

    intact: bool
    signer: x509.Certificate
    trusted: bool
    signed_at: dt.datetime | None
    unmodified: bool


def licence_number(title: str) -> str | None:
    """The licence number at the end of the document title."""
    found = _NUMBER.search(title)
    return found.group(1) if found else None


def issued_by_us(certificate: x509.Certificate, trust: TrustMaterial) -> x509.Certificate | None:
    """The issuing CA of ours whose signature the certificate carries (whatever names it copies), if any."""
    for issuer in trust.intermediates:
        if signed_by(certificate, issuer) and signed_by(issuer, trust.root):
            return issuer
    return None


def _department(certificate: x509.Certificate) -> str | None:
    values = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)
    return str(values[0].value) if values else None


def seal_checks(facts: SealFacts, trust: TrustMaterial, now: dt.datetime) -> tuple[list[Check], str | None]:
    """The seal's checks (intact, chain, timestamp, unmodified, status then and now) and its department if chained."""
    intact, signed_at = facts.intact, facts.signed_at
    checks = [check("intact", intact,
                    "The seal's signature matches the document's bytes." if intact
                    else "The document was changed after it was sealed, or the seal's signature is broken.",
                    "电子印章签名与文件内容一致。" if intact else "文件在盖章后被修改，或印章签名已损坏。")]
    ours = issued_by_us(facts.signer, trust) is not None
    chained = ours and facts.trusted
    if chained:
        checks.append(check("chain", True, "The seal certificate chains to the provincial e-licence root CA.", "印章证书可追溯至省电子证照根证书。"))
    elif ours and not intact:
        checks.append(check("chain", False, "The seal names a certificate of the provincial e-licence CA, but its signature does not match "
                            "this document, so it vouches for nothing in it.", "印章引用了省电子证照 CA 的证书，但签名与本文件不符，不能证明文件内容。"))
    else:
        checks.append(check("chain", False, "The seal was not made with a certificate of the provincial e-licence CA (unknown or self-made signer).",
                            "印章并非由省电子证照 CA 签发的证书所盖（签名者未知或自制）。"))
    checks.append(check("timestamp", signed_at is not None,
                        f"Trusted timestamp from the provincial TSA: sealed at {signed_at.isoformat()}." if signed_at
                        else "There is no trusted timestamp from the provincial time-stamping authority.",
                        f"省时间戳服务的可信时间：盖章时间 {signed_at.isoformat()}。" if signed_at else "缺少省时间戳服务的可信时间戳。"))
    if facts.unmodified:
        checks.append(check("unmodified", True, "Nothing was changed after sealing (validation data only).", "盖章后未作任何修改（仅附加了验证数据）。"))
    else:
        checks.append(check("unmodified", False, "Content or form fields were changed or added after the document was sealed.",
                            "文件盖章后，内容或表单被修改或增加。"))
    if chained:
        checks.extend(_status_checks(facts.signer, trust, signed_at, now))
    return checks, _department(facts.signer) if chained else None


def _status_checks(signer: x509.Certificate, trust: TrustMaterial, signed_at: dt.datetime | None, now: dt.datetime) -> list[Check]:
    at = signed_at or now
    revocation = trust.revocation(signer)
    in_window = signer.not_valid_before_utc <= at <= signer.not_valid_after_utc
    compromised = revocation is not None and revocation.effective <= at
    ok_then = in_window and not compromised
    if ok_then:
        then = check("seal_at_signing", True, "The seal certificate was valid and not revoked when the document was sealed.",
                     "盖章时印章证书有效且未被吊销。")
    elif not in_window:
        then = check("seal_at_signing", False, "The seal certificate was not within its validity period when the document was sealed.",
                     "盖章时印章证书不在有效期内。")
    else:
        assert revocation is not None
        then = check("seal_at_signing", False,
                     f"The seal certificate was revoked ({revocation.reason}) effective {revocation.effective.isoformat()}, before this document was sealed.",
                     f"印章证书已于 {revocation.effective.isoformat()} 被吊销（{revocation.reason}），早于本文件盖章时间。")
    if revocation is None:
        current = check("seal_now", True, "The seal certificate is not revoked today.", "印章证书目前未被吊销。")
    elif ok_then and signed_at is not None:
        current = check("seal_now", True,
                        f"The seal certificate was revoked on {revocation.revoked_at.date().isoformat()}, after this document was sealed; documents sealed before stay valid.",
                        f"印章证书已于 {revocation.revoked_at.date().isoformat()} 吊销，晚于本文件盖章时间；此前盖章的文件仍然有效。")
    else:
        current = check("seal_now", False, f"The seal certificate is revoked ({revocation.reason}).", f"印章证书已被吊销（{revocation.reason}）。")
    return [then, current]


def conclude(facts: SealFacts, trust: TrustMaterial, now: dt.datetime, *, title: str | None, record: str | None,
             digest: str | None, path: str) -> SealFindings:
    """The findings from a validator's facts: the seal checks, then the binding to the signed licence record."""
    from verify.binding import bind

    checks, department = seal_checks(facts, trust, now)
    claimed = licence_number(title) if title else None
    if department is None or not all(c.passed for c in checks):
        return SealFindings((READABLE, *checks, *_claimed(claimed)), claimed, department, facts.signed_at, digest, path=path)
    binding = bind(record, title, facts.signer, department)
    if binding.check is not None:
        checks.append(binding.check)
    number = binding.number or claimed
    extra = _claimed(number) if binding.check is not None and not binding.check.passed else []
    return SealFindings((READABLE, *checks, *extra), number, department, facts.signed_at, digest, path=path, claims=binding.claims,
                        qr=binding.qr)


def _claimed(number: str | None) -> list[Check]:
    """Named in a failed verdict: which licence the document claims to be (it is no proof of that licence)."""
    if number is None:
        return []
    return [check("claimed_licence", False, f"The document claims to be licence {number}; it is not a genuine copy of it.",
                  f"该文件自称为证照 {number}，但并非其真实副本。")]


def check_document(data: bytes, trust: TrustMaterial, *, now: dt.datetime, limits: PdfLimits = PdfLimits(),
                   isolation: Any = None) -> SealFindings:
    """The document checks: our seal profile first (no pyHanko), pyHanko for anything that does not match it.

    ``isolation`` (a :class:`verify.isolation.IsolatedChecks`) runs the pyHanko path in a worker process with a deadline.
    """
    from verify.profile import check_profile

    found = check_profile(data, trust, now=now, limits=limits)
    if found is not None:
        return found
    if isolation is not None:
        result: SealFindings = isolation.check(data, trust, now=now, limits=limits)
        return result
    from verify.pdf import check_pdf  # pyHanko loads only for PDFs outside the profile

    return check_pdf(data, trust, now=now, limits=limits)


def sha256_hex(data: bytes) -> str | None:
    return hashlib.sha256(data).hexdigest() if data else None
