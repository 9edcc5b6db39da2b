"""The signed licence record in the sealed revision: ``/Info`` carries the licence's QR string and a title
ending with its number, written in the same incremental update as the seal, so the seal covers both.

A fresh ``/Info`` dictionary replaces the document's own (a department's PDF keeps its title as the prefix,
and nothing else of its ``/Info``), so the verifiers read keys that only ecert wrote.
"""

from __future__ import annotations

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from certificates.sealing import RECORD_KEY, SealedRecord, sealed_title

__all__ = ["embed_record"]


def _old_title(writer: IncrementalPdfFileWriter) -> str | None:
    try:
        info = writer.prev.trailer_view["/Info"]
        return str(info["/Title"]) if "/Title" in info else None
    except (KeyError, TypeError, ValueError):
        return None


def embed_record(writer: IncrementalPdfFileWriter, record: SealedRecord) -> None:
    """Give the revision being sealed an ``/Info`` with the record and a title ending with the licence number."""
    title = sealed_title(_old_title(writer), record.number)
    info = generic.DictionaryObject({
        generic.NameObject("/Title"): generic.TextStringObject(title),
        generic.NameObject(RECORD_KEY): generic.TextStringObject(record.qr),
    })
    writer.set_info(info)
    writer.document_meta.title = title  # pyHanko writes it to the XMP metadata too, when the document has one
