"""PDF upload verification: the genuine copy passes; every hostile or broken input gets a clear verdict."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ca.service import CertificateAuthority
from verify.model import Outcome, Verdict
from verify.online import PdfVerifier, trust_from_authority
from verify.findings import PdfLimits
from verify.pdf import check_pdf
from tests.support import hostile
from tests.verify.conftest import Issued


def _failed(verdict: Verdict) -> set[str]:
    return {c.name for c in verdict.failed}


def test_the_registered_copy_is_valid(pdf_verifier: PdfVerifier, issued: Issued) -> None:
    verdict = pdf_verifier.verify(issued.pdfs["valid"])
    assert verdict.outcome is Outcome.VALID, [c.reason_en for c in verdict.failed]
    names = [c.name for c in verdict.checks]
    for name in ("readable", "intact", "chain", "timestamp", "unmodified", "seal_at_signing", "seal_now", "issuer",
                 "registered_copy", "record", "status"):
        assert name in names
    assert verdict.licence and verdict.licence.number == issued.licences["valid"].number


def test_a_genuine_pdf_of_a_revoked_or_superseded_licence_says_so(pdf_verifier: PdfVerifier, issued: Issued) -> None:
    revoked = pdf_verifier.verify(issued.pdfs["revoked"])
    assert revoked.outcome is Outcome.REVOKED and _failed(revoked) == {"status"}
    old = pdf_verifier.verify(issued.pdfs["old"])
    assert old.outcome is Outcome.SUPERSEDED and old.licence and old.licence.superseded_by


@pytest.mark.parametrize("case", ["empty", "not_pdf", "truncated", "garbage_after_header", "gigantic"])
def test_unreadable_inputs(pdf_verifier: PdfVerifier, issued: Issued, case: str) -> None:
    pdf = issued.pdfs["valid"]
    data = {"empty": b"", "not_pdf": b"PK\x03\x04 this is a zip file" * 50, "truncated": pdf[: len(pdf) // 2],
            "garbage_after_header": b"%PDF-1.7\n" + b"\xff" * 5000 + b"\n%%EOF\n",
            "gigantic": pdf + b"%" * (pdf_verifier.limits.max_bytes)}[case]
    verdict = pdf_verifier.verify(data)
    assert verdict.outcome is Outcome.UNREADABLE and _failed(verdict) == {"readable"}  # not "forged or altered"
    assert verdict.failed[0].reason_en and verdict.failed[0].reason_zh
    assert "forged" not in verdict.words[1] and "伪造" not in verdict.words[0] and not verdict.outcome.good


def test_encrypted(pdf_verifier: PdfVerifier, issued: Issued, tmp_path: Path) -> None:
    verdict = pdf_verifier.verify(hostile.encrypted(issued.pdfs["valid"], tmp_path))
    assert verdict.outcome is Outcome.UNREADABLE and "encrypted" in verdict.failed[0].reason_en


def test_zip_bomb_is_refused_quickly_with_bounded_memory(pdf_verifier: PdfVerifier, issued: Issued) -> None:
    bomb = hostile.zip_bomb(issued.pdfs["valid"])
    assert len(bomb) < 2_000_000
    started = time.monotonic()
    verdict = pdf_verifier.verify(bomb)
    assert time.monotonic() - started < 5
    assert verdict.outcome is Outcome.UNREADABLE and "zip bomb" in verdict.failed[0].reason_en


def test_unsigned(pdf_verifier: PdfVerifier, issued: Issued) -> None:
    verdict = pdf_verifier.verify(hostile.unsigned_licence(issued.licences["valid"]))
    assert verdict.outcome is Outcome.INVALID and _failed(verdict) == {"signed"}


def test_signed_by_a_stranger_naming_a_real_licence(pdf_verifier: PdfVerifier, issued: Issued) -> None:
    forged = hostile.forged(hostile.unsigned_licence(issued.licences["valid"]), issued.department)
    verdict = pdf_verifier.verify(forged)
    assert verdict.outcome is Outcome.INVALID
    assert {"chain", "timestamp"} <= _failed(verdict)
    assert verdict.licence is None  # nothing about the real record is shown for a forgery


def test_content_added_after_sealing(pdf_verifier: PdfVerifier, issued: Issued) -> None:
    verdict = pdf_verifier.verify(hostile.added_content(issued.pdfs["valid"]))
    assert verdict.outcome is Outcome.INVALID and "unmodified" in _failed(verdict)


def test_title_rewritten_to_another_licence(pdf_verifier: PdfVerifier, issued: Issued) -> None:
    verdict = pdf_verifier.verify(hostile.changed_title(issued.pdfs["revoked"], issued.licences["valid"].number))
    assert verdict.outcome is Outcome.INVALID and _failed(verdict) == {"unmodified", "claimed_licence"}  # /Info is content too
    claimed = next(c for c in verdict.failed if c.name == "claimed_licence")
    assert issued.licences["revoked"].number in claimed.reason_en  # the number as signed


def test_a_flipped_byte_breaks_the_seal(pdf_verifier: PdfVerifier, issued: Issued) -> None:
    verdict = pdf_verifier.verify(hostile.flipped(issued.pdfs["valid"]))
    assert verdict.outcome is Outcome.INVALID and _failed(verdict) & {"intact", "readable"}


def test_document_checks_need_no_database(authority: CertificateAuthority, issued: Issued, runtime) -> None:  # type: ignore[no-untyped-def]
    findings = check_pdf(issued.pdfs["valid"], trust_from_authority(authority), now=runtime.clock.now(), limits=PdfLimits())
    assert findings.passed and findings.number == issued.licences["valid"].number and findings.department == issued.department


def test_signature_wrapping_is_caught(pdf_verifier: PdfVerifier, issued: Issued) -> None:
    data = hostile.wrapped(issued.pdfs["valid"])
    assert len(data) == len(issued.pdfs["valid"]) and data != issued.pdfs["valid"]
    verdict = pdf_verifier.verify(data)
    assert verdict.outcome is Outcome.INVALID and verdict.failed[0].reason_en
