"""Offline verification from the signed trust bundle: QR strings and PDFs, rotation, compromise, staleness."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlmodel import Session

from ca import seals
from ca.service import CertificateAuthority
from certificates.qr import QrClaims, b64url, qr_string, sign_payloads
from ecert.db import session_scope
from keys import KeyRef
from signing.sealer import PadesSealer
from tests.verify.conftest import Issued, issue_for, new_department, pdf_of
from verify.bundle import BundleInvalid, LoadedBundle, load_bundle
from verify.model import Outcome
from verify.offline import token_of, verify_pdf_offline, verify_qr_offline
from verify.online import PdfVerifier
from verify.publisher import BundlePublisher


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@pytest.fixture(scope="module")
def bundle(publisher: BundlePublisher, authority: CertificateAuthority, issued: Issued) -> LoadedBundle:
    return load_bundle(publisher.build(), pinned_root=authority.hierarchy().root.certificate)


def test_bundle_is_signed_by_a_certified_key_and_tampering_is_detected(publisher: BundlePublisher, authority: CertificateAuthority,
                                                                       issued: Issued) -> None:
    raw = publisher.build()
    envelope = json.loads(raw)
    assert envelope["signature"]["kid"].startswith("trust-bundle:v")
    assert envelope["bundle"]["seals"] and envelope["bundle"]["crls"]
    envelope["bundle"]["seals"][0]["revoked_at"] = None if envelope["bundle"]["seals"][0]["revoked_at"] else "2020-01-01T00:00:00+00:00"
    with pytest.raises(BundleInvalid, match="altered or forged"):
        load_bundle(json.dumps(envelope).encode())
    stranger = ec.generate_private_key(ec.SECP256R1())  # a forger cannot pass as our root when the root is pinned
    with pytest.raises(BundleInvalid):
        load_bundle(raw.replace(b'"ecert-trust-bundle/1"', b'"other/1"'))
    with pytest.raises(BundleInvalid, match="pinned"):
        from tests.support import hostile

        forged_root = hostile.self_signed(stranger)
        load_bundle(raw, pinned_root=forged_root)
    for junk in (b"", b"{}", b"not json", b'{"bundle": 1, "signature": 2}'):
        with pytest.raises(BundleInvalid):
            load_bundle(junk)


def test_qr_of_a_valid_licence_is_valid_offline_by_the_status_list(bundle: LoadedBundle, issued: Issued) -> None:
    qr = issued.licences["valid"].qr_payload or ""
    verdict = verify_qr_offline(qr, bundle, now=_now())
    assert verdict.outcome is Outcome.VALID, [c.reason_en for c in verdict.failed]
    assert "status list" in next(c for c in verdict.checks if c.name == "status_offline").reason_en
    assert verdict.mode == "offline" and verdict.bundle_stale is False and verdict.bundle_age_seconds is not None
    assert verdict.licence and verdict.licence.number == issued.licences["valid"].number
    assert token_of(qr) == issued.token("valid")


def test_qr_of_a_revoked_licence_is_revoked_offline(bundle: LoadedBundle, issued: Issued) -> None:
    verdict = verify_qr_offline(issued.licences["revoked"].qr_payload or "", bundle, now=_now())
    assert verdict.outcome is Outcome.REVOKED and "status_offline" in {c.name for c in verdict.failed}


def test_a_status_list_past_its_update_gives_no_verdict_on_status(bundle: LoadedBundle, issued: Issued) -> None:
    snapshot = next(iter(bundle.status_lists.values()))
    later = snapshot.expires_at + dt.timedelta(minutes=1)
    verdict = verify_qr_offline(issued.licences["revoked"].qr_payload or "", bundle, now=later)
    assert verdict.outcome is Outcome.AUTHENTIC and "check online" in verdict.checks[-1].reason_en


def test_qr_of_an_expired_licence(bundle: LoadedBundle, issued: Issued) -> None:
    assert verify_qr_offline(issued.licences["expired"].qr_payload or "", bundle, now=_now()).outcome is Outcome.EXPIRED


def test_garbled_forged_and_link_only_qr(bundle: LoadedBundle, issued: Issued) -> None:
    qr = issued.licences["valid"].qr_payload or ""
    link, jws = qr.split("#")
    header, claims, signature = jws.split(".")
    cases = {
        "garbled": f"{link}#%%%garbage",
        "link_only": link,
        "altered_claims": f"{link}#{header}.{b64url(json.dumps({**json.loads(base64.urlsafe_b64decode(claims + '==')), 'exp': '2099-01-01'}).encode())}.{signature}",
        "wrong_signature": f"{link}#{header}.{claims}.{b64url(b'x' * 64)}",
        "unknown_kid": f"{link}#{b64url(json.dumps({'alg': 'ES256', 'kid': 'seal-nobody:v1'}).encode())}.{claims}.{signature}",
        "empty": "",
    }
    for name, text in cases.items():
        verdict = verify_qr_offline(text, bundle, now=_now())
        assert verdict.outcome is Outcome.INVALID, name
        assert verdict.failed and verdict.failed[-1].reason_zh, name


def test_payload_replayed_under_another_departments_name(runtime, authority: CertificateAuthority, bundle: LoadedBundle, issued: Issued) -> None:  # type: ignore[no-untyped-def]
    """A payload signed with department A's genuine seal but claiming to be issued by B."""
    now = _now()
    claims = QrClaims("OTHERDEPT", "BL-OTHERDEPT-2026-000001-A", "BL/1", now, None, now, b"\0" * 32)
    jws = sign_payloads(runtime.keystore, authority.qr_key(issued.department), [claims])[0]
    verdict = verify_qr_offline(qr_string("http://ecert.test", "A" * 24, jws), bundle, now=now)
    assert verdict.outcome is Outcome.INVALID and "issuer" in {c.name for c in verdict.failed}


def test_pdf_offline(bundle: LoadedBundle, issued: Issued) -> None:
    from tests.support import hostile

    good = verify_pdf_offline(issued.pdfs["valid"], bundle, now=_now())
    assert good.outcome is Outcome.VALID, [c.reason_en for c in good.failed]  # its signed record names its status-list slot
    assert good.licence and good.licence.number == issued.licences["valid"].number
    forged = verify_pdf_offline(hostile.forged(hostile.unsigned_licence(issued.licences["valid"]), issued.department), bundle, now=_now())
    assert forged.outcome is Outcome.INVALID


def test_a_stale_bundle_says_so(bundle: LoadedBundle, issued: Issued) -> None:
    later = bundle.next_update + dt.timedelta(days=3)
    verdict = verify_qr_offline(issued.licences["valid"].qr_payload or "", bundle, now=later)
    assert verdict.bundle_stale is True and "bundle_fresh" in {c.name for c in verdict.failed}
    assert "stale" in verdict.failed[0].reason_en


def test_rotation_then_compromise_online_and_offline(runtime, authority: CertificateAuthority, sealer: PadesSealer,  # type: ignore[no-untyped-def]
                                                     publisher: BundlePublisher, pdf_verifier: PdfVerifier) -> None:
    code = new_department(runtime, authority)
    [before] = issue_for(runtime, authority, sealer, code)
    with session_scope(runtime.engine) as session:
        authority.renew_seal(session, code, actor="test")
    [after] = issue_for(runtime, authority, sealer, code)
    with Session(runtime.engine) as session:
        rows = seals.list_seals(session, code)  # newest first
    new_row, old_row = rows[0], rows[1]
    assert before.qr_payload and after.qr_payload and before.qr_payload.split("#")[1].split(".")[0] != after.qr_payload.split("#")[1].split(".")[0]
    time.sleep(1.1)  # CRL times have one-second precision; a revocation in the sealing second counts against the seal
    with session_scope(runtime.engine) as session:  # the old seal retires normally; then the new one's key leaks
        authority.revoke(session, old_row.serial, "superseded", actor="test")
        authority.revoke(session, new_row.serial, "keyCompromise", actor="test",
                         invalidity_date=after.issued_at.replace(tzinfo=dt.timezone.utc) - dt.timedelta(minutes=1))
    loaded = load_bundle(publisher.build())
    now = _now()
    old_qr = verify_qr_offline(before.qr_payload, loaded, now=now)
    assert old_qr.outcome is Outcome.VALID, [c.reason_en for c in old_qr.failed]
    leaked = verify_qr_offline(after.qr_payload, loaded, now=now)
    assert leaked.outcome is Outcome.INVALID and "seal_at_signing" in {c.name for c in leaked.failed}
    # a thief with the leaked key back-dates iat to before the compromise: still refused offline
    backdated = QrClaims(code, after.number, "BL/1", now - dt.timedelta(days=30), None, now - dt.timedelta(days=30), b"\0" * 32)
    forged = sign_payloads(runtime.keystore, KeyRef(new_row.key_name, new_row.key_version), [backdated])[0]
    thief = verify_qr_offline(qr_string("http://ecert.test", "B" * 24, forged), loaded, now=now)
    assert thief.outcome is Outcome.INVALID and "seal_at_signing" in {c.name for c in thief.failed}
    old_pdf, new_pdf = pdf_of(runtime, before), pdf_of(runtime, after)
    old_offline = verify_pdf_offline(old_pdf, loaded, now=now)
    assert old_offline.outcome is Outcome.VALID, [c.reason_en for c in old_offline.failed]
    assert verify_pdf_offline(new_pdf, loaded, now=now).outcome is Outcome.INVALID
    online_old = pdf_verifier.verify(old_pdf)
    assert online_old.outcome is Outcome.VALID, [c.reason_en for c in online_old.failed]
    assert any(c.name == "seal_now" and "after this document was sealed" in c.reason_en for c in online_old.checks)
    online_new = pdf_verifier.verify(new_pdf)
    assert online_new.outcome is Outcome.INVALID and "seal_at_signing" in {c.name for c in online_new.failed}
