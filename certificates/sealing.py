"""What the library needs from the signing side, as a protocol (wired in by the composition root).

``certificates`` only describes the document; an implementation (over ``signing`` and ``ca``)
renders the PDF from the layout and seals it with the department's seal certificate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from keys import KeyRef

__all__ = ["LicenceDocument", "Sealer", "SealKeys", "FieldRow", "SealedRecord", "RECORD_KEY", "sealed_title"]

#: The ``/Info`` entry of a sealed licence that holds its signed licence record (the QR string: link and JWS),
#: written in the revision the seal signs, so the seal covers it (docs/verification.md, "Binding").
RECORD_KEY = "/ECertLicence"
_TITLE_LIMIT = 200


@dataclass(frozen=True)
class SealedRecord:
    """ecert's signed licence record that a sealed PDF carries: the number, its department and its QR string.

    The QR string's JWS (signed by the department's seal key) states number, department, type, validity, the
    holder/fields digest and the status-list slot; the verifiers bind the seal to it.
    """

    number: str
    department_code: str
    qr: str


def sealed_title(title: str | None, number: str) -> str:
    """The document title a sealed licence carries: the given title ending with the licence number."""
    base = " ".join((title or "").split())[:_TITLE_LIMIT]
    return base if base.endswith(f" {number}") or base == number else f"{base} {number}".strip()


@dataclass(frozen=True)
class FieldRow:
    label_zh: str
    label_en: str
    value: str


@dataclass(frozen=True)
class LicenceDocument:
    """Everything printed on an e-licence."""

    licence_id: str
    number: str
    department_code: str
    type_code: str
    type_version: int
    type_name_zh: str
    type_name_en: str
    holder_kind: str
    holder_name: str
    rows: tuple[FieldRow, ...]
    valid_from: dt.datetime
    valid_until: dt.datetime | None
    issued_at: dt.datetime
    qr: str

    def record(self) -> SealedRecord:
        return SealedRecord(self.number, self.department_code, self.qr)


@runtime_checkable
class SealKeys(Protocol):
    def qr_key(self, department_code: str) -> KeyRef:
        """The Vault key version that signs the department's QR payloads (its seal key)."""
        ...


@runtime_checkable
class Sealer(Protocol):
    def seal(self, department_code: str, documents: Sequence[LicenceDocument]) -> list[bytes]:
        """Render and seal each document; return the signed PDFs in order."""
        ...

    def seal_uploaded(self, department_code: str, pdf: bytes, record: SealedRecord | None = None) -> bytes:
        """Check a department's own PDF (refusing what is not a sound PDF or holds active content) and seal it
        with ``record`` in the sealed revision."""
        ...
