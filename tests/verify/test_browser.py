"""The verification page in a real browser (headless Chromium at a phone's size): what a person sees."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ecert.container import Container
from ecert.runtime import Runtime
from tests.support.images import png_pixels as _png_pixels
from tests.verify.conftest import Issued

pytestmark = pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is installed by scripts/install-system-tools.sh")
_CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=390,844"]
_BANNER = {"valid": "15803d", "revoked": "b91c1c", "unknown": "4b5563"}


def _run(*args: str) -> str:
    return subprocess.run([*_CHROMIUM, *args], check=True, capture_output=True, text=True, timeout=120).stdout


@pytest.mark.parametrize("case,lang,expected", [
    ("valid", "zh", ["有效", "营业执照", "状态变更记录", "已记入公开日志"]),
    ("revoked", "en", ["Revoked", "illegal business", "Status history", "Business licence"]),
    ("unknown", "en", ["No such licence", "Check that the link is complete"]),
])
def test_page_in_headless_chromium(live_url: str, issued: Issued, runtime: Runtime, container: Container, artifacts: Path, tmp_path: Path,
                                   case: str, lang: str, expected: list[str]) -> None:
    token = "Z" * 24 if case == "unknown" else issued.token(case)
    url = f"{live_url}/v/{token}?lang={lang}"
    shot = tmp_path / f"{case}.png"
    dom = _run(f"--screenshot={shot}", "--dump-dom", url)
    for text in expected:
        assert text in dom, (text, dom[:2000])
    if case != "unknown":
        assert issued.licences[case].number in dom
    shutil.copy(shot, artifacts / f"verify-{case}-{lang}.png")
    width, height, rows = _png_pixels(shot.read_bytes())
    assert (width, height) == (390, 844)
    colour = bytes.fromhex(_BANNER[case])
    assert sum(1 for row in rows[:300] for x in range(width) if row[3 * x:3 * x + 3] == colour) > 20_000  # the big banner
