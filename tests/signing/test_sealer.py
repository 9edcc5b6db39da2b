"""Sealed licences pass pyHanko, poppler's pdfsig and qpdf; altered ones fail; batches are cheap."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

from certificates.sealing import Sealer
from keys import TransitKeyStore
from signing.errors import SealMisconfigured, SealUnusable
from signing.material import SealCredential
from signing.sealer import SEAL_FIELD, PadesSealer
from tests.support.pdf_checks import check_all, pyhanko_statuses
from tests.signing.conftest import DEPARTMENT, DEPARTMENT_NAME, PdfSig, licence
from tests.support.pki import SingleTsa, TestPki


@pytest.fixture(scope="module")
def batch(sealer: PadesSealer, pki: TestPki) -> list[bytes]:
    signer_trips = _seal_state(sealer).signer.round_trips
    tsa_calls = pki.tsa.calls
    pdfs = sealer.seal(DEPARTMENT, [licence(n) for n in range(1, 21)])
    # one sign_batch for the 20 seals, one timestamp_batch for the 20 tokens
    assert _seal_state(sealer).signer.round_trips - signer_trips == 1
    assert pki.tsa.calls - tsa_calls <= 2  # (+1 only if this is the sealer's first use: its size probe)
    return pdfs


def _seal_state(sealer: PadesSealer):  # type: ignore[no-untyped-def]
    return sealer._seal_for(DEPARTMENT)  # noqa: SLF001 - the per-seal signer counts its Vault round trips


def test_pades_sealer_is_a_sealer(sealer: PadesSealer) -> None:
    assert isinstance(sealer, Sealer)


def test_a_batch_of_twenty_costs_one_vault_round_trip_and_every_pdf_passes_all_three_checkers(
    batch: list[bytes], pki: TestPki, pdfsig: PdfSig, tmp_path: Path
) -> None:
    assert len(batch) == 20 and len(set(batch)) == 20
    for n, pdf in enumerate(batch):
        verdicts = check_all(pdf, pki, pdfsig, tmp_path / f"{n}.pdf")
        assert verdicts.pyhanko_ok, [s.pretty_print_details() for s in verdicts.pyhanko]
        assert verdicts.pdfsig_ok, verdicts.pdfsig
        assert verdicts.qpdf_ok, verdicts.qpdf.stdout + verdicts.qpdf.stderr


def test_the_order_of_the_batch_is_kept(batch: list[bytes]) -> None:
    for n, pdf in enumerate(batch, start=1):
        title = PdfFileReader(io.BytesIO(pdf)).trailer_view["/Info"]["/Title"]
        assert title == f"营业执照 {licence(n).number}"


def test_pades_b_lt_signature_with_timestamp_visible_seal_and_dss(batch: list[bytes], pki: TestPki) -> None:
    reader = PdfFileReader(io.BytesIO(batch[0]))
    (signature,) = reader.embedded_regular_signatures
    assert signature.field_name == SEAL_FIELD
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    assert signature.sig_object_type == "/Sig"
    signed_data = signature.signed_data
    embedded = {c.chosen.subject.human_friendly for c in signed_data["certificates"]}
    assert any(DEPARTMENT_NAME in s for s in embedded)
    assert any("Issuing CA" in s for s in embedded) and any("Root CA" in s for s in embedded)
    assert signature.signer_info["unsigned_attrs"][0]["type"].native == "signature_time_stamp_token"
    # visible stamp with an appearance stream on the last page
    widget = signature.sig_field["/Kids"][0] if "/Kids" in signature.sig_field else signature.sig_field
    x0, y0, x1, y1 = (float(v) for v in widget["/Rect"])
    assert x1 - x0 > 100 and y1 - y0 > 50
    assert DEPARTMENT_NAME.encode("utf-16-be").hex().encode() in _appearance_text(widget["/AP"]["/N"]).lower()
    # B-LT: the DSS holds CRLs of both CAs and OCSP responses for the seal and the TSA
    dss = reader.root["/DSS"]
    assert len(dss["/CRLs"]) == 2 and len(dss["/OCSPs"]) == 2 and len(dss["/Certs"]) >= 4
    (status,) = pyhanko_statuses(batch[0], pki)
    assert status.docmdp_ok and status.timestamp_validity is not None


def _appearance_text(stream: generic.StreamObject) -> bytes:
    """The content of an appearance stream and the forms it draws (the stamp text is UCS-2 hex)."""
    data = [stream.data]
    resources = stream.get("/Resources")
    if resources is not None and "/XObject" in resources:
        data += [_appearance_text(x.get_object()) for x in resources["/XObject"].values()]
    return b"".join(data)


def _replace_same_length(pdf: bytes, old: bytes, new: bytes) -> bytes:
    assert len(old) == len(new) and old in pdf
    return pdf.replace(old, new, 1)


def test_a_byte_changed_inside_the_signed_range_fails_pyhanko_and_pdfsig(
    batch: list[bytes], pki: TestPki, pdfsig: PdfSig, tmp_path: Path
) -> None:
    # Same-length change of the document title: structure intact, so qpdf (a syntax checker) is
    # satisfied, but both signature checkers see the digest no longer matches.
    tampered = _replace_same_length(batch[1], b"/Producer", b"/Produces")
    verdicts = check_all(tampered, pki, pdfsig, tmp_path / "t.pdf")
    assert not verdicts.pyhanko_ok
    assert all(not s.intact for s in verdicts.pyhanko)
    assert "Signature is Valid." not in verdicts.pdfsig


def test_an_insertion_inside_the_signed_range_fails_all_three(
    batch: list[bytes], pki: TestPki, pdfsig: PdfSig, tmp_path: Path
) -> None:
    at = batch[2].index(b"/Producer")
    tampered = batch[2][:at] + b"/Forged (yes) " + batch[2][at:]
    verdicts = check_all(tampered, pki, pdfsig, tmp_path / "t.pdf")
    assert not verdicts.pyhanko_ok
    assert "Signature is Valid." not in verdicts.pdfsig
    assert not verdicts.qpdf_ok, verdicts.qpdf.stdout


def test_a_page_changed_by_a_later_revision_is_not_accepted(
    batch: list[bytes], pki: TestPki, pdfsig: PdfSig, tmp_path: Path
) -> None:
    # The cryptographic signature still holds over its byte range, but the seal certified the
    # document with "no changes"; pyHanko's difference analysis catches the new content.
    writer = IncrementalPdfFileWriter(io.BytesIO(batch[3]))
    page_ref, _ = writer.find_page_for_modification(0)
    page = page_ref.get_object()
    stream = generic.StreamObject(stream_data=b"BT /F1 30 Tf 100 400 Td (FORGED) Tj ET")
    page["/Contents"] = writer.add_object(stream)
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    verdicts = check_all(out.getvalue(), pki, pdfsig, tmp_path / "t.pdf")
    assert not verdicts.pyhanko_ok
    (status,) = verdicts.pyhanko
    assert status.intact and not status.bottom_line and not status.docmdp_ok
    assert "Not total document signed" in verdicts.pdfsig


def test_a_tsa_without_batching_still_works_one_call_per_token(keystore: TransitKeyStore, pki: TestPki, pdfsig: PdfSig, tmp_path: Path) -> None:
    sealer = PadesSealer(keystore, pki, SingleTsa(pki.tsa), pki.revocation)
    sealer.seal(DEPARTMENT, [licence(100)])  # warm: the size probe asks for one token
    calls = pki.tsa.calls
    pdfs = sealer.seal(DEPARTMENT, [licence(n) for n in range(101, 104)])
    assert pki.tsa.calls - calls == 3
    assert check_all(pdfs[0], pki, pdfsig, tmp_path / "a.pdf").all_pass


def test_without_tsa_and_revocation_the_seal_is_pades_b_b(keystore: TransitKeyStore, pki: TestPki, pdfsig: PdfSig, tmp_path: Path) -> None:
    (pdf,) = PadesSealer(keystore, pki, None, None).seal(DEPARTMENT, [licence(200)])
    verdicts = check_all(pdf, pki, pdfsig, tmp_path / "bb.pdf")
    assert verdicts.pdfsig_ok and verdicts.qpdf_ok
    reader = PdfFileReader(io.BytesIO(pdf))
    assert "/DSS" not in reader.root
    assert "unsigned_attrs" not in reader.embedded_regular_signatures[0].signer_info.native or not reader.embedded_regular_signatures[0].signer_info["unsigned_attrs"].native


def test_a_revoked_seal_cannot_seal(keystore: TransitKeyStore, pki: TestPki) -> None:
    credential = pki.add_department("REV01", "已撤销测试局")
    pki.revoke(credential.certificate)
    with pytest.raises(SealUnusable, match="revoked"):
        PadesSealer(keystore, pki, pki.tsa, pki.revocation).seal("REV01", [licence(300, department_code="REV01")])


def test_a_certificate_that_does_not_match_the_vault_key_is_refused(keystore: TransitKeyStore, pki: TestPki) -> None:
    real = pki.add_department("MIX01", "错配测试局")
    other = pki.add_department("MIX02", "错配测试局二")
    pki.seals["MIX01"] = SealCredential("MIX01", real.key, other.certificate, real.chain)
    with pytest.raises(SealMisconfigured, match="does not match"):
        PadesSealer(keystore, pki, pki.tsa, pki.revocation).seal("MIX01", [licence(301, department_code="MIX01")])


def test_an_empty_batch_costs_nothing(sealer: PadesSealer) -> None:
    assert sealer.seal(DEPARTMENT, []) == []
