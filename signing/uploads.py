"""Checks on a PDF a department uploads for sealing: we parse untrusted bytes, so we parse them
strictly, within limits, before pyHanko's writer touches them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader

from signing.active import active_content
from signing.errors import ActiveContent, InvalidPdf

__all__ = ["UploadLimits", "check_upload", "CheckedPdf"]


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int = 20 * 1024 * 1024
    max_pages: int = 200
    max_objects: int = 200_000


@dataclass(frozen=True)
class CheckedPdf:
    reader: PdfFileReader
    pages: int
    signed: bool
    last_page_box: tuple[float, float, float, float]


def check_upload(data: bytes, limits: UploadLimits = UploadLimits()) -> CheckedPdf:
    """Parse ``data`` strictly or raise :class:`InvalidPdf` with the reason (never anything else)."""
    if not data:
        raise InvalidPdf("the upload is empty")
    if len(data) > limits.max_bytes:
        raise InvalidPdf(f"the PDF is {len(data)} bytes; the limit is {limits.max_bytes}")
    if b"%PDF-" not in data[:1024]:
        raise InvalidPdf("this is not a PDF (no %PDF- header)")
    if b"%%EOF" not in data[-1024:]:
        raise InvalidPdf("the PDF is truncated (no %%EOF marker at the end)")
    try:
        return _parse(data, limits)
    except InvalidPdf:
        raise
    except RecursionError as exc:
        raise InvalidPdf("the PDF nests objects too deeply") from exc
    # A parser over hostile bytes can fail in many ways (PdfReadError, KeyError, zlib.error,
    # struct.error...); every one of them means "not a PDF we can seal", never a server error.
    except Exception as exc:  # noqa: BLE001
        raise InvalidPdf(f"the PDF cannot be read: {type(exc).__name__}: {exc}") from exc


def _parse(data: bytes, limits: UploadLimits) -> CheckedPdf:
    reader = PdfFileReader(io.BytesIO(data), strict=True)
    if reader.encrypted:
        raise InvalidPdf("the PDF is encrypted; upload it without a password or restrictions")
    _resolve_every_object(reader, limits)
    pages = _count_pages(reader, limits)
    if pages == 0:
        raise InvalidPdf("the PDF has no pages")
    signed = bool(reader.embedded_signatures)
    return CheckedPdf(reader, pages, signed, _last_page_box(reader, pages))


def _resolve_every_object(reader: PdfFileReader, limits: UploadLimits) -> None:
    """Read each object the cross-reference tables name (a broken xref shows up here, not later) and refuse active content."""
    seen, active = 0, set()
    for revision in range(reader.xrefs.total_revisions):
        for ref in reader.xrefs.explicit_refs_in_revision(revision):
            seen += 1
            if seen > limits.max_objects:
                raise InvalidPdf(f"the PDF has more than {limits.max_objects} objects")
            active |= active_content(reader.get_object(ref))
    active |= active_content(reader.root)  # a catalogue written inline in the trailer has no xref entry of its own
    if active:
        raise ActiveContent("the PDF holds active content, which a sealed licence may not carry: " + "; ".join(sorted(active))
                            + " (remove it and upload again; see docs/signing.md)")


def _count_pages(reader: PdfFileReader, limits: UploadLimits) -> int:
    """Walk the page tree (not trusting /Count), refusing cycles and oversize documents."""
    root = reader.root["/Pages"]
    declared = int(root.get("/Count", 0))
    if declared > limits.max_pages:
        raise InvalidPdf(f"the PDF has {declared} pages; the limit is {limits.max_pages}")
    pages, stack, seen = 0, [reader.root.raw_get("/Pages")], set()
    while stack:
        ref = stack.pop()
        key = (ref.idnum, ref.generation) if isinstance(ref, generic.IndirectObject) else id(ref)
        if key in seen:
            raise InvalidPdf("the page tree has a cycle")
        seen.add(key)
        node = ref.get_object() if isinstance(ref, generic.IndirectObject) else ref
        if node.get("/Type") == "/Pages":
            stack.extend(node.raw_get("/Kids"))
        else:
            pages += 1
            if pages > limits.max_pages:
                raise InvalidPdf(f"the PDF has more than {limits.max_pages} pages")
    if pages != declared:
        raise InvalidPdf(f"the page tree holds {pages} pages but declares {declared}")
    return pages


def _last_page_box(reader: PdfFileReader, pages: int) -> tuple[float, float, float, float]:
    page_ref, _ = reader.find_page_for_modification(pages - 1)
    page = page_ref.get_object()
    box = _inherited(page, "/CropBox") if "/CropBox" in page else _inherited(page, "/MediaBox")
    x0, y0, x1, y1 = (float(v) for v in box)
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def _inherited(page: generic.DictionaryObject, key: str) -> generic.ArrayObject:
    node: generic.DictionaryObject | None = page
    while node is not None:
        if key in node:
            return node[key]
        node = node["/Parent"] if "/Parent" in node else None  # noqa: SIM401 - get() would not dereference
    raise InvalidPdf("the last page has no /MediaBox")
