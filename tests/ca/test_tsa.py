"""The RFC 3161 time-stamping authority, checked with `openssl ts`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from asn1crypto import tsp

from ca.service import CertificateAuthority
from ca.tsa import POLICY_OID, RejectionResponse
from tests.ca.conftest import lint_findings, run, write_pem

QUERY = {"content-type": "application/timestamp-query"}


def test_openssl_verifies_a_timestamp_from_the_http_tsa(client, authority: CertificateAuthority, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "document.pdf"
    data.write_bytes(b"%PDF-1.7 pretend this is a sealed licence")
    query = tmp_path / "request.tsq"
    run("openssl", "ts", "-query", "-data", data, "-sha256", "-cert", "-out", query)
    response = client.post("/pki/tsa", content=query.read_bytes(), headers=QUERY)
    assert response.status_code == 200 and response.headers["content-type"] == "application/timestamp-reply"
    reply = tmp_path / "reply.tsr"
    reply.write_bytes(response.content)
    h = authority.hierarchy()
    root = write_pem(tmp_path / "root.pem", h.root.certificate)
    issuing = write_pem(tmp_path / "issuing.pem", h.issuing.certificate)
    result = run("openssl", "ts", "-verify", "-data", data, "-in", reply, "-CAfile", root, "-untrusted", issuing)
    assert "Verification: OK" in result.stdout
    text = run("openssl", "ts", "-reply", "-in", reply, "-text").stdout
    assert POLICY_OID in text and "Nonce" in text
    tsa_cert = write_pem(tmp_path / "tsa.pem", h.tsa.certificate)
    assert lint_findings(run(".venv/bin/lint_pkix_cert", "lint", "-s", "WARNING", tsa_cert, check=False).stdout) == []


def test_a_tampered_document_fails_openssl_ts_verify(client, authority: CertificateAuthority, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "doc"
    data.write_bytes(b"original")
    query = tmp_path / "q.tsq"
    run("openssl", "ts", "-query", "-data", data, "-sha384", "-cert", "-out", query)
    reply = tmp_path / "r.tsr"
    reply.write_bytes(client.post("/pki/tsa", content=query.read_bytes(), headers=QUERY).content)
    data.write_bytes(b"changed")
    h = authority.hierarchy()
    root = write_pem(tmp_path / "root.pem", h.root.certificate)
    issuing = write_pem(tmp_path / "issuing.pem", h.issuing.certificate)
    result = run("openssl", "ts", "-verify", "-data", data, "-in", reply, "-CAfile", root, "-untrusted", issuing, check=False)
    assert result.returncode != 0 and "Verification: FAILED" in result.stdout


def _request(**changes: object) -> bytes:
    fields = {"version": "v1", "message_imprint": {"hash_algorithm": {"algorithm": "sha256"},
                                                   "hashed_message": hashlib.sha256(b"x").digest()},
              "cert_req": True}
    fields.update(changes)
    return tsp.TimeStampReq(fields).dump()


def _appended(element: bytes) -> bytes:
    """A valid request with one more element at the end of its SEQUENCE (the parser keeps it)."""
    body = _request()[2:] + element
    assert len(body) < 128
    return b"\x30" + bytes([len(body)]) + body


@pytest.mark.parametrize(("body", "failure"), [
    (b"", "bad_data_format"),
    (_appended(b"\x07\x01A"), "bad_data_format"),  # an ObjectDescriptor, which asn1crypto cannot render
    (b"not asn.1", "bad_data_format"),
    (b"\x30\x82\xff\xff" + b"\x00" * 20_000, "bad_data_format"),
    (_request(message_imprint={"hash_algorithm": {"algorithm": "md5"}, "hashed_message": b"\x00" * 16}), "bad_alg"),
    (_request(message_imprint={"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"\x00" * 5}), "bad_alg"),
    (_request(req_policy="1.2.3.4"), "unaccepted_policy"),
    (_request(version="v2"), "bad_request"),
])
def test_bad_requests_get_a_rejection_not_an_error(client, authority: CertificateAuthority, body: bytes, failure: str) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/pki/tsa", content=body, headers=QUERY)
    assert response.status_code == 200
    status = RejectionResponse.load(response.content)["status"]
    assert status["status"].native == "rejection"
    assert failure in status["fail_info"].native


def test_openssl_reads_a_rejection(client, authority: CertificateAuthority, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    reply = tmp_path / "rejected.tsr"
    reply.write_bytes(client.post("/pki/tsa", content=_request(req_policy="1.2.3.4"), headers=QUERY).content)
    text = run("openssl", "ts", "-reply", "-in", reply, "-text").stdout
    assert "Status: Rejected" in text and "policy is not supported" in text


def test_the_in_process_timestamp_matches_the_imprint(authority: CertificateAuthority) -> None:
    digest = hashlib.sha256(b"signature value").digest()
    token = authority.timestamp(digest, "sha256", nonce=42)
    from asn1crypto import cms

    info = cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"].parsed
    assert info["message_imprint"]["hashed_message"].native == digest
    assert info["nonce"].native == 42 and info["policy"].native == POLICY_OID


def test_a_batch_of_timestamps_costs_one_vault_call_and_each_verifies(authority: CertificateAuthority, tmp_path: Path) -> None:
    from asn1crypto import cms

    digests = [hashlib.sha256(str(i).encode()).digest() for i in range(5)]
    tokens = authority.timestamp_batch(digests, "sha256")
    h = authority.hierarchy()
    root = write_pem(tmp_path / "root.pem", h.root.certificate)
    issuing = write_pem(tmp_path / "issuing.pem", h.issuing.certificate)
    for i, (digest, token) in enumerate(zip(digests, tokens)):
        info = cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"].parsed
        assert info["message_imprint"]["hashed_message"].native == digest
        path = tmp_path / f"t{i}.der"
        path.write_bytes(token)
        result = run("openssl", "ts", "-verify", "-digest", digest.hex(), "-token_in", "-in", path, "-CAfile", root,
                     "-untrusted", issuing)
        assert "Verification: OK" in result.stdout
