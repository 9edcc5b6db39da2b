"""Revocation: CRLs that openssl and pkilint accept, and an OCSP responder openssl talks to over HTTP."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from ca.errors import AlreadyRevoked, InvalidRevocationReason, UnknownCertificate
from ca.service import CertificateAuthority
from ecert.db import session_scope
from tests.ca.conftest import lint_findings, run, write_pem


def _revoke(authority: CertificateAuthority, cert: x509.Certificate, reason: str = "keyCompromise") -> None:
    with session_scope(authority.engine) as session:
        authority.revoke(session, format(cert.serial_number, "x"), reason, actor="test")


def _crl(client, name: str = "issuing-1") -> x509.CertificateRevocationList:  # type: ignore[no-untyped-def]
    response = client.get(f"/pki/crl/{name}.crl")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pkix-crl"
    return x509.load_der_x509_crl(response.content)


def test_a_revocation_is_in_the_next_crl_with_its_reason(client, authority: CertificateAuthority, department: str,  # type: ignore[no-untyped-def]
                                                         tmp_path: Path) -> None:
    before = _crl(client)
    again = _crl(client)
    assert again.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == \
        before.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number  # fresh: not rebuilt
    seal = authority.current_seal(department).certificate
    _revoke(authority, seal, "affiliationChanged")
    after = _crl(client)
    number = after.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number > before.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    entry = after.get_revoked_certificate_by_serial_number(seal.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.affiliation_changed
    assert after.is_signature_valid(authority.hierarchy().issuing.certificate.public_key())  # type: ignore[arg-type]
    assert after.next_update_utc is not None and after.next_update_utc > after.last_update_utc

    crl_path = tmp_path / "issuing.crl"
    crl_path.write_bytes(after.public_bytes(serialization.Encoding.DER))
    issuing = write_pem(tmp_path / "issuing.pem", authority.hierarchy().issuing.certificate)
    text = run("openssl", "crl", "-inform", "DER", "-in", crl_path, "-noout", "-text", "-CAfile", issuing).stdout
    serial = format(seal.serial_number, "X")
    assert f"Serial Number: {serial.zfill(len(serial) + len(serial) % 2)}" in text
    assert "Affiliation Changed" in text
    verify = run("openssl", "crl", "-inform", "DER", "-in", crl_path, "-noout", "-CAfile", issuing)
    assert "verify OK" in verify.stdout + verify.stderr
    result = run(".venv/bin/lint_crl", "lint", "-t", "CRL", "-p", "PKIX", "-s", "WARNING", crl_path, check=False)
    assert lint_findings(result.stdout) == [], result.stdout


def test_root_crl_is_published_and_lints_clean(client, authority: CertificateAuthority, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    crl = _crl(client, "root-1")
    assert crl.issuer == authority.hierarchy().root.certificate.subject
    path = tmp_path / "root.crl"
    path.write_bytes(crl.public_bytes(serialization.Encoding.DER))
    result = run(".venv/bin/lint_crl", "lint", "-t", "ARL", "-p", "PKIX", "-s", "WARNING", path, check=False)
    assert lint_findings(result.stdout) == [], result.stdout


def test_revoking_twice_or_unknown_or_with_a_bad_reason(authority: CertificateAuthority, department: str) -> None:
    seal = authority.current_seal(department).certificate
    _revoke(authority, seal)
    with pytest.raises(AlreadyRevoked):
        _revoke(authority, seal)
    with pytest.raises(UnknownCertificate), session_scope(authority.engine) as session:
        authority.revoke(session, "abcdef0123", "keyCompromise", actor="test")
    with pytest.raises(InvalidRevocationReason), session_scope(authority.engine) as session:
        authority.revoke(session, format(seal.serial_number, "x"), "removeFromCRL", actor="test")
    with pytest.raises(UnknownCertificate), session_scope(authority.engine) as session:  # another department's
        authority.revoke(session, format(seal.serial_number, "x"), "keyCompromise", actor="test", department="OTHER")


def _openssl_ocsp(url: str, tmp_path: Path, authority: CertificateAuthority, cert: x509.Certificate, *extra: str) -> str:
    h = authority.hierarchy()
    issuing = write_pem(tmp_path / "issuing.pem", h.issuing.certificate)
    root = write_pem(tmp_path / "root.pem", h.root.certificate)
    chain = write_pem(tmp_path / "chain.pem", h.issuing.certificate, h.root.certificate)
    leaf = write_pem(tmp_path / "leaf.pem", cert)
    result = run("openssl", "ocsp", "-issuer", issuing, "-cert", leaf, "-url", f"{url}/pki/ocsp", "-CAfile", root,
                 "-verify_other", chain, *extra)
    return result.stdout + result.stderr


def test_openssl_ocsp_reports_good_then_revoked(live_url: str, authority: CertificateAuthority, department: str,
                                                tmp_path: Path) -> None:
    seal = authority.current_seal(department).certificate
    out = _openssl_ocsp(live_url, tmp_path, authority, seal)
    assert "Response verify OK" in out and ": good" in out
    _revoke(authority, seal, "keyCompromise")
    out = _openssl_ocsp(live_url, tmp_path, authority, seal)
    assert "Response verify OK" in out and ": revoked" in out and "Reason: keyCompromise" in out


def test_ocsp_answers_bad_requests_with_the_protocols_own_errors(client, authority: CertificateAuthority,  # type: ignore[no-untyped-def]
                                                                 department: str, tmp_path: Path) -> None:
    def status(response: httpx.Response) -> ocsp.OCSPResponseStatus:
        assert response.status_code == 200 and response.headers["content-type"] == "application/ocsp-response"
        return ocsp.load_der_ocsp_response(response.content).response_status

    post = {"headers": {"content-type": "application/ocsp-request"}}
    assert status(client.post("/pki/ocsp", content=b"garbage", **post)) == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert status(client.post("/pki/ocsp", content=b"", **post)) == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert status(client.post("/pki/ocsp", content=b"\x30" * 100_000, **post)) == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert status(client.get("/pki/ocsp/!!notbase64!!")) == ocsp.OCSPResponseStatus.MALFORMED_REQUEST

    seal = authority.current_seal(department).certificate
    stranger = authority.hierarchy().root.certificate  # a CA our delegated responder does not answer for
    foreign = ocsp.OCSPRequestBuilder().add_certificate(seal, stranger, hashes.SHA256()).build()
    assert status(client.post("/pki/ocsp", content=foreign.public_bytes(serialization.Encoding.DER), **post)) == \
        ocsp.OCSPResponseStatus.UNAUTHORIZED

    issuing = authority.hierarchy().issuing
    unknown = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        issuing.name_hash("sha1"), issuing.key_hash("sha1"), 0x1234567, hashes.SHA1()).build()
    response = ocsp.load_der_ocsp_response(
        client.post("/pki/ocsp", content=unknown.public_bytes(serialization.Encoding.DER), **post).content)
    assert response.certificate_status == ocsp.OCSPCertStatus.UNKNOWN

    # GET with the base64 request in the path (RFC 6960 A.1), SHA-1 CertID as most clients send
    request = ocsp.OCSPRequestBuilder().add_certificate(seal, issuing.certificate, hashes.SHA1()) \
        .add_extension(x509.OCSPNonce(b"0123456789abcdef"), critical=False).build()
    encoded = base64.b64encode(request.public_bytes(serialization.Encoding.DER)).decode()
    response = ocsp.load_der_ocsp_response(client.get(f"/pki/ocsp/{encoded}").content)
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"0123456789abcdef"
    assert response.certificates == [authority.hierarchy().ocsp.certificate]
    response_path = tmp_path / "ocsp.der"
    response_path.write_bytes(response.public_bytes(serialization.Encoding.DER))
    result = run(".venv/bin/lint_ocsp_response", "lint", "-s", "WARNING", response_path, check=False)
    assert lint_findings(result.stdout) == [], result.stdout
