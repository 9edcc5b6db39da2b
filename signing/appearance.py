"""The visible seal: a red stamp box with the department's name, code and the sealing time.

pyHanko's stamps shape text through a :class:`FontEngine`; its built-in engines are Courier
(Latin only) and embedded OpenType fonts (a font file we do not ship). This engine uses the
same non-embedded Adobe-GB1 CID font as the page (``STSong-Light``, UCS-2 encoding), with
reportlab's metrics, so Chinese department names render in every reader without a font file.
"""

from __future__ import annotations

import datetime as dt

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.font.api import FontEngine, FontEngineFactory, ShapeResult
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.stamp import TextStampStyle
from reportlab.pdfbase import _cidfontdata  # type: ignore[attr-defined]  # private module the stubs leave out

from ecert.localtime import local_time
from signing.render import CJK_FONT

__all__ = ["CidFontEngine", "CidFontEngineFactory", "seal_stamp_style", "seal_text_params"]

_name = generic.NameObject
_RED = (0.78, 0.06, 0.06)


def _pdf(value: object) -> generic.PdfObject:
    """reportlab's font description (Python literals with PDF names as '/X' strings) as pyHanko objects."""
    if isinstance(value, dict):
        return generic.DictionaryObject({_name("/" + k): _pdf(v) for k, v in value.items()})
    if isinstance(value, list):
        return generic.ArrayObject(_pdf(v) for v in value)
    if isinstance(value, str) and value.startswith("/"):
        return _name(value)
    if isinstance(value, str) and value.startswith("(") and value.endswith(")"):
        return generic.TextStringObject(value[1:-1])
    if isinstance(value, float):
        return generic.FloatObject(value)
    if isinstance(value, int):
        return generic.NumberObject(value)
    raise TypeError(f"unexpected font data {value!r}")


class CidFontEngine(FontEngine):
    """Shapes text in a non-embedded Adobe CID font with a UCS-2 CMap (BMP characters only)."""

    def __init__(self, writer: BasePdfFileWriter, face: str = CJK_FONT) -> None:
        self.face = face
        self.encoding = _cidfontdata.defaultUnicodeEncodings[face][1]
        self.widths = _cidfontdata.widthsByUnichar[face]
        super().__init__(writer, face, embedded_subset=False)

    @property
    def uses_complex_positioning(self) -> bool:
        return False

    def shape(self, txt: str) -> ShapeResult:
        safe = "".join(ch if ord(ch) <= 0xFFFF else "\ufffd" for ch in txt)
        data = safe.encode("utf-16-be")
        advance = sum(self.widths.get(ch, 1000) for ch in safe) / 1000
        return ShapeResult(graphics_ops=b"<" + data.hex().encode() + b"> Tj", x_advance=advance, y_advance=0)

    def as_resource(self) -> generic.PdfObject:
        info = dict(_cidfontdata.CIDFontInfo[self.face])
        info.pop("Name", None)
        info["Encoding"] = "/" + self.encoding
        font = _pdf(info)
        assert isinstance(font, generic.DictionaryObject)
        return font


class CidFontEngineFactory(FontEngineFactory):
    def __init__(self, face: str = CJK_FONT) -> None:
        self.face = face

    def create_font_engine(self, writer: BasePdfFileWriter, obj_stream: object = None) -> FontEngine:
        return CidFontEngine(writer, self.face)


_STAMP_TEXT = "电子印章 Electronic seal\n%(department)s\n%(code)s\n%(sealed)s"


def seal_stamp_style() -> TextStampStyle:
    """A red bordered box; the text is filled from :func:`seal_text_params`."""
    return TextStampStyle(
        stamp_text=_STAMP_TEXT,
        border_width=2,
        border_color=_RED,
        text_box_style=TextBoxStyle(font=CidFontEngineFactory(), font_size=10, leading=14, text_color=_RED),
    )


def seal_text_params(department_name: str, department_code: str, sealed_at: dt.datetime) -> dict[str, str]:
    return {
        "department": department_name,
        "code": f"机构代码 Code: {department_code}",
        "sealed": f"签章时间 Sealed: {local_time().second(sealed_at)}",
    }
