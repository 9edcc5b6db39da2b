"""The three independent checks every sealed PDF must pass (and a tampered one must fail)."""

from __future__ import annotations

import io
import subprocess
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import DocumentSecurityStore, validate_pdf_signature
from pyhanko.sign.validation.status import PdfSignatureStatus

from tests.support.pki import TestPki


@dataclass(frozen=True)
class Verdicts:
    pyhanko: list[PdfSignatureStatus]
    pdfsig: str
    qpdf: subprocess.CompletedProcess[str]

    @property
    def all_pass(self) -> bool:
        return self.pyhanko_ok and self.pdfsig_ok and self.qpdf_ok

    @property
    def pyhanko_ok(self) -> bool:
        return bool(self.pyhanko) and all(
            s.bottom_line and s.intact and s.valid and s.trusted and s.timestamp_validity is not None
            and s.timestamp_validity.intact and s.timestamp_validity.valid and s.timestamp_validity.trusted
            for s in self.pyhanko
        )

    @property
    def pdfsig_ok(self) -> bool:
        count = len(self.pyhanko) or 1
        return (
            self.pdfsig.count("Signature is Valid.") == count
            and self.pdfsig.count("Certificate is Trusted.") == count
        )

    @property
    def qpdf_ok(self) -> bool:
        return self.qpdf.returncode == 0 and "No syntax or stream encoding errors" in self.qpdf.stdout


def pyhanko_statuses(pdf: bytes, pki: TestPki) -> list[PdfSignatureStatus]:
    """Validate offline from what the PDF carries (DSS): trusted root given, no fetching, revocation required."""
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    root = asn1_x509.Certificate.load(pki.root.certificate.public_bytes(Encoding.DER))
    dss = DocumentSecurityStore.read_dss(reader)
    settings = {"trust_roots": [root], "allow_fetching": False, "revocation_mode": "require"}
    statuses = []
    for signature in reader.embedded_regular_signatures:
        context = dss.as_validation_context(settings)
        ts_context = dss.as_validation_context(settings)
        statuses.append(validate_pdf_signature(signature, context, ts_validation_context=ts_context))
    return statuses


def check_all(pdf: bytes, pki: TestPki, pdfsig, path: Path) -> Verdicts:  # type: ignore[no-untyped-def]
    path.write_bytes(pdf)
    try:
        statuses = pyhanko_statuses(pdf, pki)
    except Exception:  # noqa: BLE001 - a tampered file may not even parse; that is a failure verdict
        statuses = []
    qpdf = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True, timeout=60)
    return Verdicts(statuses, pdfsig.run(path), qpdf)
