"""The seal profile of ecert's own PDFs, checked with asn1crypto and cryptography only (no pyHanko).

A sealed licence as :mod:`signing.sealer` writes it has one signature whose ``/ByteRange`` covers the
whole file except the ``/Contents`` hex string (the DSS is inside the signed revision). A PDF that has
exactly that shape is judged here, in about a millisecond; anything else (a second signature, an
incremental update, an xref or object stream, encryption, an unexpected algorithm, a parse surprise)
returns None and :func:`verify.findings.check_document` hands it to pyHanko, which stays the
authority for everything unusual. This path answers "valid" only for what it checked in full:

* layout: ``%PDF-`` ... ``%%EOF``, one ``/ByteRange [0 a b c]`` with ``b + c`` the file length (nothing
  appended after sealing, so shadow and incremental attacks cannot take this path), the gap exactly the
  ``/Contents`` hex string of the one ``/Type /Sig`` dictionary, no ``/Encrypt``, stream filters and
  inflated sizes within :class:`verify.findings.PdfLimits` (as pyHanko's path would require);
* CMS SignedData, detached, one signer: signed attributes with content type ``data`` and
  ``messageDigest`` = SHA-256 of the covered bytes, the signature verified with the signer's key;
* the signer issued by our issuing CA under our root (signatures, not names), validity now or at the
  trusted timestamp time, key usage nonRepudiation and the documentSigning EKU of our seal profile;
* the RFC 3161 signature timestamp (unsigned attribute): imprint = SHA-256 of the signature value, the
  TSA's CMS signature, the TSA issued by our CA (timeStamping EKU, valid now); its genTime is the
  signing time;
* then :func:`verify.findings.conclude` (status at signing time and now, the binding to the signed licence
  record), with the title and the record read from the document's ``/Info`` (classic xref tables, parsed
  token by token).
"""

from __future__ import annotations

import binascii
import datetime as dt
import hashlib
import logging
import re
import zlib
from dataclasses import dataclass

from asn1crypto import cms, tsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from ca.profiles import DOCUMENT_SIGNING
from certificates.sealing import RECORD_KEY
from verify.findings import PdfLimits, SealFacts, SealFindings, conclude, issued_by_us, sha256_hex
from verify.trust import TrustMaterial, has_eku

__all__ = ["check_profile"]

log = logging.getLogger(__name__)

_BYTE_RANGE = re.compile(rb"/ByteRange\s*\[\s*0\s+(\d+)\s+(\d+)\s+(\d+)\s*\]")
_SIG_TYPE = re.compile(rb"/Type\s*/Sig(?![A-Za-z0-9.#_-])")
_SUBFILTER = re.compile(rb"/SubFilter\s*/(ETSI\.CAdES\.detached|adbe\.pkcs7\.detached)(?![A-Za-z0-9.#_-])")
_FILTER = re.compile(rb"/Filter\s*(\[[^\]]{0,256}\]|/[^\s/\[\]<>()]+)")  # bounded: linear on hostile bytes
_ESCAPED_NAME = re.compile(rb"/[^\s/\[\]<>(){}%]*#[0-9A-Fa-f]{2}[^\s/\[\]<>(){}%]*")
#: Names this reader relies on; written with # escapes (``/Byte#52ange``) they would escape its byte scans.
_SIGNIFICANT = {b"/ByteRange", b"/Type", b"/Sig", b"/SubFilter", b"/Contents", b"/Encrypt", b"/ObjStm", b"/XRefStm", b"/XRef",
                b"/Filter", b"/Info", b"/Title", b"/Prev"}
_STREAM = re.compile(rb"(?<!end)stream\r?\n")
_STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF\s*$")
_XREF_ENTRY = re.compile(rb"(\d{10}) (\d{5}) ([nf])(?: \r| \n|\r\n)")
_SUBSECTION = re.compile(rb"\s*(\d+) (\d+)[ \t]*\r?\n")
_INFO = re.compile(rb"/Info\s+(\d+)\s+(\d+)\s+R")
_PREV = re.compile(rb"/Prev\s+(\d+)")
_ALLOWED_FILTERS = {b"/FlateDecode", b"/Fl", b"/DCTDecode", b"/JPXDecode", b"/CCITTFaxDecode", b"/JBIG2Decode",
                    b"/ASCIIHexDecode", b"/ASCII85Decode", b"/Adobe.PPKLite"}  # the last: the signature handler
_ESCAPES = {ord("n"): 0x0A, ord("r"): 0x0D, ord("t"): 0x09, ord("b"): 0x08, ord("f"): 0x0C}


class _NotProfile(Exception):
    """The PDF is outside the profile: pyHanko decides."""


@dataclass(frozen=True)
class _Layout:
    covered: bytes
    contents: bytes
    title: str | None
    record: str | None


def check_profile(data: bytes, trust: TrustMaterial, *, now: dt.datetime, limits: PdfLimits = PdfLimits()) -> SealFindings | None:
    """The document checks for a PDF of our seal profile, or None when it is not one (then pyHanko decides)."""
    try:
        layout = _layout(data, limits)
        facts = _facts(layout, trust, now)
    except _NotProfile as why:
        log.debug("not the seal profile: %s", why)
        return None
    except Exception as exc:  # noqa: BLE001 - anything unexpected in hostile bytes: the general path decides
        log.info("seal profile check gave up (%s: %s); pyHanko decides", type(exc).__name__, exc)
        return None
    return conclude(facts, trust, now, title=layout.title, record=layout.record, digest=sha256_hex(data), path="profile")


# -- the file ------------------------------------------------------------------------------------

def _require(condition: bool, why: str) -> None:
    if not condition:
        raise _NotProfile(why)


def _layout(data: bytes, limits: PdfLimits) -> _Layout:
    _require(0 < len(data) <= limits.max_bytes and data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF"), "not a whole PDF")
    _require(data.count(b"/ByteRange") == 1 and len(_SIG_TYPE.findall(data)) == 1, "not exactly one signature")
    _require(b"/Encrypt" not in data and b"/ObjStm" not in data and b"/XRefStm" not in data, "encryption or compressed objects")
    _require(not any(_unescaped(name) in _SIGNIFICANT for name in _ESCAPED_NAME.findall(data)), "a significant name written with # escapes")
    found = _BYTE_RANGE.search(data)
    _require(found is not None, "no /ByteRange [0 a b c]")
    assert found is not None
    a, b, c = (int(v) for v in found.groups())
    _require(0 < a < b and b + c == len(data), "the signature does not cover the whole file")
    _require(data[a:a + 1] == b"<" and data[b - 1:b] == b">" and re.search(rb"/Contents\s*$", data[max(0, a - 64):a]) is not None,
             "the gap is not the /Contents string")
    _same_dictionary(data, a, b, found.start())
    covered = data[:a] + data[b:]
    _streams_within(covered, limits)
    contents = binascii.unhexlify(data[a + 1:b - 1])
    info = _info(data)
    return _Layout(covered, contents, info.get(b"/Title"), info.get(RECORD_KEY.encode()))


def _unescaped(name: bytes) -> bytes:
    return re.sub(rb"#([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), name)


def _same_dictionary(data: bytes, a: int, b: int, byte_range: int) -> None:
    """The /ByteRange, the /Contents gap, /Type /Sig and the SubFilter sit in one object."""
    start = data.rfind(b" obj", 0, a)
    end = data.find(b"endobj", b)
    _require(start > data.rfind(b"endobj", 0, a) and start < byte_range < end and end != -1, "the /ByteRange is not in the signature")
    dictionary = data[start:a] + data[b:end]
    _require(_SIG_TYPE.search(dictionary) is not None and _SUBFILTER.search(dictionary) is not None, "not a /Sig with a CMS SubFilter")


def _streams_within(data: bytes, limits: PdfLimits) -> None:
    """What pyHanko's path refuses as unreadable never gets a verdict here: object count, filters, inflated sizes.

    ``data`` is the signed bytes (the file without the signature's hex string).
    """
    _require(data.count(b"obj") - data.count(b"endobj") <= limits.max_objects, "too many objects")  # >= the "N G obj" headers
    filters = _FILTER.findall(data)
    _require(len(filters) == data.count(b"/Filter"), "a /Filter value this reader does not follow")
    for value in filters:
        names = re.findall(rb"/[^\s/\[\]<>()]+", value)
        _require(all(name in _ALLOWED_FILTERS for name in names), "an unusual stream filter")
    total, view = 0, memoryview(data)
    for stream in _STREAM.finditer(data):
        head = data[stream.end():stream.end() + 2]
        if len(head) < 2 or head[0] & 0x0F != 8 or ((head[0] << 8) | head[1]) % 31:
            continue  # not zlib data
        inflater = zlib.decompressobj()
        size = len(inflater.decompress(view[stream.end():], limits.max_stream_bytes + 1))
        _require(size <= limits.max_stream_bytes and not inflater.unconsumed_tail, "a stream inflates beyond the limit")
        total += size
        _require(total <= limits.max_total_decoded, "the streams inflate beyond the limit")


# -- the document information: /Title and the licence record of the trailer's /Info, through classic xref tables --

def _info(data: bytes) -> dict[bytes, str]:
    """The string entries of the trailer's ``/Info`` dictionary (empty without one)."""
    found = _STARTXREF.search(data, max(0, len(data) - 1024))
    _require(found is not None, "no startxref at the end")
    assert found is not None
    offsets: dict[int, int] = {}
    offset: int | None = int(found.group(1))
    info: tuple[int, int] | None = None
    for depth in range(64):
        if offset is None:
            break
        trailer = _xref_section(data, offset, offsets)
        if depth == 0:
            ref = _INFO.search(trailer)
            info = (int(ref.group(1)), int(ref.group(2))) if ref else None
        prev = _PREV.search(trailer)
        offset = int(prev.group(1)) if prev else None
    _require(offset is None, "too many xref sections")
    if info is None:
        return {}
    _require(info[0] in offsets, "the /Info object is not in the xref tables")
    return _info_dictionary(data, offsets[info[0]], info)


def _xref_section(data: bytes, offset: int, offsets: dict[int, int]) -> bytes:
    """Read one classic xref section into ``offsets`` (newer sections first win); return its trailer."""
    _require(data.startswith(b"xref", offset), "not a classic xref table")
    pos = offset + 4
    while True:
        sub = _SUBSECTION.match(data, pos)
        if sub is None:
            break
        first, count = int(sub.group(1)), int(sub.group(2))
        pos = sub.end()
        for number in range(first, first + count):
            entry = _XREF_ENTRY.match(data, pos)
            _require(entry is not None, "a malformed xref entry")
            assert entry is not None
            if entry.group(3) == b"n":
                offsets.setdefault(number, int(entry.group(1)))
            pos = entry.end()
    start = data.find(b"trailer", pos, pos + 64)
    end = data.find(b"startxref", start)
    _require(start != -1 and end != -1, "no trailer")
    return data[start:end]


_TOKEN_SPACE = re.compile(rb"(?:[\x00\t\n\x0c\r ]|%[^\r\n]*)*")
_NAME = re.compile(rb"/[^\x00\t\n\x0c\r ()<>\[\]{}/%]*")
_SIMPLE = re.compile(rb"(?:[+-]?\d+(?:\.\d*)?|true|false|null)(?=[\x00\t\n\x0c\r /<>\[\]()%])")
_REFERENCE = re.compile(rb"\d+\s+\d+\s+R(?=[\x00\t\n\x0c\r /<>\[\]()%])")


def _info_dictionary(data: bytes, offset: int, ref: tuple[int, int]) -> dict[bytes, str]:
    """Parse the ``/Info`` object token by token (names, strings, numbers, references); anything else is not the profile."""
    head = re.compile(rb"(\d+)\s+(\d+)\s+obj\s*<<").match(data, offset)
    _require(head is not None and (int(head.group(1)), int(head.group(2))) == ref, "the /Info offset is wrong")
    assert head is not None
    entries: dict[bytes, str] = {}
    pos = head.end()
    for _ in range(64):
        pos = _TOKEN_SPACE.match(data, pos).end()  # type: ignore[union-attr]
        if data.startswith(b">>", pos):
            return entries
        key = _NAME.match(data, pos)
        _require(key is not None, "an /Info key is not a name")
        assert key is not None
        _require(key.group() not in entries, "an /Info key appears twice")
        pos = _TOKEN_SPACE.match(data, key.end()).end()  # type: ignore[union-attr]
        if data[pos:pos + 1] == b"(":
            raw, pos = _literal(data, pos)
            entries[key.group()] = _text(raw)
        elif data[pos:pos + 1] == b"<" and not data.startswith(b"<<", pos):
            raw, pos = _hex_string(data, pos)
            entries[key.group()] = _text(raw)
        else:
            simple = _NAME.match(data, pos) or _REFERENCE.match(data, pos) or _SIMPLE.match(data, pos)
            _require(simple is not None, "an /Info value of an unexpected kind")
            assert simple is not None
            pos = simple.end()
    raise _NotProfile("an /Info dictionary with too many entries")


def _text(raw: bytes) -> str:
    if raw.startswith(b"\xfe\xff"):
        return raw[2:].decode("utf-16-be")
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8")
    _require(raw.isascii(), "PDFDocEncoding beyond ASCII")  # let pyHanko decode it
    return raw.decode("ascii")


def _hex_string(data: bytes, pos: int) -> tuple[bytes, int]:
    end = data.index(b">", pos)
    digits = re.sub(rb"\s", b"", data[pos + 1:end])
    return binascii.unhexlify(digits + b"0" * (len(digits) % 2)), end + 1


_LITERAL_TOKEN = re.compile(rb"\\([0-7]{1,3}|\r\n|[\s\S])|([()])|(\r\n?)|([^\\()\r]+)")


def _literal(data: bytes, pos: int) -> tuple[bytes, int]:
    """A PDF literal string starting at ``(`` (escapes, octal codes, balanced parentheses, line ends), and where it ends."""
    _require(data[pos:pos + 1] == b"(", "not a literal string")
    out, depth = bytearray(), 0
    for token in _LITERAL_TOKEN.finditer(data, pos):
        escaped, paren, line_end, run = token.groups()
        if run is not None:
            out += run
        elif escaped is not None:
            if escaped[0] in b"01234567":
                out.append(int(escaped, 8) & 0xFF)
            elif escaped not in (b"\r\n", b"\n", b"\r"):  # a backslash before a line end continues the line
                out.append(_ESCAPES.get(escaped[0], escaped[0]))
        elif paren == b"(":
            depth += 1
            if depth > 1:
                out += paren
        elif paren == b")":
            depth -= 1
            if depth == 0:
                return bytes(out), token.end()
            out += paren
        else:
            out += b"\n"  # any line end in a string reads as LF
    raise _NotProfile("an unterminated string")


# -- the signature ---------------------------------------------------------------------------------

def _signed_data(blob: bytes, content_type: str) -> tuple[cms.SignedData, cms.SignerInfo, x509.Certificate]:
    info = cms.ContentInfo.load(blob, strict=False)
    _require(info["content_type"].native == "signed_data", "not CMS SignedData")
    signed = info["content"]
    _require(len(signed["signer_infos"]) == 1, "not exactly one signer")
    signer_info = signed["signer_infos"][0]
    encapsulated = signed["encap_content_info"]
    _require(encapsulated["content_type"].native == content_type, f"the content is not {content_type}")
    _require((encapsulated["content"].native is None) == (content_type == "data"), "detached for the seal, encapsulated for a token")
    _require(signer_info["digest_algorithm"]["algorithm"].native == "sha256", "not SHA-256")
    _require(bool(signer_info["signed_attrs"]), "no signed attributes")
    return signed, signer_info, _signer_certificate(signed, signer_info)


def _signer_certificate(signed: cms.SignedData, signer_info: cms.SignerInfo) -> x509.Certificate:
    sid = signer_info["sid"]
    matches = []
    for choice in signed["certificates"] or ():
        if choice.name != "certificate":
            continue
        certificate = choice.chosen
        if sid.name == "issuer_and_serial_number":
            hit = (certificate.serial_number == sid.chosen["serial_number"].native
                   and certificate.issuer.dump() == sid.chosen["issuer"].dump())  # the same DER, as our signers write it
        else:
            hit = certificate.key_identifier == sid.chosen.native
        if hit:
            matches.append(certificate)
    _require(len(matches) == 1, "the signer's certificate is not in the CMS exactly once")
    return x509.load_der_x509_certificate(matches[0].dump())


def _attribute(signer_info: cms.SignerInfo, name: str) -> object:
    values = [a["values"] for a in signer_info["signed_attrs"] if a["type"].native == name]
    _require(len(values) == 1 and len(values[0]) == 1, f"not exactly one {name} attribute")
    return values[0][0].native


def _signature_holds(signer_info: cms.SignerInfo, certificate: x509.Certificate, content_type: str, content_digest: bytes) -> bool:
    """Signed attributes name the content and its digest, and the signer's key signed them."""
    _require(_attribute(signer_info, "content_type") == content_type, "the signed content type is wrong")
    if _attribute(signer_info, "message_digest") != content_digest:
        return False
    algorithm = signer_info["signature_algorithm"]["algorithm"].native
    key, signature = certificate.public_key(), signer_info["signature"].native
    message = signer_info["signed_attrs"].untag().dump()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey) and algorithm in ("sha256_ecdsa", "ecdsa"):
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey) and algorithm in ("sha256_rsa", "rsassa_pkcs1v15", "rsa"):
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise _NotProfile(f"signature algorithm {algorithm}")
    except InvalidSignature:
        return False
    return True


def _path_valid_at(certificate: x509.Certificate, trust: TrustMaterial, at: dt.datetime) -> bool:
    issuer = issued_by_us(certificate, trust)
    assert issuer is not None
    return all(c.not_valid_before_utc <= at <= c.not_valid_after_utc for c in (certificate, issuer, trust.root))


def _has_usage(certificate: x509.Certificate, eku: x509.ObjectIdentifier, non_repudiation: bool) -> bool:
    try:
        key_usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return has_eku(certificate, eku) and (key_usage.content_commitment or not non_repudiation)


def _facts(layout: _Layout, trust: TrustMaterial, now: dt.datetime) -> SealFacts:
    _, signer_info, signer = _signed_data(layout.contents, "data")
    intact = _signature_holds(signer_info, signer, "data", hashlib.sha256(layout.covered).digest())
    signed_at = _timestamp(signer_info, trust, now)
    trusted = False
    if intact and issued_by_us(signer, trust) is not None:  # as pyHanko: no trust judgement for a broken signature
        _require(_has_usage(signer, DOCUMENT_SIGNING, non_repudiation=True), "the seal certificate lacks our seal profile's usages")
        # as the pyHanko path: the chain is judged today, else at the trusted timestamp time
        trusted = _path_valid_at(signer, trust, now) or (signed_at is not None and _path_valid_at(signer, trust, signed_at))
        _require(trusted, "the seal's chain is outside its validity period")
    return SealFacts(intact=intact, signer=signer, trusted=trusted, signed_at=signed_at, unmodified=True)


def _timestamp(signer_info: cms.SignerInfo, trust: TrustMaterial, now: dt.datetime) -> dt.datetime | None:
    """The genTime of the signature timestamp if it is over this signature and from our TSA, else None."""
    tokens = [a["values"] for a in signer_info["unsigned_attrs"] or () if a["type"].native == "signature_time_stamp_token"]
    if not tokens:
        return None
    _require(len(tokens) == 1 and len(tokens[0]) == 1, "not exactly one signature timestamp")
    signed, tsa_info, tsa = _signed_data(tokens[0][0].dump(), "tst_info")
    content = signed["encap_content_info"]["content"]
    tst: tsp.TSTInfo = content.parsed
    imprint = tst["message_imprint"]
    _require(imprint["hash_algorithm"]["algorithm"].native == "sha256", "the timestamp imprint is not SHA-256")
    over_this = imprint["hashed_message"].native == hashlib.sha256(signer_info["signature"].native).digest()
    valid = _signature_holds(tsa_info, tsa, "tst_info", hashlib.sha256(bytes(content)).digest())
    if not (over_this and valid) or issued_by_us(tsa, trust) is None:
        return None
    _require(_has_usage(tsa, ExtendedKeyUsageOID.TIME_STAMPING, non_repudiation=False) and _path_valid_at(tsa, trust, now),
             "our TSA's certificate is not usable today")
    gen_time: dt.datetime = tst["gen_time"].native
    return gen_time
