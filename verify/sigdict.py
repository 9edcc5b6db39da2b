"""The structure of every signature dictionary, checked before pyHanko parses one (hostile PDFs must not crash it).

A signature field's value must be a dictionary with ``/Filter``, a known ``/SubFilter``, a ``/ByteRange`` of
four non-negative integers inside the file starting at 0, and ``/Contents`` a non-empty, non-zero string
that is DER of CMS SignedData with at least one signer. Fields are found through ``/AcroForm /Fields``
(and ``/Kids``), bounded in number and depth.
"""

from __future__ import annotations

from asn1crypto import cms
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader

__all__ = ["Malformed", "sound_signatures"]

_SUBFILTERS = {"/adbe.pkcs7.detached", "/ETSI.CAdES.detached", "/ETSI.RFC3161", "/adbe.pkcs7.sha1"}
_MAX_FIELDS = 500
_MAX_DEPTH = 8
_MAX_SIGNATURES = 16


class Malformed(Exception):
    """A signature dictionary that no signer writes (the reason says what is wrong)."""


def sound_signatures(reader: PdfFileReader, size: int) -> int:
    """Check every signature dictionary of the document; return how many there are, raise :class:`Malformed` otherwise."""
    try:
        form = reader.root.get("/AcroForm")
        fields = form.get("/Fields") if isinstance(form, generic.DictionaryObject) else None
    except Exception as exc:  # noqa: BLE001 - an unreadable form on hostile bytes
        raise Malformed(f"the form cannot be read ({type(exc).__name__})") from exc
    if fields is None:
        return 0
    count = 0
    for field in _signature_fields(fields):
        count += 1
        if count > _MAX_SIGNATURES:
            raise Malformed(f"more than {_MAX_SIGNATURES} signatures")
        _sound(field, size)
    return count


def _signature_fields(fields: object) -> list[generic.DictionaryObject]:
    found: list[generic.DictionaryObject] = []
    stack: list[tuple[object, int, bool]] = [(fields, 0, False)]
    seen = 0
    while stack:
        node, depth, inherited_sig = stack.pop()
        node = node.get_object() if isinstance(node, generic.IndirectObject) else node
        seen += 1
        if seen > _MAX_FIELDS or depth > _MAX_DEPTH:
            raise Malformed("the form's field tree is too large or too deep")
        if isinstance(node, generic.ArrayObject):
            stack.extend((item, depth + 1, inherited_sig) for item in node)
            continue
        if not isinstance(node, generic.DictionaryObject):
            raise Malformed("a form field is not a dictionary")
        is_sig = node.get("/FT", "/Sig" if inherited_sig else None) == "/Sig"
        if is_sig and "/V" in node:
            found.append(node)
        if "/Kids" in node:
            stack.append((node.get("/Kids"), depth + 1, is_sig))
    return found


def _sound(field: generic.DictionaryObject, size: int) -> None:
    value = field.get("/V")
    if isinstance(value, generic.NullObject):
        return  # an empty signature field: not a signature
    if not isinstance(value, generic.DictionaryObject):
        raise Malformed("the signature value is not a dictionary")
    subfilter = value.get("/SubFilter")
    if not isinstance(value.get("/Filter"), generic.NameObject) or not isinstance(subfilter, generic.NameObject):
        raise Malformed("/Filter or /SubFilter is missing")
    if str(subfilter) not in _SUBFILTERS:
        raise Malformed(f"unknown /SubFilter {subfilter}")
    _byte_range(value.get("/ByteRange"), size)
    _contents(value.get("/Contents"))


def _byte_range(found: object, size: int) -> None:
    if not isinstance(found, generic.ArrayObject) or len(found) != 4:
        raise Malformed("/ByteRange is not an array of four numbers")
    numbers = [v for v in found if isinstance(v, int) and not isinstance(v, bool)]
    if len(numbers) != 4:
        raise Malformed("/ByteRange holds something other than integers")
    start, first, second, length = numbers
    if start != 0 or min(numbers) < 0 or first > second or second + length > size:
        raise Malformed("/ByteRange does not describe two ranges inside the file from its start")


def _contents(found: object) -> None:
    if not isinstance(found, (generic.ByteStringObject, generic.TextStringObject)):
        raise Malformed("/Contents is missing or not a string")
    raw = found.original_bytes if isinstance(found, generic.TextStringObject) else bytes(found)
    blob = raw.rstrip(b"\0")
    if len(blob) < 64:
        raise Malformed("/Contents is empty or zeroed")
    try:
        info = cms.ContentInfo.load(blob)
        if info["content_type"].native not in ("signed_data",):
            raise Malformed("/Contents is not CMS SignedData")
        signed = info["content"]
        if not len(signed["signer_infos"]):
            raise Malformed("/Contents has no signer")
        signed.native  # noqa: B018 - parse it all now: garbage DER fails here, not inside pyHanko
    except Malformed:
        raise
    except Exception as exc:  # noqa: BLE001 - asn1crypto's errors on garbage (ValueError, TypeError, OverflowError...)
        raise Malformed(f"/Contents is not valid DER ({type(exc).__name__})") from exc
