"""pyHanko's checks in worker processes: the same findings as in-process, and a check past its deadline is killed."""

from __future__ import annotations

import multiprocessing

import pytest

from ca.service import CertificateAuthority
from tests.support import hostile
from tests.verify.conftest import Issued
from verify.findings import PdfLimits, check_document
from verify.isolation import IsolatedChecks
from verify.online import trust_from_authority
from verify.pdf import check_pdf


@pytest.fixture(scope="module")
def outside_profile(issued: Issued) -> bytes:
    """A genuine seal with an incremental update after it: only pyHanko's path can judge it."""
    return hostile.added_content(issued.pdfs["valid"])


def _workers() -> set[int | None]:
    """The PDF-check workers alive in this process (other fixtures' verifiers have some too)."""
    return {p.pid for p in multiprocessing.active_children() if p.name == "ecert-pdf-check"}


def test_a_worker_finds_what_the_caller_would(authority: CertificateAuthority, issued: Issued, outside_profile: bytes, runtime) -> None:  # type: ignore[no-untyped-def]
    trust, now = trust_from_authority(authority), runtime.clock.now()
    checks = IsolatedChecks(workers=1, deadline=60)
    try:
        for data in (outside_profile, hostile.malformed_signature(issued.pdfs["valid"], "contents_garbage_der"), b"not a pdf"):
            assert checks.check(data, trust, now=now, limits=PdfLimits()) == check_pdf(data, trust, now=now, limits=PdfLimits())
        assert check_document(outside_profile, trust, now=now, isolation=checks) == check_pdf(outside_profile, trust, now=now)
    finally:
        checks.close()


def test_a_check_past_its_deadline_is_stopped_and_refused(authority: CertificateAuthority, outside_profile: bytes, runtime) -> None:  # type: ignore[no-untyped-def]
    trust, now = trust_from_authority(authority), runtime.clock.now()
    others = _workers()
    checks = IsolatedChecks(workers=1, deadline=0.001)  # far less than pyHanko needs for any PDF
    try:
        found = checks.check(outside_profile, trust, now=now, limits=PdfLimits())
        assert not found.passed and [c.name for c in found.checks] == ["readable"]
        assert "took longer than" in found.checks[0].reason_en and found.checks[0].reason_zh
        assert _workers() <= others  # the work stopped: its process is gone
        checks.deadline = 60
        again = checks.check(outside_profile, trust, now=now, limits=PdfLimits())  # a fresh worker takes the slot
        assert again == check_pdf(outside_profile, trust, now=now, limits=PdfLimits())
    finally:
        checks.close()
    assert _workers() <= others
