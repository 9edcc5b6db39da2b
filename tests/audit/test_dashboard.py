"""The statistics dashboard renders real charts: written by the CLI, screenshotted by headless Chromium."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from audit import record_event
from audit.dashboard import BAR_COLOUR, render_dashboard
from audit.stats import DailyCount, bump
from ecert.db import session_scope
from ecert.runtime import Runtime
from ecert.settings import Settings

from tests.support.cli import run_cli as _cli
from tests.support.images import png_pixels as _png_pixels

START = dt.date(2029, 6, 1)


def test_render_is_escaped_and_complete() -> None:
    rows = [DailyCount("D1", START, "certificates.licence.issue", "<script>", 5),
            DailyCount("D1", START, "verify.link", "", 7)]
    page = render_dashboard(rows, title="Dept <D1>", start=START, end=START + dt.timedelta(days=2))
    assert "<script>" not in page and "&lt;script&gt;" in page and "Dept &lt;D1&gt;" in page
    assert page.count("<svg") == 3 and "Verifications" in page


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is installed by scripts/install-system-tools.sh")
def test_dashboard_screenshot_in_headless_chromium(engine: Engine, runtime: Runtime, settings: Settings, uid: str,
                                                   tmp_path: Path, artifacts: Path) -> None:
    department = f"d{uid}"
    with session_scope(runtime.engine) as session:
        for day in range(30):
            at = dt.datetime.combine(START + dt.timedelta(days=day), dt.time(10), dt.timezone.utc)
            for i in range(1 + day % 7):
                record_event(session, action="certificates.licence.issue", actor="x", department=department,
                             details={"type": ("FOOD/1", "BUILD/1", "TAXI/2")[i % 3]}, at=at)
            bump(session, metric="verify.link", day=at.date(), department=department, n=10 + day)
            bump(session, metric="verify.upload", day=at.date(), department=department, n=3)
    page = tmp_path / "dashboard.html"
    out = _cli(settings, runtime.engine, "stats", "dashboard", "--from", START.isoformat(), "--to",
               (START + dt.timedelta(days=29)).isoformat(), "--department", department, "--out", str(page))
    assert out.returncode == 0, out.stderr
    html = page.read_text()
    assert "FOOD/1" in html and "Licences issued per day" in html
    shot = tmp_path / "dashboard.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={shot}", "--window-size=1000,1400", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    shutil.copy(shot, artifacts / "audit-dashboard.png")
    width, height, rows = _png_pixels(shot.read_bytes())
    assert (width, height) == (1000, 1400)
    bar = bytes.fromhex(BAR_COLOUR[1:])
    coloured = sum(1 for row in rows for x in range(width) if row[3 * x:3 * x + 3] == bar)
    assert coloured > 500  # the daily bars and the first ranked bar are painted
