"""A scanned QR string's two halves: the link (``/v/{token}``, looked up online) and the signed payload (its JWS).

A QR put together from two licences (one's link, another's payload) would show a genuine page for the link while
the payload, read offline, names another licence: :func:`link_and_payload` calls that out.
"""

from __future__ import annotations

import dataclasses
import json

from certificates.jws import unb64url
from certificates.qr import split_qr
from verify.model import Outcome, Verdict, check

__all__ = ["payload_number", "link_and_payload", "mismatch_reasons"]


def payload_number(qr_text: str) -> str | None:
    """The licence number the QR's payload states (read, not verified: the offline check verifies it)."""
    _, jws = split_qr(qr_text.strip())
    try:
        claims = json.loads(unb64url((jws or "").split(".")[1]))
    except (ValueError, IndexError, TypeError):
        return None
    return str(claims["no"]) if isinstance(claims, dict) and "no" in claims else None


def mismatch_reasons(linked: str, stated: str) -> tuple[str, str]:
    """(en, zh) for a QR whose link leads to ``linked`` while its payload names ``stated``."""
    return (f"The QR's link leads to licence {linked}, but its signed payload names licence {stated}: the QR was put together "
            "from two licences.", f"二维码链接指向证照 {linked}，但其签名数据所载为证照 {stated}：该二维码由两份证照拼凑而成。")


def link_and_payload(verdict: Verdict, qr_text: str) -> Verdict:
    """``verdict`` (of the QR's link) made invalid, with a ``qr_link`` check, when the payload names another licence."""
    stated = payload_number(qr_text)
    linked = verdict.licence.number if verdict.licence else None
    if stated is None or linked is None or stated == linked:
        return verdict
    en, zh = mismatch_reasons(linked, stated)
    return dataclasses.replace(verdict, outcome=Outcome.INVALID, checks=(*verdict.checks, check("qr_link", False, en, zh)))
