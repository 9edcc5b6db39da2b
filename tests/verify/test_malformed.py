"""Malformed signature dictionaries and oversized revision chains: a verdict every time, online and offline, never a crash."""

from __future__ import annotations

import time

import pytest

from ca.service import CertificateAuthority
from tests.support import hostile
from tests.verify.conftest import Issued
from verify.bundle import LoadedBundle, load_bundle
from verify.model import Outcome, Verdict
from verify.offline import verify_pdf_offline
from verify.online import PdfVerifier
from verify.publisher import BundlePublisher


@pytest.fixture(scope="module")
def bundle(publisher: BundlePublisher, authority: CertificateAuthority, issued: Issued) -> LoadedBundle:
    return load_bundle(publisher.build(), pinned_root=authority.hierarchy().root.certificate)


def _both(pdf_verifier: PdfVerifier, bundle: LoadedBundle, data: bytes) -> tuple[Verdict, Verdict]:
    started = time.monotonic()
    online = pdf_verifier.verify(data)
    offline = verify_pdf_offline(data, bundle, now=pdf_verifier.clock.now())
    assert time.monotonic() - started < 10  # each check well under 5 s
    return online, offline


@pytest.mark.parametrize("case", sorted(hostile.MALFORMED_SIGNATURES))
def test_a_malformed_signature_dictionary_gets_a_verdict(pdf_verifier: PdfVerifier, bundle: LoadedBundle, issued: Issued,
                                                         case: str) -> None:
    data = hostile.malformed_signature(issued.pdfs["valid"], case)
    for verdict in _both(pdf_verifier, bundle, data):
        assert verdict.outcome is Outcome.INVALID, case
        assert verdict.failed and all(c.reason_en and c.reason_zh for c in verdict.failed)


def test_contents_zeroed_in_place(pdf_verifier: PdfVerifier, bundle: LoadedBundle, issued: Issued) -> None:
    for verdict in _both(pdf_verifier, bundle, hostile.contents_zeroed_in_place(issued.pdfs["valid"])):
        assert verdict.outcome is Outcome.INVALID and verdict.failed


def test_thousands_of_incremental_updates_are_refused_quickly(pdf_verifier: PdfVerifier, bundle: LoadedBundle, issued: Issued) -> None:
    data = hostile.many_updates(issued.pdfs["valid"], 2200)
    for verdict in _both(pdf_verifier, bundle, data):
        assert verdict.outcome is Outcome.UNREADABLE
        assert any("revisions" in c.reason_en for c in verdict.failed), [c.reason_en for c in verdict.failed]
