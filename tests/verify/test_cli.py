"""``ecert verify``: offline from a bundle file (PDF and QR), online against the live server, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ecert.container import Container
from ecert.cli import main
from ecert.runtime import Runtime
from tests.support import hostile
from tests.verify.conftest import Issued
from verify.publisher import BundlePublisher


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, publisher: BundlePublisher, issued: Issued, authority) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("cli")
    paths = {"bundle": root / "bundle.json", "pdf": root / "licence.pdf", "forged": root / "forged.pdf", "qr": root / "qr.txt",
             "root": root / "root.pem"}
    paths["bundle"].write_bytes(publisher.build())
    paths["pdf"].write_bytes(issued.pdfs["valid"])
    paths["forged"].write_bytes(hostile.forged(hostile.unsigned_licence(issued.licences["valid"]), issued.department))
    paths["qr"].write_text(issued.licences["valid"].qr_payload or "")
    paths["root"].write_bytes(authority.hierarchy().root.pem)
    return paths


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_offline_pdf_and_qr(files: dict[str, Path], issued: Issued, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "verify", str(files["pdf"]), "--bundle", str(files["bundle"]), "--root", str(files["root"]), "--json")
    result = json.loads(out)
    assert code == 0 and result["kind"] == "pdf" and result["offline"]["outcome"] == "valid"  # the signed record names its status-list slot
    assert result["offline"]["bundle"]["root_pinned"] is True
    code, out = _run(capsys, "verify", str(files["qr"]), "--bundle", str(files["bundle"]))
    assert code == 0 and "Valid" in out and issued.licences["valid"].number in out and "trust bundle" in out
    code, out = _run(capsys, "verify", issued.licences["expired"].qr_payload or "", "--bundle", str(files["bundle"]), "--json")
    assert code == 1 and json.loads(out)["offline"]["outcome"] == "expired"


def test_offline_forgery_and_bad_bundle(files: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out = _run(capsys, "verify", str(files["forged"]), "--bundle", str(files["bundle"]))
    assert code == 1 and "FAIL" in out
    broken = tmp_path / "broken.json"
    broken.write_bytes(files["bundle"].read_bytes().replace(b"ecert-trust-bundle/1", b"x"))
    assert main(["verify", str(files["pdf"]), "--bundle", str(broken)]) == 2
    assert main(["verify", str(files["pdf"])]) == 2  # neither --bundle nor --online


def test_online_adds_live_status(files: dict[str, Path], issued: Issued, live_url: str, runtime: Runtime, container: Container,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "verify", issued.licences["revoked"].qr_payload or "", "--bundle", str(files["bundle"]),
                     "--online", live_url, "--json")
    result = json.loads(out)
    assert code == 1 and result["offline"]["outcome"] == "revoked" and result["online"]["outcome"] == "revoked"
    code, out = _run(capsys, "verify", str(files["pdf"]), "--online", live_url, "--json")
    assert code == 0 and json.loads(out)["online"]["outcome"] == "valid"


def test_offline_check_of_one_pdf_as_a_fresh_process(files: dict[str, Path]) -> None:
    """Start-up included (the counter-terminal case); the time is reported in docs/benchmarks.md, not asserted."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "ecert.cli", "verify", str(files["pdf"]), "--bundle", str(files["bundle"]), "--json"],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "ECERT_DATA_DIR": str(files["pdf"].parent)})
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["offline"]["outcome"] == "valid"
    print(f"offline CLI check of one PDF: {elapsed * 1000:.0f} ms")
    fast = subprocess.run([sys.executable, "-m", "ecert.commands.verify", str(files["qr"]), "--bundle", str(files["bundle"])],
                          capture_output=True, text=True, timeout=60)
    assert fast.returncode == 0 and "Valid" in fast.stdout, fast.stderr


@pytest.mark.parametrize("case", ["contents_missing", "contents_garbage_der", "byterange_missing", "many_updates", "empty", "png"])
def test_hostile_files_get_a_verdict_never_a_traceback(files: dict[str, Path], issued: Issued, case: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    pdf = issued.pdfs["valid"]
    data = {"many_updates": lambda: hostile.many_updates(pdf, 2200), "empty": lambda: b"",
            "png": lambda: b"\x89PNG\r\n\x1a\n" + b"\0" * 100}.get(case, lambda: hostile.malformed_signature(pdf, case))()
    target = tmp_path / "hostile.pdf"
    target.write_bytes(data)
    started = time.monotonic()
    code = main(["verify", str(target), "--bundle", str(files["bundle"]), "--json"])
    captured = capsys.readouterr()
    assert time.monotonic() - started < 10
    assert code == 1 and "Traceback" not in captured.err
    result = json.loads(captured.out)["offline"]
    assert result["outcome"] == ("unreadable" if case in ("many_updates", "empty", "png") else "invalid")
    assert any(not c["passed"] for c in result["checks"])


def test_a_missing_file_is_a_usage_error_not_a_forgery(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["verify", str(tmp_path / "no-such.pdf"), "--bundle", str(files["bundle"])])
    captured = capsys.readouterr()
    assert code == 2 and "no such file" in captured.err and "forged" not in captured.out


def test_a_qr_whose_link_and_payload_name_different_licences_is_called_out(files: dict[str, Path], issued: Issued, live_url: str,
                                                                          runtime: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    link, _, _ = (issued.licences["valid"].qr_payload or "").partition("#")
    _, _, payload = (issued.licences["suspended"].qr_payload or "").partition("#")
    code, out = _run(capsys, "verify", f"{link}#{payload}", "--bundle", str(files["bundle"]), "--online", live_url, "--json")
    result = json.loads(out)
    assert code == 1 and result["good"] is False
    (mismatch,) = [c for c in result["online"]["checks"] if c["name"] == "qr_link"]
    assert issued.licences["valid"].number in mismatch["reason"]["en"] and issued.licences["suspended"].number in mismatch["reason"]["en"]
    assert mismatch["reason"]["zh"]
