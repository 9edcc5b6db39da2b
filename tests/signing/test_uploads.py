"""A department's own PDF: sealed like a licence when sound, refused with InvalidPdf otherwise."""

from __future__ import annotations

import datetime as dt
import io
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko_certvalidator.registry import SimpleCertificateStore
from reportlab.lib.pagesizes import landscape, letter
from reportlab.pdfgen.canvas import Canvas

from keys import TransitKeyStore
from signing.errors import InvalidPdf
from signing.sealer import SEAL_FIELD, PadesSealer
from signing.uploads import UploadLimits, check_upload
from tests.support.pdf_checks import check_all, pyhanko_statuses
from tests.signing.conftest import DEPARTMENT, PdfSig, licence
from tests.support.pki import TestPki


def own_pdf(pages: int = 2, *, compress: int = 1, **canvas: object) -> bytes:
    out = io.BytesIO()
    c = Canvas(out, pagesize=landscape(letter), invariant=1, pageCompression=compress, **canvas)  # type: ignore[arg-type]
    for n in range(pages):
        c.setFont("Helvetica", 24)
        c.drawString(72, 400, f"Department notice, page {n + 1}")
        c.showPage()
    c.save()
    return out.getvalue()


def shifted_xref(pdf: bytes) -> bytes:
    """The same file with every xref offset off by 7: a broken cross-reference table."""
    head, tail = pdf.split(b"\nxref\n", 1)
    return head + b"\nxref\n" + re.sub(rb"(?m)^(\d{10}) (\d{5}) n", lambda m: b"%010d %s n" % (int(m[1]) + 7, m[2]), tail)


def test_a_sound_uploaded_pdf_is_sealed_and_passes_all_three(
    sealer: PadesSealer, pki: TestPki, pdfsig: PdfSig, tmp_path: Path
) -> None:
    sealed = sealer.seal_uploaded(DEPARTMENT, own_pdf(3))
    assert check_all(sealed, pki, pdfsig, tmp_path / "own.pdf").all_pass
    reader = PdfFileReader(io.BytesIO(sealed))
    (signature,) = reader.embedded_regular_signatures
    widget = signature.sig_field
    page_width = float(reader.root["/Pages"]["/Kids"][2]["/MediaBox"][2])
    assert 0 < float(widget["/Rect"][0]) < float(widget["/Rect"][2]) <= page_width  # on the landscape page


def test_a_pdf_with_object_and_xref_streams_is_sealed(
    sealer: PadesSealer, pki: TestPki, pdfsig: PdfSig, tmp_path: Path
) -> None:
    """Most PDFs in the wild (PDF 1.5+) keep objects and the cross-reference in compressed streams."""
    plain, packed = tmp_path / "plain.pdf", tmp_path / "packed.pdf"
    plain.write_bytes(own_pdf(2))
    subprocess.run(["qpdf", "--object-streams=generate", str(plain), str(packed)], check=True)
    assert b"/ObjStm" in packed.read_bytes()
    sealed = sealer.seal_uploaded(DEPARTMENT, packed.read_bytes())
    assert check_all(sealed, pki, pdfsig, tmp_path / "sealed.pdf").all_pass


def approval_signed(pdf: bytes) -> bytes:
    """``pdf`` with an approval signature by some outside party (a throwaway local key, self-signed)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Outside party")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    signer = signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER)),
        signing_key=asn1_keys.PrivateKeyInfo.load(key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())),
        cert_registry=SimpleCertificateStore(),
    )
    out = signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(pdf)), signers.PdfSignatureMetadata(field_name="approval"), signer=signer
    )
    return out.getvalue()  # type: ignore[no-any-return]


def test_an_upload_with_an_outside_approval_signature_gets_our_seal_beside_it(
    sealer: PadesSealer, pki: TestPki, pdfsig: PdfSig, tmp_path: Path
) -> None:
    from tests.signing.test_record import RECORD

    sealed = sealer.seal_uploaded(DEPARTMENT, approval_signed(own_pdf(1)), RECORD)  # our revision rewrites /Info
    reader = PdfFileReader(io.BytesIO(sealed))
    assert [s.field_name for s in reader.embedded_regular_signatures] == ["approval", SEAL_FIELD]
    ours = pyhanko_statuses(sealed, pki)[1]
    assert ours.bottom_line and ours.trusted and ours.timestamp_validity is not None
    (tmp_path / "two.pdf").write_bytes(sealed)
    report = pdfsig.run(tmp_path / "two.pdf")
    assert report.count("Signature is Valid.") == 2 and report.count("Certificate is Trusted.") == 1


def test_a_pdf_certified_with_no_changes_allowed_is_refused(sealer: PadesSealer) -> None:
    certified = sealer.seal_uploaded(DEPARTMENT, own_pdf(1))
    with pytest.raises(InvalidPdf, match="cannot be sealed"):
        sealer.seal_uploaded(DEPARTMENT, certified)


def test_a_sealed_licence_cannot_be_sealed_again(sealer: PadesSealer) -> None:
    (licence_pdf,) = sealer.seal(DEPARTMENT, [licence(500)])
    with pytest.raises(InvalidPdf, match="cannot be sealed"):
        sealer.seal_uploaded(DEPARTMENT, licence_pdf)


SOUND = own_pdf(2, compress=0)


@pytest.mark.parametrize(
    ("data", "limits", "reason"),
    [
        (b"", UploadLimits(), "empty"),
        (b"hello, this is a Word document", UploadLimits(), "not a PDF"),
        (SOUND[: len(SOUND) // 2], UploadLimits(), "truncated"),
        (own_pdf(1, encrypt="secret"), UploadLimits(), "encrypted"),
        (shifted_xref(SOUND), UploadLimits(), "cannot be read"),
        (own_pdf(6), UploadLimits(max_pages=5), "pages"),
        (SOUND, UploadLimits(max_bytes=500), "limit"),
        (SOUND.replace(b"/Count 2", b"/Count 3"), UploadLimits(), "declares"),
        (b"%PDF-1.7\n" + bytes(range(256)) * 20 + b"\n%%EOF\n", UploadLimits(), "cannot be read"),
    ],
    ids=["empty", "not-a-pdf", "truncated", "encrypted", "broken-xref", "too-many-pages", "too-large", "lying-count", "garbage"],
)
def test_bad_uploads_are_refused_with_a_reason(
    keystore: TransitKeyStore, pki: TestPki, data: bytes, limits: UploadLimits, reason: str
) -> None:
    sealer = PadesSealer(keystore, pki, pki.tsa, pki.revocation, upload_limits=limits)
    with pytest.raises(InvalidPdf, match=reason) as caught:
        sealer.seal_uploaded(DEPARTMENT, data)
    assert caught.value.slug == "invalid-pdf" and caught.value.status == 422


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cuts=st.lists(st.tuples(st.integers(0, len(SOUND) - 1), st.integers(0, 64), st.binary(max_size=16)), min_size=1, max_size=4)
)
def test_mangled_pdfs_are_either_accepted_or_refused_never_a_crash(cuts: list[tuple[int, int, bytes]]) -> None:
    data = SOUND
    for at, drop, insert in cuts:
        data = data[:at] + insert + data[at + drop :]
    try:
        check_upload(data)
    except InvalidPdf:
        pass
