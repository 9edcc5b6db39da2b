"""The sealer over the real CA (ca.CertificateAuthority as seal directory, TSA and revocation source)."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import DocumentSecurityStore, validate_pdf_signature

from ca.service import CertificateAuthority
from ecert.container import Container
from ecert.db import session_scope
from ecert.runtime import Runtime
from signing.sealer import PadesSealer
from tests.signing.conftest import PdfSig, licence, qpdf_check


@pytest.fixture(scope="module")
def authority(runtime: Runtime, container: Container) -> CertificateAuthority:
    ca = container.ca
    ca.bootstrap()
    return ca


@pytest.fixture(scope="module")
def ca_pdfsig(authority: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory) -> PdfSig:
    nssdir = tmp_path_factory.mktemp("nss-ca")
    root = nssdir / "root.pem"
    root.write_bytes(authority.trust_anchors()[0].public_bytes(Encoding.PEM))
    subprocess.run(["certutil", "-N", "-d", f"sql:{nssdir}", "--empty-password"], check=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{nssdir}", "-n", "root", "-t", "CT,C,C", "-i", str(root)], check=True)
    return PdfSig(nssdir, no_ocsp=True)


def test_licences_sealed_with_the_cas_seal_tsa_crl_and_ocsp_pass_all_three(
    authority: CertificateAuthority, runtime: Runtime, ca_pdfsig: PdfSig, uid: str, tmp_path: Path
) -> None:
    code = f"S{uid.upper()}"
    with session_scope(authority.engine) as session:
        authority.add_department(session, code, f"签章测试局 {uid}", actor="test")
    sealer = PadesSealer(runtime.keystore, authority, authority, authority, clock=runtime.clock)
    pdfs = sealer.seal(code, [licence(n, department_code=code) for n in range(1, 6)])
    assert sealer._seal_for(code).signer.round_trips == 1  # noqa: SLF001
    root = asn1_x509.Certificate.load(authority.trust_anchors()[0].public_bytes(Encoding.DER))
    settings = {"trust_roots": [root], "allow_fetching": False, "revocation_mode": "require"}
    for n, pdf in enumerate(pdfs):
        reader = PdfFileReader(io.BytesIO(pdf))
        dss = DocumentSecurityStore.read_dss(reader)
        (signature,) = reader.embedded_regular_signatures
        status = validate_pdf_signature(
            signature, dss.as_validation_context(settings), ts_validation_context=dss.as_validation_context(settings)
        )
        assert status.bottom_line and status.trusted, status.pretty_print_details()
        assert status.timestamp_validity is not None and status.timestamp_validity.trusted
        path = tmp_path / f"{n}.pdf"
        path.write_bytes(pdf)
        report = ca_pdfsig.run(path)
        assert "Signature is Valid." in report and "Certificate is Trusted." in report, report
        assert qpdf_check(path).returncode == 0
    text = subprocess.run(["pdftotext", str(tmp_path / "0.pdf"), "-"], capture_output=True, text=True).stdout
    assert f"签章测试局 {uid} ({code})" in text  # the issuer as the seal certificate names it
