"""The CA hierarchy: created once, keys in Vault, certificates that independent tools accept."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from ca.service import CertificateAuthority
from keys import KeyExportForbidden, remote_private_key
from tests.ca.conftest import lint_findings, run, write_pem


def test_bootstrap_is_idempotent(authority: CertificateAuthority) -> None:
    first = authority.bootstrap()
    second = authority.bootstrap()
    assert first.root.certificate == second.root.certificate
    assert first.issuing.certificate == second.issuing.certificate
    assert first.ocsp.certificate == second.ocsp.certificate


def test_root_and_issuing_ca_profiles(authority: CertificateAuthority) -> None:
    h = authority.hierarchy()
    root, issuing = h.root.certificate, h.issuing.certificate
    assert root.subject == root.issuer
    root.verify_directly_issued_by(root)
    issuing.verify_directly_issued_by(root)
    bc = issuing.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = issuing.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign and not ku.digital_signature
    assert h.root.key.name == "ca-root-1" and h.issuing.key.name == "ca-issuing-1"
    assert root.public_key().curve.name == "secp384r1"  # type: ignore[union-attr]


def test_ca_keys_never_leave_vault(authority: CertificateAuthority) -> None:
    key = remote_private_key(authority.keystore, authority.hierarchy().root.key)
    with pytest.raises(KeyExportForbidden):
        key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    assert authority.keystore.key_info("ca-root-1").exportable is False


def test_delegates_have_their_extended_key_usages(authority: CertificateAuthority) -> None:
    h = authority.hierarchy()
    ocsp_eku = h.ocsp.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(ocsp_eku) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    h.ocsp.certificate.extensions.get_extension_for_class(x509.OCSPNoCheck)
    tsa_eku = h.tsa.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert tsa_eku.critical and list(tsa_eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]


def test_openssl_verifies_every_delegate_against_the_root(authority: CertificateAuthority, tmp_path: Path) -> None:
    h = authority.hierarchy()
    root = write_pem(tmp_path / "root.pem", h.root.certificate)
    issuing = write_pem(tmp_path / "issuing.pem", h.issuing.certificate)
    for name, cert in (("ocsp", h.ocsp.certificate), ("tsa", h.tsa.certificate)):
        leaf = write_pem(tmp_path / f"{name}.pem", cert)
        result = run("openssl", "verify", "-CAfile", root, "-untrusted", issuing, "-purpose", "any", leaf)
        assert f"{leaf}: OK" in result.stdout


@pytest.mark.parametrize("which", ["root", "issuing", "ocsp", "tsa"])
def test_pkilint_finds_no_errors(authority: CertificateAuthority, tmp_path: Path, which: str) -> None:
    h = authority.hierarchy()
    cert = {"root": h.root.certificate, "issuing": h.issuing.certificate, "ocsp": h.ocsp.certificate,
            "tsa": h.tsa.certificate}[which]
    path = write_pem(tmp_path / f"{which}.pem", cert)
    result = run(".venv/bin/lint_pkix_cert", "lint", "-s", "WARNING", path, check=False)
    assert lint_findings(result.stdout) == [], result.stdout


def test_ca_certificates_are_published(client, authority: CertificateAuthority) -> None:  # type: ignore[no-untyped-def]
    h = authority.hierarchy()
    der = client.get("/pki/ca/root-1.crt")
    assert der.status_code == 200 and der.headers["content-type"] == "application/pkix-cert"
    assert x509.load_der_x509_certificate(der.content) == h.root.certificate
    chain = x509.load_pem_x509_certificates(client.get("/pki/chain.pem").content)
    assert chain == [h.issuing.certificate, h.root.certificate]
    missing = client.get("/pki/ca/nope.crt")
    assert missing.status_code == 404 and missing.json()["type"].endswith("/unknown-authority")
