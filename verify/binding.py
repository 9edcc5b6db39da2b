"""The binding of a sealed PDF to ecert's signed licence record (no pyHanko here).

A licence sealed by ecert carries its QR string in the sealed revision's ``/Info`` (:data:`certificates.sealing.RECORD_KEY`)
and a title ending with its number. The QR string's JWS, signed by the department's seal key, is the
licence record: number, issuing department, type, validity, holder/fields digest, status-list slot.
:func:`bind` checks that the seal's own key signed that record, that the record's department is the
seal's department, and that the visible title names the record's licence. The verdict then names the
licence of the *record*, never one read from the document's text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography import x509

from certificates.qr import split_qr, verify_payload
from verify.model import Check, check

__all__ = ["Binding", "bind", "number_in_title"]

_RECORD_FAILS = ("licence_record", "The seal does not vouch for a licence: {why}", "印章未对应任何证照：{why}")


@dataclass(frozen=True)
class Binding:
    """The outcome of :func:`bind`: the check (None when the PDF carries no record) and the record's claims if it holds."""

    check: Check | None
    claims: dict[str, Any] | None = None
    qr: str | None = None

    @property
    def number(self) -> str | None:
        return str(self.claims["no"]) if self.claims else None


def number_in_title(title: str | None) -> str | None:
    """The licence number at the end of a document title."""
    from verify.findings import licence_number  # findings imports this module lazily: no cycle at import time

    return licence_number(title) if title else None


def _fail(en: str, zh: str) -> Binding:
    return Binding(check(_RECORD_FAILS[0], False, _RECORD_FAILS[1].format(why=en), _RECORD_FAILS[2].format(why=zh)))


def _claims(jws: str, signer: x509.Certificate) -> dict[str, Any] | None:
    """The record's claims if the seal's own key signed it (ecert signs a licence's QR and its PDF with one key version)."""
    try:
        claims = verify_payload(jws, signer.public_key())["claims"]
    except (ValueError, TypeError, KeyError):
        return None
    return claims if isinstance(claims, dict) else None


def bind(record: str | None, title: str | None, signer: x509.Certificate, department: str | None) -> Binding:
    """Check the signed record against the seal (``signer``, chained to us, of ``department``) and the title."""
    if record is None:
        return Binding(None)
    _, jws = split_qr(record.strip())
    claims = _claims(jws, signer) if jws else None
    if claims is None:
        return _fail("its licence record is not signed by this seal's key.", "其证照记录并非由该印章密钥签署。")
    number, issuer = str(claims.get("no", "")), str(claims.get("iss", ""))
    if department is None or issuer != department:
        return _fail(f"the record names licence {number} of {issuer}, but the seal belongs to {department}.",
                     f"记录所载证照 {number} 属于 {issuer}，但印章属于 {department}。")
    shown = number_in_title(title)
    if shown != number:
        return _fail(f"the record names licence {number}, but the document's title names {shown or 'none'}.",
                     f"记录所载证照为 {number}，但文件标题显示为 {shown or '无'}。")
    passed = check(_RECORD_FAILS[0], True, f"The seal vouches for licence {number} of {issuer} (signed record, title agrees).",
                   f"印章对应 {issuer} 的证照 {number}（已签名的证照记录，与标题一致）。")
    return Binding(passed, claims, record.strip())
