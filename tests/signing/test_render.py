"""The licence PDF: every field printed (Chinese included), a QR code that scans, stable bytes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import zxingcpp
from PIL import Image

from certificates.sealing import FieldRow
from signing.render import render_licence
from tests.signing.conftest import DEPARTMENT_NAME, licence


def text_of(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "licence.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


def test_every_field_is_printed_and_chinese_text_extracts(tmp_path: Path) -> None:
    document = licence(7)
    text = text_of(render_licence(document, issuer_name=DEPARTMENT_NAME).pdf, tmp_path)
    for expected in (
        "营业执照", "Business licence", document.number, "杭州示例科技有限公司", "统一社会信用代码",
        "Unified social credit code", "91330100MA2XXXXX1X", "法定代表人", "张三", DEPARTMENT_NAME,
        "(ZJSJ01)", "2026-01-01", "2031-01-01", "2026-11-25 12:00 (UTC+08:00)", "扫码核验",
    ):
        assert expected in text, expected


def test_the_qr_code_scans_to_the_documents_qr_string(tmp_path: Path) -> None:
    document = licence(8)
    path = tmp_path / "licence.pdf"
    path.write_bytes(render_licence(document, issuer_name=DEPARTMENT_NAME).pdf)
    # 100 dpi: about what a phone camera resolves from a printout at reading distance
    subprocess.run(["pdftoppm", "-r", "100", "-png", "-singlefile", str(path), str(tmp_path / "page")], check=True)
    found = zxingcpp.read_barcodes(Image.open(tmp_path / "page.png"))
    assert [(r.format, r.text) for r in found] == [(zxingcpp.BarcodeFormat.QRCode, document.qr)]


def test_rendering_is_deterministic() -> None:
    assert render_licence(licence(9), issuer_name="x").pdf == render_licence(licence(9), issuer_name="x").pdf
    assert render_licence(licence(9), issuer_name="x").pdf != render_licence(licence(10), issuer_name="x").pdf


def test_long_content_flows_onto_more_pages_and_the_seal_goes_on_the_last(tmp_path: Path) -> None:
    rows = tuple(FieldRow(f"项目{i}", f"Item {i}", "内容" * 40) for i in range(30))
    rendered = render_licence(licence(11, rows=rows), issuer_name=DEPARTMENT_NAME)
    assert rendered.pages >= 2
    assert rendered.seal_page == rendered.pages - 1
    text = text_of(rendered.pdf, tmp_path)
    assert "项目0" in text and "项目29" in text and "Item 29" in text


def test_open_ended_validity_and_odd_characters(tmp_path: Path) -> None:
    document = licence(12, valid_until=None, holder_name="𠀋 Müller & 李 (测试)", rows=())
    text = text_of(render_licence(document, issuer_name=DEPARTMENT_NAME).pdf, tmp_path)
    assert "长期有效" in text and "No expiry" in text
    assert "李 (测试)" in text
