"""Departments and their seal certificates: RFC 5280 / RFC 9336 profile, renewal with overlap, CSRs."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from ca.errors import DuplicateDepartment, InvalidCsr, UnknownDepartment
from ca.profiles import DOCUMENT_SIGNING
from ca.seals import list_seals
from ca.service import CertificateAuthority, NoSealCertificate
from ecert.db import session_scope
from ecert.errors import InvalidInput
from tests.ca.conftest import lint_findings, run, write_pem


def test_a_new_department_gets_a_seal_certificate(authority: CertificateAuthority, department: str) -> None:
    seal = authority.current_seal(department)
    cert = seal.certificate
    assert seal.key.name == f"seal-{department.lower()}"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)[0].value == department
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == authority.config.organization
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.content_commitment and not ku.value.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert DOCUMENT_SIGNING in eku and ExtendedKeyUsageOID.EMAIL_PROTECTION in eku
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name[0].value == "http://ecert.test/pki/crl/issuing-1.crl"
    aia = {d.access_method: d.access_location.value for d in cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value}
    assert aia[AuthorityInformationAccessOID.OCSP] == "http://ecert.test/pki/ocsp"
    assert aia[AuthorityInformationAccessOID.CA_ISSUERS] == "http://ecert.test/pki/ca/issuing-1.crt"
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(authority.keystore.public_key(seal.key))  # type: ignore[arg-type]
    assert seal.chain == (authority.hierarchy().issuing.certificate, authority.hierarchy().root.certificate)


def test_openssl_and_pkilint_accept_the_seal(authority: CertificateAuthority, department: str, tmp_path: Path) -> None:
    h = authority.hierarchy()
    seal = write_pem(tmp_path / "seal.pem", authority.current_seal(department).certificate)
    root = write_pem(tmp_path / "root.pem", h.root.certificate)
    issuing = write_pem(tmp_path / "issuing.pem", h.issuing.certificate)
    assert f"{seal}: OK" in run("openssl", "verify", "-CAfile", root, "-untrusted", issuing, seal).stdout
    assert f"{seal}: OK" in run("openssl", "verify", "-CAfile", root, "-untrusted", issuing, "-purpose", "smimesign", seal).stdout
    assert lint_findings(run(".venv/bin/lint_pkix_cert", "lint", "-s", "WARNING", seal, check=False).stdout) == []
    chain = write_pem(tmp_path / "chain.pem", h.issuing.certificate, authority.current_seal(department).certificate)
    result = run(".venv/bin/lint_pkix_signer_signee_cert_chain", "lint", "-s", "WARNING", issuing, seal, check=False)
    assert lint_findings(result.stdout) == [], result.stdout
    assert chain.exists()


def test_department_codes_are_unique_and_well_formed(authority: CertificateAuthority, department: str) -> None:
    with pytest.raises(DuplicateDepartment), session_scope(authority.engine) as session:
        authority.add_department(session, department, "again", actor="test")
    for bad in ("x", "lower", "1ABC", "TOO-LONG-CODE-XYZ", ""):
        with pytest.raises(InvalidInput), session_scope(authority.engine) as session:
            authority.add_department(session, bad, "name", actor="test")
    with pytest.raises(InvalidInput), session_scope(authority.engine) as session:
        authority.add_department(session, "LONGNAME", "局" * 22, actor="test")
    with pytest.raises(UnknownDepartment), session_scope(authority.engine) as session:
        authority.renew_seal(session, "NOSUCHDEPT", actor="test")


def test_renewal_rotates_the_key_and_keeps_the_old_certificate_valid(authority: CertificateAuthority, department: str) -> None:
    old = authority.current_seal(department)
    with session_scope(authority.engine) as session:
        authority.renew_seal(session, department, actor="test")
    new = authority.current_seal(department)
    assert new.key.name == old.key.name and new.key.version == old.key.version + 1
    assert new.certificate.serial_number != old.certificate.serial_number
    with session_scope(authority.engine) as session:
        rows = list_seals(session, department)
        assert len(rows) == 2 and all(r.revoked_at is None for r in rows)
    # the old key version still verifies what it signed
    digest = hashes.Hash(hashes.SHA256())
    digest.update(b"sealed before the renewal")
    signature = authority.keystore.sign(old.key, digest.finalize())
    old.certificate.public_key().verify(signature.value, b"sealed before the renewal", ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg,union-attr]


def test_revoking_the_current_seal_falls_back_or_stops_sealing(authority: CertificateAuthority, department: str) -> None:
    first = authority.current_seal(department)
    with session_scope(authority.engine) as session:
        authority.revoke(session, format(first.certificate.serial_number, "x"), "keyCompromise", actor="test")
    with pytest.raises(NoSealCertificate):
        authority.current_seal(department)
    with session_scope(authority.engine) as session:
        authority.renew_seal(session, department, actor="test")
    assert authority.current_seal(department).key.version == first.key.version + 1


def _csr(key: ec.EllipticCurvePrivateKey, *, extensions: bool = False) -> x509.CertificateSigningRequestBuilder:
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "anything")]))
    if extensions:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return builder


def test_a_department_key_held_elsewhere_is_certified_from_its_csr(authority: CertificateAuthority, department: str) -> None:
    from cryptography.hazmat.primitives import serialization

    own_key = ec.generate_private_key(ec.SECP256R1())  # the department's own HSM in real life
    csr = _csr(own_key).sign(own_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    with session_scope(authority.engine) as session:
        row = authority.seal_from_csr(session, department, csr, actor="test")
    cert = x509.load_der_x509_certificate(row.certificate_der)
    assert cert.public_key() == own_key.public_key()
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)[0].value == department  # ours, not the CSR's
    # the Vault-held seal stays the one ecert seals with
    assert authority.current_seal(department).key.name == f"seal-{department.lower()}"


def test_bad_csrs_are_refused(authority: CertificateAuthority, department: str) -> None:
    from cryptography.hazmat.primitives import serialization

    key = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    good = _csr(key).sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    tampered = bytearray(good)
    tampered[-5] ^= 0x01  # breaks the signature
    with_ca = _csr(key, extensions=True).sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    weak = ec.generate_private_key(ec.SECP521R1())
    weak_csr = _csr(weak).sign(weak, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    assert other
    for bad in (bytes(tampered), with_ca, b"not a csr", b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
                b"0" * 20000):
        with pytest.raises(InvalidCsr), session_scope(authority.engine) as session:
            authority.seal_from_csr(session, department, bad, actor="test")
    with pytest.raises(InvalidInput), session_scope(authority.engine) as session:  # P-521 is not in the profile
        authority.seal_from_csr(session, department, weak_csr, actor="test")
