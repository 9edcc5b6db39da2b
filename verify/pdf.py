"""Verification of an uploaded (or local) sealed PDF: every check a result, never an exception.

1. Safe to read: size, header, ``%%EOF``, not encrypted, at most ``max_objects`` objects, every
   Flate stream inflates to at most ``max_stream_bytes`` (zip bombs stop at the cap, bounded
   memory), no LZW/RunLength streams. Only then does pyHanko see the file.
2. The seal signature (field ``ecert-seal``, else the last signature): intact and valid, signer
   chain to *our* root only, trusted RFC 3161 timestamp from a TSA under our root, no changes after
   signing beyond validation data (pyHanko's difference analysis), seal status at signing time and
   now from our CRLs (:class:`verify.trust.TrustMaterial`; in-process online, bundle offline).
3. Online (:class:`verify.online.PdfVerifier`): the licence named in the signed document (its number in the
   document title) exists, the uploaded bytes are the registered copy (SHA-256 of the stored PDF),
   and the record's current status.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import zlib

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import EmbeddedPdfSignature, validate_pdf_signature
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from certificates.sealing import RECORD_KEY
from verify.findings import SEAL_FIELD, PdfLimits, SealFacts, SealFindings, conclude, sha256_hex
from verify.sigdict import Malformed, sound_signatures
from verify.model import Check, check
from verify.trust import TrustMaterial

__all__ = ["check_pdf"]

log = logging.getLogger(__name__)
_TERMINAL_FILTERS = {"/DCTDecode", "/JPXDecode", "/CCITTFaxDecode", "/JBIG2Decode", "/ASCIIHexDecode", "/ASCII85Decode",
                     "/Crypt"}
logging.getLogger("pyhanko_certvalidator").setLevel(logging.ERROR)


class _Refused(Exception):
    def __init__(self, found: Check) -> None:
        super().__init__(found.reason_en)
        self.check = found


def _refuse(name: str, en: str, zh: str) -> _Refused:
    return _Refused(check(name, False, en, zh))


# -- 1. is it safe to read --------------------------------------------------------------------

def _precheck(data: bytes, limits: PdfLimits) -> PdfFileReader:
    if not data:
        raise _refuse("readable", "The file is empty.", "文件为空。")
    if len(data) > limits.max_bytes:
        raise _refuse("readable", f"The file is larger than {limits.max_bytes} bytes.", f"文件超过 {limits.max_bytes} 字节上限。")
    if b"%PDF-" not in data[:1024]:
        raise _refuse("readable", "This is not a PDF file.", "这不是 PDF 文件。")
    if b"%%EOF" not in data[-2048:]:
        raise _refuse("readable", "The PDF is truncated (incomplete download or copy).", "PDF 文件不完整（下载或复制时被截断）。")
    if data.count(b"startxref") > limits.max_revisions:  # before parsing: each revision ends with one
        raise _too_many_revisions(limits)
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        encrypted = reader.encrypted
        revisions = reader.xrefs.total_revisions
    except Exception as exc:  # noqa: BLE001 - any parser failure on hostile bytes is "unreadable"
        raise _refuse("readable", f"The PDF cannot be read ({type(exc).__name__}).", "无法读取该 PDF 文件（文件已损坏）。") from exc
    if revisions > limits.max_revisions:
        raise _too_many_revisions(limits)
    if encrypted:
        raise _refuse("readable", "The PDF is encrypted; genuine e-licences never are.", "PDF 已加密；真实的电子证照不会加密。")
    _scan_streams(reader, limits)
    return reader


def _too_many_revisions(limits: PdfLimits) -> _Refused:
    return _refuse("readable", f"The PDF has more than {limits.max_revisions} revisions (incremental updates); a sealed licence has a few.",
                   f"PDF 的修订（增量更新）超过 {limits.max_revisions} 个；盖章证照只有几个。")


def _scan_streams(reader: PdfFileReader, limits: PdfLimits) -> None:
    """Resolve every object once and inflate every stream within the caps (zip bombs stop here)."""
    seen, total = 0, 0
    try:
        for revision in range(reader.xrefs.total_revisions):
            for ref in reader.xrefs.explicit_refs_in_revision(revision):
                seen += 1
                if seen > limits.max_objects:
                    raise _refuse("readable", f"The PDF has more than {limits.max_objects} objects.", "PDF 对象数量超过上限。")
                obj = reader.get_object(ref)
                if isinstance(obj, generic.StreamObject):
                    total += _bounded_size(obj, limits)
                    if total > limits.max_total_decoded:
                        raise _bomb()
    except _Refused:
        raise
    except RecursionError as exc:
        raise _refuse("readable", "The PDF nests objects too deeply.", "PDF 对象嵌套过深。") from exc
    except Exception as exc:  # noqa: BLE001
        raise _refuse("readable", f"The PDF is damaged ({type(exc).__name__}).", "PDF 文件已损坏。") from exc


def _bomb() -> _Refused:
    return _refuse("readable", "The PDF contains a compressed stream that expands beyond the size limit (a 'zip bomb').",
                   "PDF 中含有解压后超出上限的数据流（压缩炸弹）。")


_MAX_DEFLATE_RATIO = 1032  # DEFLATE cannot expand by more than ~1032:1


def _bounded_size(stream: generic.StreamObject, limits: PdfLimits) -> int:
    data = stream.encoded_data
    filters = list(stream._filters())  # noqa: SLF001 - pyHanko's own filter list
    if len(filters) <= 1 and len(data) * _MAX_DEFLATE_RATIO <= limits.max_stream_bytes:
        return len(data) * (_MAX_DEFLATE_RATIO if filters else 1)  # cannot exceed the cap: no need to inflate
    for name, _params in filters:
        if name in ("/FlateDecode", "/Fl"):
            inflater = zlib.decompressobj()
            data = inflater.decompress(data, limits.max_stream_bytes + 1)
            if len(data) > limits.max_stream_bytes or inflater.unconsumed_tail:
                raise _bomb()
        elif name in _TERMINAL_FILTERS:
            break
        else:
            raise _refuse("readable", f"The PDF uses the stream filter {name}, which e-licences never use.",
                          f"PDF 使用了电子证照不会使用的数据流过滤器 {name}。")
    return len(data)


# -- 2. the seal signature ----------------------------------------------------------------------

def _malformed(why: str) -> _Refused:
    return _refuse("intact", f"The seal's signature is malformed ({why}): the document is damaged or forged.",
                   f"印章签名结构异常（{why}）：文件已损坏或被伪造。")


def _signature(reader: PdfFileReader, size: int) -> EmbeddedPdfSignature:
    try:
        sound_signatures(reader, size)
    except Malformed as exc:
        raise _malformed(str(exc)) from exc
    try:
        signatures = reader.embedded_regular_signatures
    except Exception as exc:  # noqa: BLE001 - pyHanko's own reading of a dictionary we found sound
        raise _malformed(f"pyHanko cannot read it: {type(exc).__name__}") from exc
    if not signatures:
        raise _refuse("signed", "The document has no electronic seal (it is not signed).", "文件没有电子印章（未签名）。")
    for sig in signatures:
        if sig.field_name == SEAL_FIELD:
            return sig
    return signatures[-1]


def _context(trust: TrustMaterial, moment: dt.datetime | None = None) -> ValidationContext:
    def der(c: x509.Certificate) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(c.public_bytes(Encoding.DER))

    return ValidationContext(trust_roots=[der(trust.root)], other_certs=[der(c) for c in trust.intermediates],
                             allow_fetching=False, revocation_mode="soft-fail", moment=moment)


def _validate(sig: EmbeddedPdfSignature, trust: TrustMaterial) -> PdfSignatureStatus:
    status = validate_pdf_signature(sig, _context(trust), ts_validation_context=_context(trust))
    ts = status.timestamp_validity
    if not status.trusted and ts is not None and ts.intact and ts.valid and ts.trusted:
        # e.g. a seal certificate that has expired since: judge the chain at the trusted signing time
        status = validate_pdf_signature(sig, _context(trust, ts.timestamp), ts_validation_context=_context(trust))
    return status


def _facts(status: PdfSignatureStatus, info_unchanged: bool) -> SealFacts:
    ts = status.timestamp_validity
    ts_ok = ts is not None and ts.intact and ts.valid and ts.trusted
    return SealFacts(intact=bool(status.intact and status.valid), signer=x509.load_der_x509_certificate(status.signing_cert.dump()),
                     trusted=bool(status.trusted or status.revoked), signed_at=ts.timestamp if ts_ok and ts is not None else None,
                     unmodified=_unmodified(status) and info_unchanged)


def _unmodified(status: PdfSignatureStatus) -> bool:
    coverage, level = status.coverage, status.modification_level
    return status.docmdp_ok is not False and (
        coverage == SignatureCoverageLevel.ENTIRE_FILE
        or (coverage == SignatureCoverageLevel.ENTIRE_REVISION and level is not None and level <= ModificationLevel.LTA_UPDATES))


_VALIDATION_DATA_KEYS = {"/ModDate", "/Producer"}  # what tools that add DSS or document timestamps rewrite in /Info


def _info(reader: PdfFileReader, revision: int | None) -> dict[str, str]:
    """The string entries of ``/Info`` in ``revision`` (None: the latest, what a viewer shows)."""
    try:
        if revision is None:
            info = reader.trailer_view["/Info"] if "/Info" in reader.trailer_view else None  # noqa: SIM401 - [] dereferences, .get() does not
        else:
            signed = reader.get_historical_resolver(revision)
            info = signed(signed.trailer_view.raw_get("/Info")) if "/Info" in signed.trailer_view else None
        if not isinstance(info, generic.DictionaryObject):
            return {}
        return {str(k): str(v) for k, v in info.items() if isinstance(v, (generic.TextStringObject, generic.ByteStringObject))}
    except Exception:  # noqa: BLE001 - unreadable /Info: no title, no record
        return {}


def _info_unchanged(reader: PdfFileReader, sig: EmbeddedPdfSignature) -> bool:
    """``/Info`` after sealing says what it said when sealed (only the modification date and producer may change)."""
    def meaningful(entries: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in entries.items() if k not in _VALIDATION_DATA_KEYS}

    return meaningful(_info(reader, sig.signed_revision)) == meaningful(_info(reader, None))


def check_pdf(data: bytes, trust: TrustMaterial, *, now: dt.datetime, limits: PdfLimits = PdfLimits()) -> SealFindings:
    """The document checks (no database): safe to read, seal intact, chained, timestamped, unmodified, seal status, record."""
    digest = sha256_hex(data)
    try:
        reader = _precheck(data, limits)
        sig = _signature(reader, len(data))
        try:
            status = _validate(sig, trust)
            facts = _facts(status, _info_unchanged(reader, sig))
        except Exception as exc:  # noqa: BLE001 - whatever pyHanko trips over in a signature: a verdict, not a crash
            log.info("signature validation failed: %s: %s", type(exc).__name__, exc)
            raise _refuse("intact", f"The seal's signature cannot be checked ({type(exc).__name__}); the document is damaged or forged.",
                          "无法校验印章签名；文件已损坏或被伪造。") from exc
        signed = _info(reader, sig.signed_revision)
        return conclude(facts, trust, now, title=signed.get("/Title"), record=signed.get(RECORD_KEY), digest=digest, path="pyhanko")
    except _Refused as refused:
        return SealFindings((refused.check,), sha256=digest)
