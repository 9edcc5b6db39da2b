"""Every sealed PDF carries ecert's signed licence record and a title ending with its number, in the sealed revision."""

from __future__ import annotations

import io
from pathlib import Path

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

from certificates.sealing import RECORD_KEY, SealedRecord
from signing.sealer import PadesSealer
from tests.support.pdf_checks import check_all
from tests.signing.conftest import DEPARTMENT, PdfSig, licence
from tests.support.pki import TestPki
from tests.signing.test_uploads import own_pdf

RECORD = SealedRecord("BL-ZJSJ01-2026-000042-7", DEPARTMENT, "http://ecert.test/v/" + "A" * 24 + "#header.claims.signature")


def _with(change) -> bytes:  # type: ignore[no-untyped-def]
    writer = IncrementalPdfFileWriter(io.BytesIO(own_pdf(1)))
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _signed_info(pdf: bytes) -> dict[str, str]:
    reader = PdfFileReader(io.BytesIO(pdf))
    (signature,) = reader.embedded_regular_signatures
    signed = reader.get_historical_resolver(signature.signed_revision)
    info = signed(signed.trailer_view.raw_get("/Info"))
    return {str(k): str(v) for k, v in info.items()}


def test_an_upload_carries_its_record_and_a_title_with_its_number_and_passes_all_three(
    sealer: PadesSealer, pki: TestPki, pdfsig: PdfSig, tmp_path: Path
) -> None:
    def titled(writer: IncrementalPdfFileWriter) -> None:
        writer.document_meta.title = "Department notice BL-OTHER-2026-000001-X"

    sealed = sealer.seal_uploaded(DEPARTMENT, _with(titled), RECORD)
    info = _signed_info(sealed)
    assert info[RECORD_KEY] == RECORD.qr
    assert info["/Title"] == f"Department notice BL-OTHER-2026-000001-X {RECORD.number}"  # ends with the number ecert assigned
    assert check_all(sealed, pki, pdfsig, tmp_path / "record.pdf").all_pass


def test_a_rendered_licence_carries_its_record_and_passes_all_three(
    sealer: PadesSealer, pki: TestPki, pdfsig: PdfSig, tmp_path: Path
) -> None:
    document = licence(77)
    (sealed,) = sealer.seal(DEPARTMENT, [document])
    info = _signed_info(sealed)
    assert info[RECORD_KEY] == document.qr and info["/Title"].endswith(f" {document.number}")
    assert check_all(sealed, pki, pdfsig, tmp_path / "rendered.pdf").all_pass
