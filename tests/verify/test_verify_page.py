"""``/verify``: the page for people (zh/en, no scripts): upload a PDF or paste a QR payload, same verdict rendering as /v/."""

from __future__ import annotations

import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.support.images import png_pixels as _png_pixels
from tests.support import hostile
from tests.verify.conftest import Issued

_CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=390,844"]


def _multipart(fields: dict[str, tuple[str | None, bytes]]) -> tuple[bytes, str]:
    boundary = "ecertboundary7MA4YWxkTrZu0gW"
    parts = []
    for name, (filename, value) in fields.items():
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        kind = "Content-Type: application/pdf\r\n" if filename else ""
        parts.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n{kind}\r\n".encode() + value + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _post(live_url: str, fields: dict[str, tuple[str | None, bytes]], lang: str = "en") -> tuple[int, dict[str, str], str]:
    body, kind = _multipart(fields)
    request = urllib.request.Request(f"{live_url}/verify?lang={lang}", data=body, method="POST", headers={"Content-Type": kind})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read().decode()


def _outcome(page: str) -> str:
    found = re.search(r'data-outcome="([a-z_]+)"', page)
    assert found, page[:500]
    return found.group(1)


def test_the_form_is_a_plain_page_with_the_v_policy(live_url: str) -> None:
    for lang, words in (("zh", "上传电子证照 PDF"), ("en", "Upload an e-licence PDF")):
        with urllib.request.urlopen(f"{live_url}/verify?lang={lang}", timeout=30) as response:
            page, headers = response.read().decode(), response.headers
        assert words in page and "<script" not in page and 'enctype="multipart/form-data"' in page
        policy = headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "form-action 'self'" in policy and "script-src" not in policy
        assert headers["Cache-Control"] == "no-store" and headers["Referrer-Policy"] == "no-referrer"


def test_uploads_and_pasted_payloads_get_the_verdict_page(live_url: str, issued: Issued) -> None:
    status, headers, page = _post(live_url, {"file": ("licence.pdf", issued.pdfs["valid"])})
    assert status == 200 and _outcome(page) == "valid" and issued.licences["valid"].number in page
    assert "form-action 'none'" in headers["content-security-policy"] and "<script" not in page
    status, _, page = _post(live_url, {"file": ("x.pdf", hostile.changed_title(issued.pdfs["valid"], issued.licences["revoked"].number))})
    assert status == 200 and _outcome(page) == "invalid" and issued.licences["valid"].number in page  # names the licence it claims
    status, _, page = _post(live_url, {"file": ("x.pdf", issued.pdfs["valid"][:3000])}, lang="zh")
    assert status == 200 and _outcome(page) == "unreadable" and "无法核验" in page and "伪造" not in page.split('id="checks"')[0]
    status, _, page = _post(live_url, {"qr": (None, (issued.licences["revoked"].qr_payload or "").encode())})
    assert status == 200 and _outcome(page) == "revoked"
    link, _, _ = (issued.licences["valid"].qr_payload or "").partition("#")
    _, _, payload = (issued.licences["suspended"].qr_payload or "").partition("#")
    status, _, page = _post(live_url, {"qr": (None, f"{link}#{payload}".encode())})
    assert _outcome(page) == "invalid" and issued.licences["suspended"].number in page and "put together" in page


@pytest.mark.parametrize("fields,code", [({}, 422), ({"qr": (None, b"hello")}, 422), ({"file": ("e.pdf", b"")}, 422)])
def test_a_form_without_something_to_check_shows_the_form_again(live_url: str, fields: dict[str, tuple[str | None, bytes]],
                                                                code: int) -> None:
    status, headers, page = _post(live_url, fields)
    assert status == code and 'id="error"' in page and "<form" in page and "form-action 'self'" in headers["content-security-policy"]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is installed by scripts/install-system-tools.sh")
@pytest.mark.parametrize("lang,expected", [("zh", ["电子证照核验", "电子证照 PDF 文件", "二维码内容", "核验"]),
                                           ("en", ["E-licence verification", "E-licence PDF file", "QR code", "Verify"])])
def test_the_form_in_headless_chromium_at_phone_width(live_url: str, artifacts: Path, tmp_path: Path, lang: str,
                                                      expected: list[str]) -> None:
    shot = tmp_path / f"form-{lang}.png"
    dom = subprocess.run([*_CHROMIUM, f"--screenshot={shot}", "--dump-dom", f"{live_url}/verify?lang={lang}"], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    for text in expected:
        assert text in dom, (text, dom[:2000])
    shutil.copy(shot, artifacts / f"verify-form-{lang}.png")
    width, height, rows = _png_pixels(shot.read_bytes())
    assert (width, height) == (390, 844)
    button = bytes.fromhex("1d4ed8")  # the submit button is on screen at phone width
    assert sum(1 for row in rows for x in range(width) if row[3 * x:3 * x + 3] == button) > 5_000
