"""Hostile and broken PDFs for the verification matrix (built once per session from one sealed PDF)."""

from __future__ import annotations

import datetime as dt
import io
import re
import subprocess
import tempfile
import zlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.fields import SigFieldSpec

from certificates.models import Licence
from certificates.sealing import FieldRow, LicenceDocument
from signing.render import render_licence


def unsigned_licence(licence: Licence) -> bytes:
    """The same licence drawn by anyone with our (public) layout, but not sealed."""
    document = LicenceDocument(
        licence_id=licence.id, number=licence.number, department_code=licence.department_code, type_code=licence.type_code,
        type_version=licence.type_version, type_name_zh="营业执照", type_name_en="Business licence",
        holder_kind=licence.holder_kind, holder_name=licence.holder_name,
        rows=(FieldRow("名称", "Name", str(licence.fields.get("company", ""))),),
        valid_from=licence.valid_from, valid_until=licence.valid_until, issued_at=licence.issued_at, qr=licence.qr_payload or "",
    )
    return render_licence(document, issuer_name="伪造局").pdf


def _name(cn: str, department: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Province Government")]
    if department:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, department))
    return x509.Name([*parts, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def forged(pdf: bytes, department: str) -> bytes:
    """Signed by a stranger: a throwaway key under a self-made CA that copies our names."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Example Province Government Root CA")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=365)).add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(_name("核验测试局", department)).issuer_name(ca_name)
            .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
            .sign(ca_key, hashes.SHA256()))
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, data in (("key", leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                              serialization.NoEncryption())),
                           ("cert", leaf.public_bytes(serialization.Encoding.PEM)), ("ca", ca.public_bytes(serialization.Encoding.PEM))):
            paths[name] = Path(tmp) / f"{name}.pem"
            paths[name].write_bytes(data)
        signer = signers.SimpleSigner.load(str(paths["key"]), str(paths["cert"]), ca_chain_files=(str(paths["ca"]),))
    assert signer is not None
    out = io.BytesIO()
    signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)), signers.PdfSignatureMetadata(field_name="ecert-seal"),
                     signer=signer, output=out, new_field_spec=SigFieldSpec("ecert-seal", box=(20, 20, 120, 60)))
    return out.getvalue()


def incremental(pdf: bytes, change) -> bytes:  # type: ignore[no-untyped-def]
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def added_content(pdf: bytes) -> bytes:
    """Signed by us, then an incremental update draws over the page."""
    def change(writer: IncrementalPdfFileWriter) -> None:
        page_ref, _ = writer.find_page_for_modification(0)
        stream = generic.StreamObject(stream_data=b"BT /F1 24 Tf 100 700 Td (VALID UNTIL 2099) Tj ET")
        page = page_ref.get_object()
        contents = page["/Contents"]
        new = writer.add_object(stream)
        page["/Contents"] = generic.ArrayObject([*(contents if isinstance(contents, generic.ArrayObject) else [page.raw_get("/Contents")]), new])
        writer.update_container(page)
    return incremental(pdf, change)


def changed_title(pdf: bytes, number: str) -> bytes:
    """Signed by us, then the document info is rewritten to name another licence."""
    def change(writer: IncrementalPdfFileWriter) -> None:
        info = writer.trailer["/Info"].get_object() if "/Info" in writer.trailer else None
        if info is not None:
            info["/Title"] = generic.TextStringObject(f"营业执照 {number}")
            writer.update_container(info)
    return incremental(pdf, change)


def zip_bomb(pdf: bytes, size: int = 200 * 1024 * 1024) -> bytes:
    """An incremental update adding a Flate stream that inflates to ``size`` bytes (~200 KB on disk)."""
    compressor = zlib.compressobj(9)
    chunk = b"\0" * (1 << 20)
    encoded = b"".join(compressor.compress(chunk) for _ in range(size >> 20)) + compressor.flush()

    def change(writer: IncrementalPdfFileWriter) -> None:
        stream = generic.StreamObject({generic.NameObject("/Filter"): generic.NameObject("/FlateDecode")}, encoded_data=encoded)
        ref = writer.add_object(stream)
        writer.root["/Bomb"] = ref
        writer.update_root()
    return incremental(pdf, change)


def flipped(pdf: bytes) -> bytes:
    """One byte changed inside the signed range (the page content)."""
    data = bytearray(pdf)
    position = data.find(b"stream", 2000) + 40
    data[position] ^= 0x01
    return bytes(data)


def encrypted(pdf: bytes, tmp: Path) -> bytes:
    src, dst = tmp / "in.pdf", tmp / "enc.pdf"
    src.write_bytes(pdf)
    subprocess.run(["qpdf", "--encrypt", "user", "owner", "256", "--", str(src), str(dst)], check=True, capture_output=True)
    return dst.read_bytes()


def self_signed(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    name = _name("Example Province Government Root CA")
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365)).sign(key, hashes.SHA256()))


def wrapped(pdf: bytes) -> bytes:
    """Signature wrapping: the /ByteRange rewritten in place so it no longer covers what was signed."""
    found = re.compile(rb"/ByteRange\s*\[\s*\d+\s+(\d+)").search(pdf, pdf.rindex(b"/ByteRange"))
    assert found is not None
    first_length = found.group(1)
    shorter = str(int(first_length) - 1).encode().rjust(len(first_length), b"0")  # one byte fewer, same width
    return pdf[: found.start(1)] + shorter + pdf[found.end(1):]


def _rewrite_signature(pdf: bytes, change) -> bytes:  # type: ignore[no-untyped-def]
    """An incremental update that rewrites the seal's signature dictionary (``change(dictionary)``)."""
    def edit(writer: IncrementalPdfFileWriter) -> None:
        for field_ref in writer.root["/AcroForm"]["/Fields"]:
            field = field_ref.get_object()
            if field.get("/FT") == "/Sig" and "/V" in field:
                value = field["/V"]
                change(value)
                writer.update_container(value)
    return incremental(pdf, edit)


def _set(key: str, value: object):  # type: ignore[no-untyped-def]
    def change(dictionary: generic.DictionaryObject) -> None:
        if value is None:
            del dictionary[key]
        else:
            dictionary[generic.NameObject(key)] = value
    return change


#: Malformed signature dictionaries: each must get a verdict, never a crash.
MALFORMED_SIGNATURES = {
    "contents_missing": _set("/Contents", None),
    "contents_null": _set("/Contents", generic.NullObject()),
    "contents_empty": _set("/Contents", generic.ByteStringObject(b"")),
    "contents_zeroed": _set("/Contents", generic.ByteStringObject(b"\0" * 8192)),
    "contents_wrong_type": _set("/Contents", generic.NumberObject(7)),
    "contents_name": _set("/Contents", generic.NameObject("/Contents")),
    "contents_garbage_der": _set("/Contents", generic.ByteStringObject(b"\x30\x82\xff\xff" + b"\x04" * 300)),
    "contents_not_cms": _set("/Contents", generic.ByteStringObject(b"\x30\x03\x02\x01\x05")),
    "byterange_missing": _set("/ByteRange", None),
    "byterange_short": _set("/ByteRange", generic.ArrayObject([generic.NumberObject(0), generic.NumberObject(10)])),
    "byterange_names": _set("/ByteRange", generic.ArrayObject([generic.NameObject("/A")] * 4)),
    "byterange_huge": _set("/ByteRange", generic.ArrayObject([generic.NumberObject(v) for v in (0, 10, 10**12, 10**12)])),
    "byterange_negative": _set("/ByteRange", generic.ArrayObject([generic.NumberObject(v) for v in (0, -10, 20, 5)])),
    "subfilter_missing": _set("/SubFilter", None),
    "subfilter_unknown": _set("/SubFilter", generic.NameObject("/x.y")),
}


def malformed_signature(pdf: bytes, case: str) -> bytes:
    return _rewrite_signature(pdf, MALFORMED_SIGNATURES[case])


def contents_zeroed_in_place(pdf: bytes) -> bytes:
    """The /Contents hex string overwritten with zeros, length kept (no new revision)."""
    found = re.compile(rb"/ByteRange\s*\[\s*0\s+(\d+)\s+(\d+)").search(pdf, pdf.rindex(b"/ByteRange"))
    assert found is not None
    a, b = int(found.group(1)), int(found.group(2))
    return pdf[: a + 1] + b"0" * (b - a - 2) + pdf[b - 1:]


def many_updates(pdf: bytes, count: int) -> bytes:
    """``count`` tiny incremental updates appended by hand (each re-writes /Info)."""
    out = bytearray(pdf)
    prev = int(re.findall(rb"startxref\s+(\d+)", pdf)[-1])
    size = int(re.findall(rb"/Size\s+(\d+)", pdf)[-1])
    root = re.findall(rb"/Root\s+(\d+\s+\d+\s+R)", pdf)[-1]
    for i in range(count):
        offset = len(out)
        out += b"%d 0 obj\n<< /Producer (update %d) >>\nendobj\n" % (size, i)
        xref = len(out)
        out += b"xref\n%d 1\n%010d 00000 n \ntrailer\n<< /Size %d /Root %s /Info %d 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (
            size, offset, size + 1, root, size, prev, xref)
        prev, size = xref, size + 1
    return bytes(out)
