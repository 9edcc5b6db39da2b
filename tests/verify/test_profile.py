"""The seal-profile path (no pyHanko): which path answers, forgeries of the profile's shape, and a cross-check with pyHanko."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ca.service import CertificateAuthority
from tests.support import hostile, profile_forgeries
from tests.verify.conftest import Issued
from verify.findings import PdfLimits, SealFindings, check_document
from verify.online import PdfVerifier, trust_from_authority
from verify.pdf import check_pdf
from verify.profile import check_profile
from verify.publisher import BundlePublisher
from verify.trust import TrustMaterial

GENUINE = ["valid", "revoked", "suspended", "old", "current", "expired", "forgery_victim"]


@pytest.fixture(scope="module")
def trust(authority: CertificateAuthority, issued: Issued) -> TrustMaterial:
    return trust_from_authority(authority)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _both(data: bytes, trust: TrustMaterial) -> tuple[SealFindings | None, SealFindings]:
    now = _now()
    return check_profile(data, trust, now=now), check_pdf(data, trust, now=now)


def _failed(findings: SealFindings) -> set[str]:
    return {c.name for c in findings.checks if not c.passed}


@pytest.mark.parametrize("name", GENUINE)
def test_a_genuine_licence_is_answered_by_the_profile_path_as_pyhanko_answers(trust: TrustMaterial, issued: Issued, name: str) -> None:
    lean, general = _both(issued.pdfs[name], trust)
    assert lean is not None and lean.path == "profile" and general.path == "pyhanko"
    assert lean.passed and lean == general  # same checks, reasons, number, department, signing time, digest
    assert lean.number == issued.licences[name].number and lean.department == issued.department
    assert check_document(issued.pdfs[name], trust, now=_now()).path == "profile"


def _hostile_cases(issued: Issued, tmp: Path) -> dict[str, bytes]:
    pdf = issued.pdfs["valid"]
    return {
        "added_content": hostile.added_content(pdf),
        "changed_title": hostile.changed_title(issued.pdfs["revoked"], issued.licences["valid"].number),
        "zip_bomb": hostile.zip_bomb(pdf, size=32 * 1024 * 1024),
        "wrapped": hostile.wrapped(pdf),
        "flipped": hostile.flipped(pdf),
        "encrypted": hostile.encrypted(pdf, tmp),
        "truncated": pdf[: len(pdf) // 2],
        "appended_garbage": pdf + b"\n%garbage after the seal\n%%EOF\n",
        "unsigned": hostile.unsigned_licence(issued.licences["valid"]),
        "empty": b"",
    }


def test_anything_outside_the_profile_falls_back_to_pyhanko_with_the_same_verdict(trust: TrustMaterial, issued: Issued,
                                                                                  tmp_path: Path) -> None:
    for name, data in _hostile_cases(issued, tmp_path).items():
        now = _now()
        assert check_profile(data, trust, now=now) is None, name
        answered = check_document(data, trust, now=now)
        assert answered.path == "pyhanko" and answered == check_pdf(data, trust, now=now), name
        assert not answered.passed or name == "changed_title", name  # its register checks fail (tests/verify/test_pdf.py)


def _forgery(issued: Issued, case: str) -> tuple[bytes, set[str]]:
    """The forged file and the checks that must fail on it."""
    pdf, other = issued.pdfs["valid"], issued.pdfs["suspended"]
    if case == "wrong_digest":
        return profile_forgeries.wrong_digest(pdf), {"intact", "chain"}  # pyHanko judges no chain for a broken signature
    if case == "wrong_signature":
        return profile_forgeries.wrong_signature(pdf, other), {"intact", "chain"}
    if case == "signer_not_ours":
        return hostile.forged(hostile.unsigned_licence(issued.licences["valid"]), issued.department), {"chain", "timestamp"}
    if case == "timestamp_over_other_data":
        return profile_forgeries.timestamp_over_other_data(pdf, other), {"timestamp"}
    assert case == "tsa_not_ours"
    return profile_forgeries.stranger_timestamp(pdf), {"timestamp"}


@pytest.mark.parametrize("case", ["wrong_digest", "wrong_signature", "signer_not_ours", "timestamp_over_other_data", "tsa_not_ours"])
def test_forgeries_of_the_profile_shape_are_rejected_by_the_profile_path(trust: TrustMaterial, issued: Issued, case: str) -> None:
    data, expected = _forgery(issued, case)
    assert len(data) == len(issued.pdfs["valid"]) or case == "signer_not_ours"
    lean, general = _both(data, trust)
    assert lean is not None and lean.path == "profile", "the forgery has the profile's shape: the profile path answers"
    assert not lean.passed and _failed(lean) == {*expected, "claimed_licence"}  # names the licence it claims to be
    assert lean == general  # pyHanko, independently, reaches the same checks and reasons
    if "chain" in expected:
        assert lean.department is None


def test_a_stranger_signature_with_our_timestamp_shape_is_not_trusted(trust: TrustMaterial, issued: Issued) -> None:
    """A self-made CA copying our names cannot pass as ours: signatures decide, not names."""
    data = hostile.forged(hostile.unsigned_licence(issued.licences["valid"]), issued.department)
    lean = check_profile(data, trust, now=_now())
    assert lean is not None and lean.number == issued.licences["valid"].number and "chain" in _failed(lean)


def test_the_online_verifier_uses_the_profile_path(pdf_verifier: PdfVerifier, issued: Issued) -> None:
    findings = pdf_verifier._document_checks(issued.pdfs["current"], _now())  # noqa: SLF001 - which path answered
    assert findings.path == "profile" and findings.passed
    incremental = pdf_verifier._document_checks(hostile.added_content(issued.pdfs["current"]), _now())  # noqa: SLF001
    assert incremental.path == "pyhanko" and "unmodified" in _failed(incremental)


_PROBE = """
import json, sys, datetime as dt
from pathlib import Path
from verify.bundle import load_bundle
from verify.offline import verify_pdf_offline
verdict = verify_pdf_offline(Path(sys.argv[1]).read_bytes(), load_bundle(Path(sys.argv[2]).read_bytes()), now=dt.datetime.now(dt.timezone.utc))
print(json.dumps({"outcome": verdict.outcome.value, "pyhanko": "pyhanko" in sys.modules, "settings": "pydantic_settings" in sys.modules}))
"""


def test_offline_pdf_checks_import_pyhanko_only_for_the_fallback(publisher: BundlePublisher, issued: Issued, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(publisher.build())
    for name, data, outcome, pyhanko in (("genuine", issued.pdfs["valid"], "valid", False),
                                         ("incremental", hostile.added_content(issued.pdfs["valid"]), "invalid", True)):
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(data)
        run = subprocess.run([sys.executable, "-c", _PROBE, str(path), str(bundle)], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout) == {"outcome": outcome, "pyhanko": pyhanko, "settings": False}, name


_CLI_PROBE = """
import contextlib, io, json, sys
from ecert.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = main(["verify", sys.argv[1], "--bundle", sys.argv[2], "--json"])
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"pyhanko", "pydantic_settings", "sqlalchemy", "hvac", "fastapi"})
print(json.dumps({"code": code, "outcome": json.loads(out.getvalue())["offline"]["outcome"], "heavy": heavy}))
"""


def test_the_cli_checks_a_genuine_licence_without_pyhanko_or_settings(publisher: BundlePublisher, issued: Issued, tmp_path: Path) -> None:
    bundle, pdf = tmp_path / "bundle.json", tmp_path / "licence.pdf"
    bundle.write_bytes(publisher.build())
    pdf.write_bytes(issued.pdfs["valid"])
    run = subprocess.run([sys.executable, "-c", _CLI_PROBE, str(pdf), str(bundle)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"code": 0, "outcome": "valid", "heavy": []}


def test_the_profile_path_respects_the_limits(trust: TrustMaterial, issued: Issued) -> None:
    """Limits the pyHanko path would refuse on are not waved through here: tighter limits hand the file over."""
    data = issued.pdfs["valid"]
    assert check_profile(data, trust, now=_now(), limits=PdfLimits(max_stream_bytes=1024)) is None
    assert check_profile(data, trust, now=_now(), limits=PdfLimits(max_objects=5)) is None
    assert check_profile(data, trust, now=_now(), limits=PdfLimits(max_bytes=len(data) - 1)) is None


def _profile_shaped(body: bytes) -> bytes:
    """Unsigned bytes with the profile's outer shape (one /Sig, /ByteRange over the whole file) around ``body``."""
    head = b"%PDF-1.7\n" + body + b"\n1 0 obj\n<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached /Contents "
    gap = b"<" + b"00" * 64 + b">"
    tail = b"\n/ByteRange [0 %010d %010d %010d] >>\nendobj\nstartxref\n0\n%%%%EOF\n"
    a, b = len(head), len(head) + len(gap)
    return head + gap + tail % (a, b, len(tail % (0, 0, 0)))


@pytest.mark.parametrize("body", [b"/Filter [" * 200_000, b"1 " + b" " * 2_000_000 + b"2", b"stream\nx\x9c" * 100_000, b"(" * 2_000_000])
def test_the_profile_reader_stays_linear_on_hostile_bytes(trust: TrustMaterial, body: bytes) -> None:
    import time

    data = _profile_shaped(body)
    started = time.monotonic()
    assert check_profile(data, trust, now=_now()) is None
    assert time.monotonic() - started < 2


def test_ecert_json_before_the_command_still_takes_the_fast_path(publisher: BundlePublisher, issued: Issued, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from ecert.cli import main

    bundle, pdf = tmp_path / "bundle.json", tmp_path / "licence.pdf"
    bundle.write_bytes(publisher.build())
    pdf.write_bytes(issued.pdfs["valid"])
    assert main(["--json", "verify", str(pdf), "--bundle", str(bundle)]) == 0
    assert json.loads(capsys.readouterr().out)["offline"]["outcome"] == "valid"


def test_online_document_checks_of_distinct_pdfs_rate(runtime, authority: CertificateAuthority, link_verifier, issued: Issued) -> None:  # type: ignore[no-untyped-def]
    """PdfVerifier.verify (document checks every time: no cache; register lookup) over distinct licences, one thread.

    Measured, not asserted (docs/benchmarks.md): ``.venv/bin/pytest tests/verify/test_profile.py -k rate -s``.
    """
    import time

    verifier = PdfVerifier(runtime.engine, runtime.clock, authority, link_verifier, cache_size=0)
    pdfs = [issued.pdfs[name] for name in GENUINE]
    for pdf in pdfs:
        verifier.verify(pdf)
    started, rounds = time.perf_counter(), 20
    for _ in range(rounds):
        for pdf in pdfs:
            assert verifier.verify(pdf).outcome.value != "invalid"
    elapsed = time.perf_counter() - started
    print(f"\nPdfVerifier.verify, distinct PDFs, no cache: {rounds * len(pdfs) / elapsed:.0f}/s ({elapsed / rounds / len(pdfs) * 1000:.1f} ms each)")


def test_significant_names_written_with_escapes_are_left_to_pyhanko(trust: TrustMaterial, caplog: pytest.LogCaptureFixture) -> None:
    """``/Byte#52ange`` is /ByteRange to a PDF reader: a second, escaped signature must not hide from the byte scans."""
    caplog.set_level("DEBUG", logger="verify.profile")
    assert check_profile(_profile_shaped(b"2 0 obj\n<< /T#79pe /Sig /Byte#52ange [0 1 2 3] >>\nendobj\n"), trust, now=_now()) is None
    assert "significant name written with # escapes" in caplog.text


def test_a_department_upload_sealed_by_us_is_answered_alike(sealer, trust: TrustMaterial, issued: Issued) -> None:  # type: ignore[no-untyped-def]
    """A department's own PDF (here an unsigned rendering) sealed by PadesSealer.seal_uploaded: the same shape, the same answer."""
    sealed = sealer.seal_uploaded(issued.department, hostile.unsigned_licence(issued.licences["valid"]))
    lean, general = _both(sealed, trust)
    assert lean is not None and lean.passed and lean == general
