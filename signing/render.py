"""The e-licence PDF, drawn with reportlab from a :class:`LicenceDocument`.

Chinese text uses reportlab's built-in CID font ``STSong-Light`` (Adobe-GB1, not embedded: every
PDF reader ships it), so no font file is needed. The QR code is encoded by zxing-cpp and drawn as
one path of module runs. Output is deterministic for the same document (``invariant=1``), so tests
can compare bytes.

The seal goes in :data:`SEAL_BOX` on the last page, which the layout keeps free.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

import zxingcpp
from reportlab import rl_config
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

from certificates.sealing import LicenceDocument
from ecert.localtime import local_time

__all__ = ["render_licence", "RenderedLicence", "QrMatrix", "qr_matrix", "SEAL_BOX", "CJK_FONT"]

CJK_FONT = "STSong-Light"
LATIN_FONT = "Helvetica"
PAGE_W, PAGE_H = A4
MARGIN = 20 * mm
QR_SIZE = 50 * mm  # 25-module codes print at 2 mm a module; phones read them from 30 cm
SEAL_BOX = (PAGE_W - MARGIN - 72 * mm, MARGIN + 6 * mm, PAGE_W - MARGIN, MARGIN + 6 * mm + 40 * mm)
_BOTTOM = MARGIN + QR_SIZE + 16 * mm  # rows stop here; QR and seal live below
_VALUE_X = MARGIN + 58 * mm
_VALUE_W = PAGE_W - MARGIN - _VALUE_X


def _register_fonts() -> None:
    rl_config.useA85 = 0  # binary streams: smaller and faster than ASCII85 (we never need 7-bit PDFs)
    if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))


@dataclass(frozen=True)
class RenderedLicence:
    pdf: bytes
    pages: int

    @property
    def seal_page(self) -> int:
        return self.pages - 1


def _day(moment: dt.datetime | None) -> str:
    return "长期有效 / No expiry" if moment is None else local_time().day(moment)


def _rows(document: LicenceDocument, issuer_name: str) -> Iterator[tuple[str, str, str]]:
    yield "证照编号", "Licence No.", document.number
    yield "持证主体", "Holder", document.holder_name
    for row in document.rows:
        yield row.label_zh, row.label_en, row.value
    yield "发证机关", "Issuing authority", f"{issuer_name} ({document.department_code})"
    yield "有效期自", "Valid from", _day(document.valid_from)
    yield "有效期至", "Valid until", _day(document.valid_until)
    yield "签发时间", "Issued at", local_time().minute(document.issued_at)


@dataclass(frozen=True)
class QrMatrix:
    """A QR code as runs of dark modules: ``size`` modules a side (no quiet zone), runs (row, column, length)."""

    size: int
    runs: tuple[tuple[int, int, int], ...]


_DARK = bytes(0x31 if value < 128 else 0x30 for value in range(256))  # pixel -> b"1" dark / b"0" light
_RUN = re.compile(b"1+")


def qr_matrix(text: str) -> QrMatrix:
    """The QR code (error correction level M) of ``text``.

    Encoded by zxing-cpp (C++): reportlab's pure-Python encoder took ~10 ms for a licence's QR string, a
    third of the CPU of a sealed issuance; this takes ~2 ms.
    """
    barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    pixels = memoryview(barcode.to_image(scale=1, add_quiet_zones=False))  # type: ignore[arg-type]  # a buffer; stubs omit it
    size = len(pixels)  # rows (the image is square)
    dark = pixels.tobytes().translate(_DARK)
    runs = tuple((row, found.start() - row * size, found.end() - found.start())
                 for row in range(size) for found in _RUN.finditer(dark, row * size, (row + 1) * size))
    return QrMatrix(size, runs)


def _draw_qr(canvas: Canvas, text: str, x: float, y: float, size: float) -> None:
    """One filled path of horizontal runs, in module units under one ``cm``: few, short operators."""
    matrix = qr_matrix(text)
    quiet = 4  # the quiet zone the standard asks for, in modules
    count = matrix.size + 2 * quiet
    box = size / count
    ops = [f"q 0 g {box:.4f} 0 0 {box:.4f} {x:.3f} {y:.3f} cm"]
    ops += [f"{quiet + column} {count - quiet - 1 - row} {length} 1 re" for row, column, length in matrix.runs]
    ops.append("f Q")
    canvas.addLiteral("\n".join(ops))


def _wrap(text: str, size: float, width: float) -> list[str]:
    """Greedy line breaking by character (Chinese has no spaces to break at)."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for char in paragraph:
            if line and pdfmetrics.stringWidth(line + char, CJK_FONT, size) > width:
                lines.append(line)
                line = char.lstrip()
            else:
                line += char
        lines.append(line)
    return lines


class _Page:
    """The drawing cursor: one canvas, a y position, and page breaks."""

    def __init__(self, canvas: Canvas, document: LicenceDocument) -> None:
        self.canvas = canvas
        self.document = document
        self.pages = 1
        self.y = self._frame()

    def _frame(self) -> float:
        c = self.canvas
        c.setLineWidth(1.2)
        c.rect(MARGIN - 6 * mm, MARGIN - 6 * mm, PAGE_W - 2 * MARGIN + 12 * mm, PAGE_H - 2 * MARGIN + 12 * mm)
        c.setFont(CJK_FONT, 26)
        c.drawCentredString(PAGE_W / 2, PAGE_H - MARGIN - 14 * mm, self.document.type_name_zh)
        c.setFont(LATIN_FONT, 13)
        c.drawCentredString(PAGE_W / 2, PAGE_H - MARGIN - 22 * mm, self.document.type_name_en)
        c.setLineWidth(0.5)
        c.line(MARGIN, PAGE_H - MARGIN - 28 * mm, PAGE_W - MARGIN, PAGE_H - MARGIN - 28 * mm)
        return PAGE_H - MARGIN - 40 * mm

    def row(self, label_zh: str, label_en: str, value: str) -> None:
        lines = _wrap(value or "—", 12, _VALUE_W)
        height = max(len(lines) * 16, 26) + 8
        if self.y - height < _BOTTOM:
            self.canvas.showPage()
            self.pages += 1
            self.y = self._frame()
        c = self.canvas
        c.setFont(CJK_FONT, 12)
        c.drawString(MARGIN, self.y, label_zh)
        c.setFont(LATIN_FONT, 8)
        c.drawString(MARGIN, self.y - 11, label_en)
        c.setFont(CJK_FONT, 12)
        for number, line in enumerate(lines):
            c.drawString(_VALUE_X, self.y - number * 16, line)
        self.y -= height

    def footer(self) -> None:
        c = self.canvas
        _draw_qr(c, self.document.qr, MARGIN, MARGIN + 6 * mm, QR_SIZE)
        c.setFont(CJK_FONT, 9)
        c.drawString(MARGIN, MARGIN, "扫码核验 Scan to verify")
        c.setFont(LATIN_FONT, 7)
        c.drawRightString(PAGE_W - MARGIN, MARGIN, f"{self.document.type_code} v{self.document.type_version}")


def render_licence(document: LicenceDocument, *, issuer_name: str) -> RenderedLicence:
    """Draw the licence; ``issuer_name`` is the department's name (from its seal certificate)."""
    _register_fonts()
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=A4, invariant=1, pageCompression=1, pdfVersion=(1, 7))
    canvas.setTitle(f"{document.type_name_zh} {document.number}")
    canvas.setAuthor(issuer_name)
    canvas.setSubject(document.type_name_en)
    canvas.setCreator("ecert")
    page = _Page(canvas, document)
    for label_zh, label_en, value in _rows(document, issuer_name):
        page.row(label_zh, label_en, value)
    page.footer()
    canvas.showPage()
    canvas.save()
    return RenderedLicence(out.getvalue(), page.pages)
