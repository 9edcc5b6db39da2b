"""Offline verification from a trust bundle: a scanned QR string or a sealed PDF, no network.

The payload or seal must be ours, unaltered, and made while the seal was valid and not compromised
(else ``invalid``); ``expired`` when the signed validity has ended. A QR payload's status then comes
from the bundle's signed status lists (its ``sl`` slot); without a usable list the outcome is
``authentic`` and the verdict says to check online. The bundle's age is reported (``bundle_stale``
past its next_update).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from certificates.jws import unb64url
from certificates.lifecycle import STATUS_WORDS
from certificates.qr import split_qr, verify_payload
from verify.bundle import LoadedBundle
from verify.model import TOKEN_PATTERN, Check, LicenceSummary, Outcome, Verdict, check, failed_outcome
from verify.trust import SealEntry

__all__ = ["verify_qr_offline", "verify_pdf_offline", "token_of"]


_STATUS_UNKNOWN = check("status_offline", True,
                        "Checked offline: whether the licence was revoked or suspended since it was issued is not known; check online when you can.",
                        "离线核验：无法得知签发后是否被吊销或暂停，请在联网时再次核验。")


def token_of(qr_text: str) -> str | None:
    """The verification token of a QR link (``.../v/<token>``), if it has one."""
    link, _ = split_qr(qr_text.strip())
    token = link.rstrip("/").rsplit("/v/", 1)[-1] if "/v/" in link else ""
    return token if TOKEN_PATTERN.match(token) else None


def _verdict(outcome: Outcome, checks: list[Check], bundle: LoadedBundle, now: dt.datetime,
             licence: LicenceSummary | None = None) -> Verdict:
    return Verdict(outcome, tuple(checks), licence, now, mode="offline", bundle_age_seconds=round(bundle.age_seconds(now), 1),
                   bundle_stale=bundle.stale(now))


def _bundle_check(bundle: LoadedBundle, now: dt.datetime) -> Check:
    days = bundle.age_seconds(now) / 86400
    if bundle.stale(now):
        return check("bundle_fresh", False,
                     f"The trust bundle is stale ({days:.1f} days old, due for update {bundle.next_update.isoformat()}): recent revocations may be missing.",
                     f"信任包已过期（{days:.1f} 天前签发，应于 {bundle.next_update.isoformat()} 前更新）：可能缺少最新的吊销信息。")
    return check("bundle_fresh", True, f"The trust bundle is current ({days * 24:.1f} hours old).", f"信任包在有效期内（签发于 {days * 24:.1f} 小时前）。")


def _seal_then(seal: SealEntry, bundle: LoadedBundle, at: dt.datetime) -> Check:
    revocation = bundle.trust.revocation(seal.certificate)
    compromised = revocation.effective if revocation else seal.compromised_from()
    if not seal.not_before <= at <= seal.not_after:
        return check("seal_at_signing", False, "The QR payload was signed outside the seal certificate's validity period.",
                     "二维码数据的签名时间不在印章证书有效期内。")
    reason = revocation.reason if revocation else seal.reason
    if reason == "keyCompromise":
        # a QR payload's iat is the signer's own claim: whoever holds a leaked key can back-date it
        return check("seal_at_signing", False,
                     "The key of this seal was compromised; a QR code cannot prove when it was signed. Verify online or check the PDF's timestamp.",
                     "该印章密钥已泄露，二维码无法证明签署时间。请联网核验或核验 PDF 的时间戳。")
    if compromised is not None and compromised <= at:
        return check("seal_at_signing", False,
                     f"The key that signed this QR payload was revoked effective {compromised.isoformat()}, before it was signed.",
                     f"签署该二维码数据的密钥已于 {compromised.isoformat()} 失效，早于签署时间。")
    return check("seal_at_signing", True, "The seal key was valid and not revoked when the payload was signed.", "签署时印章密钥有效且未被吊销。")


def _date(value: Any) -> dt.datetime | None:
    if not value:
        return None
    day = dt.date.fromisoformat(str(value))
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)


def _summary(claims: dict[str, Any]) -> LicenceSummary:
    code, _, version = str(claims.get("lt", "")).partition("/")
    return LicenceSummary(number=str(claims.get("no", "")), type_code=code, type_version=int(version or 0),
                          type_name_zh=None, type_name_en=None, issuer=str(claims.get("iss", "")),
                          valid_from=_date(claims.get("nbf")), valid_until=_date(claims.get("exp")),
                          issued_at=dt.datetime.fromtimestamp(int(claims.get("iat", 0)), dt.timezone.utc))


def _header(jws: str) -> dict[str, Any]:
    part = jws.split(".")[0]
    header = json.loads(unb64url(part))
    if not isinstance(header, dict):
        raise TypeError("the JWS header is not an object")
    return header


def verify_qr_offline(text: str, bundle: LoadedBundle, *, now: dt.datetime) -> Verdict:
    """Check a scanned QR string against the bundle: signed by a seal of ours, valid when signed, not expired."""
    checks = [_bundle_check(bundle, now)]
    _, jws = split_qr((text or "").strip())
    if not jws:
        checks.append(check("qr_payload", False, "The QR code carries only a link, no signed data: verify it online.",
                            "二维码只有链接，没有签名数据：请联网核验。"))
        return _verdict(Outcome.INVALID, checks, bundle, now)
    try:
        header = _header(jws)
        kid = str(header["kid"])
    except (ValueError, KeyError, TypeError, IndexError):
        checks.append(check("qr_payload", False, "The QR data is garbled (not a signed e-licence payload).", "二维码数据已损坏（不是签名的电子证照数据）。"))
        return _verdict(Outcome.INVALID, checks, bundle, now)
    seal = bundle.trust.seal_by_kid(kid)
    if seal is None:
        checks.append(check("qr_signer", False,
                            "The QR data was signed by a key that is not one of the province's seals (forged, or the trust bundle is older than the key).",
                            "二维码数据的签名密钥不是本省的印章密钥（伪造，或信任包早于该密钥）。"))
        return _verdict(Outcome.INVALID, checks, bundle, now)
    try:
        claims = verify_payload(jws, seal.certificate.public_key())["claims"]
    except (ValueError, TypeError, KeyError):
        checks.append(check("qr_signature", False, "The QR data's signature does not verify: it was altered or forged.",
                            "二维码数据签名校验失败：已被篡改或伪造。"))
        return _verdict(Outcome.INVALID, checks, bundle, now)
    checks.append(check("qr_signature", True, f"Signed by the seal of {seal.department}.", f"由 {seal.department} 的印章签署。"))
    summary = _summary(claims)
    same = claims.get("iss") == seal.department
    checks.append(check("issuer", same, "The issuing department matches the seal." if same
                        else f"The payload claims issuer {claims.get('iss')} but was signed by the seal of {seal.department}.",
                        "发证部门与印章一致。" if same else f"数据声称发证部门为 {claims.get('iss')}，但由 {seal.department} 的印章签署。"))
    assert summary.issued_at is not None
    checks.append(_seal_then(seal, bundle, summary.issued_at))
    return _finish(checks, summary, bundle, now, slot=claims.get("sl"))


def _status_from_list(slot: Any, bundle: LoadedBundle, now: dt.datetime) -> tuple[Outcome, Check] | None:
    """The licence's status from the bundle's signed status lists (its QR names the slot), if present."""
    found = bundle.licence_status(slot) if slot is not None else None
    if found is None:
        return None
    state, snapshot = found
    zh, en = STATUS_WORDS[state]
    age = int((now - snapshot.issued_at).total_seconds() // 60)
    when = snapshot.issued_at.isoformat(timespec="minutes")
    if now > snapshot.expires_at:
        return Outcome.AUTHENTIC, check(
            "status_offline", True,
            f"The status list ({when}, {age} min old) is past its next update: it said '{en}'; check online.",
            f"状态列表（{when}，{age} 分钟前）已过期：当时为“{zh}”；请联网核验。")
    if state.value == Outcome.VALID.value:
        return Outcome.VALID, check("status_offline", True, f"Valid according to the signed status list of {when} ({age} min old).",
                                    f"据 {when} 的签名状态列表（{age} 分钟前），该证照有效。")
    return Outcome(state.value), check(
        "status_offline", False, f"The signed status list of {when} ({age} min old) says: {en}.",
        f"据 {when} 的签名状态列表（{age} 分钟前），该证照状态为：{zh}。")


def _finish(checks: list[Check], summary: LicenceSummary | None, bundle: LoadedBundle, now: dt.datetime, *,
            slot: Any = None) -> Verdict:
    decisive = [c for c in checks if c.name != "bundle_fresh"]
    if not all(c.passed for c in decisive):
        return _verdict(failed_outcome(decisive), checks, bundle, now, summary)
    if summary is not None and summary.valid_until is not None and summary.valid_until + dt.timedelta(days=1) <= now:
        checks.append(check("validity", False, "The licence's validity period has ended.", "该证照已超过有效期。"))
        return _verdict(Outcome.EXPIRED, checks, bundle, now, summary)
    listed = _status_from_list(slot, bundle, now)
    if listed is not None:
        outcome, status_check = listed
        checks.append(status_check)
        return _verdict(outcome, checks, bundle, now, summary)
    checks.append(_STATUS_UNKNOWN)
    return _verdict(Outcome.AUTHENTIC, checks, bundle, now, summary)


def verify_pdf_offline(data: bytes, bundle: LoadedBundle, *, now: dt.datetime, limits: Any = None, isolation: Any = None) -> Verdict:
    """The document checks of :func:`verify.findings.check_document` (seal profile, else pyHanko) against the bundle's CAs and CRLs.

    Offline nothing but the seal can say which licence this is: the PDF must carry ecert's signed licence
    record (:mod:`verify.binding`), and the verdict is about the licence that record names. ``isolation`` (a
    :class:`verify.isolation.IsolatedChecks`) runs pyHanko's path in a worker process stopped at its deadline.
    """
    from verify.findings import PdfLimits, check_document  # pyHanko loads only for a PDF outside the seal profile

    findings = check_document(data, bundle.trust, now=now, limits=limits or PdfLimits(), isolation=isolation)
    checks = [_bundle_check(bundle, now), *findings.checks]
    if findings.passed and findings.claims is None:
        checks.append(_NO_RECORD)
        if findings.number:
            checks.append(check("claimed_licence", False, f"The document's title names licence {findings.number}; offline, nothing proves it.",
                                f"文件标题显示为证照 {findings.number}；离线时无法证明。"))
    summary = _summary(findings.claims) if findings.claims is not None else None
    slot = findings.claims.get("sl") if findings.claims is not None else None
    return _finish(checks, summary, bundle, now, slot=slot)


_NO_RECORD = check("licence_record", False,
                   "The seal vouches for no licence record (sealed without one, or not by ecert's service): verify this PDF online.",
                   "印章未对应已签名的证照记录（盖章时未附记录，或非本系统盖章）：请联网核验该 PDF。")
