"""The seal binds the licence: number, department, QR and title agree with ecert's signed record, online and offline.

The corpus is built from genuine licences: one of department A (the session's ``issued``), and in department B
a rendered licence and a with-document licence whose PDF shows A's licence (A's number, title and QR).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlmodel import Session

from ca.service import CertificateAuthority
from certificates.blobs import DatabaseBlobStore
from certificates.issuance import Actor, Issuer
from certificates.models import Licence
from certificates.sealing import SealedRecord
from ecert.clock import SystemClock
from ecert.db import session_scope
from ecert.runtime import Runtime
from signing.sealer import PadesSealer
from tests.certificates.conftest import request_for, uscc
from tests.support import hostile
from tests.verify.conftest import PUBLIC_URL, Issued, issue_for, new_department
from verify.bundle import LoadedBundle, load_bundle
from verify.model import Outcome, Verdict
from verify.offline import verify_pdf_offline
from verify.online import PdfVerifier
from verify.publisher import BundlePublisher


@dataclass
class Corpus:
    a: Licence  # department A's licence
    b: Licence  # department B's rendered licence
    with_document: Licence  # department B's licence on B's own PDF, which shows A's licence
    pdfs: dict[str, bytes]


def _pdf(runtime: Runtime, licence: Licence) -> bytes:
    with Session(runtime.engine) as session:
        return DatabaseBlobStore().get(session, licence.pdf_blob_key or "")


@pytest.fixture(scope="module")
def corpus(runtime: Runtime, authority: CertificateAuthority, sealer: PadesSealer, issued: Issued) -> Corpus:
    code = new_department(runtime, authority)
    b = issue_for(runtime, authority, sealer, code)[0]
    a = issued.licences["valid"]
    issuer = Issuer(keystore=runtime.keystore, clock=SystemClock(), blobs=DatabaseBlobStore(), seal_keys=authority,
                    sealer=sealer, public_url=PUBLIC_URL)
    actor = Actor(subject="client:verify-test", department=code)
    shows_a = hostile.unsigned_licence(a)  # A's number, title and QR, with B's own fields drawn
    with session_scope(runtime.engine) as session:
        prepared = issuer.prepare(session, actor, code, request_for(holder_id=uscc(), document=shows_a))
        row = issuer.issue_batch(session, actor, [prepared])[0]
    with Session(runtime.engine, expire_on_commit=False) as session:
        with_document = session.get(Licence, row.id)
    assert with_document is not None
    pdfs = {"a": issued.pdfs["valid"], "b": _pdf(runtime, b), "with_document": _pdf(runtime, with_document)}
    # what the sealer made before records existed: B's seal over a PDF titled as A's licence, no record
    pdfs["no_record"] = sealer.seal_uploaded(code, shows_a)
    # records that disagree with the document or the seal (what a faulty issuance would seal)
    pdfs["record_of_another_department"] = sealer.seal_uploaded(code, shows_a, SealedRecord(a.number, code, a.qr_payload or ""))
    pdfs["title_names_another_licence"] = sealer.seal_uploaded(code, shows_a, SealedRecord(with_document.number, code, b.qr_payload or ""))
    link_of_b, _, _ = (b.qr_payload or "").partition("#")
    _, _, payload = (with_document.qr_payload or "").partition("#")
    pdfs["link_and_payload_differ"] = sealer.seal_uploaded(code, shows_a, SealedRecord(with_document.number, code, f"{link_of_b}#{payload}"))
    return Corpus(a, b, with_document, pdfs)


@pytest.fixture(scope="module")
def bundle(publisher: BundlePublisher, authority: CertificateAuthority, corpus: Corpus) -> LoadedBundle:
    return load_bundle(publisher.build(), pinned_root=authority.hierarchy().root.certificate)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _failed(verdict: Verdict) -> set[str]:
    return {c.name for c in verdict.failed}


@pytest.mark.parametrize("name", ["a", "b", "with_document"])
def test_genuine_licences_are_valid_online_and_offline(pdf_verifier: PdfVerifier, bundle: LoadedBundle, corpus: Corpus, name: str) -> None:
    licence = {"a": corpus.a, "b": corpus.b, "with_document": corpus.with_document}[name]
    online = pdf_verifier.verify(corpus.pdfs[name])
    offline = verify_pdf_offline(corpus.pdfs[name], bundle, now=_now())
    for verdict in (online, offline):
        assert verdict.outcome is Outcome.VALID, [c.reason_en for c in verdict.failed]
        assert verdict.licence and verdict.licence.number == licence.number and verdict.licence.issuer == licence.department_code
        assert "licence_record" in {c.name for c in verdict.checks}
    assert "qr_link" in {c.name for c in online.checks}


def test_a_with_document_licence_that_shows_another_licence_is_only_ever_its_own(pdf_verifier: PdfVerifier, bundle: LoadedBundle,
                                                                                corpus: Corpus) -> None:
    for verdict in (pdf_verifier.verify(corpus.pdfs["with_document"]), verify_pdf_offline(corpus.pdfs["with_document"], bundle, now=_now())):
        assert verdict.licence and verdict.licence.number == corpus.with_document.number != corpus.a.number


def test_a_seal_without_a_record_is_not_genuine_offline_and_not_the_licence_its_title_names(pdf_verifier: PdfVerifier,
                                                                                           bundle: LoadedBundle, corpus: Corpus) -> None:
    offline = verify_pdf_offline(corpus.pdfs["no_record"], bundle, now=_now())
    assert offline.outcome is Outcome.INVALID and {"licence_record", "claimed_licence"} <= _failed(offline) and offline.licence is None
    online = pdf_verifier.verify(corpus.pdfs["no_record"])
    assert online.outcome is Outcome.INVALID and {"issuer", "registered_copy"} <= _failed(online)


@pytest.mark.parametrize("name", ["record_of_another_department", "title_names_another_licence"])
def test_a_record_that_disagrees_is_not_genuine(pdf_verifier: PdfVerifier, bundle: LoadedBundle, corpus: Corpus, name: str) -> None:
    for verdict in (pdf_verifier.verify(corpus.pdfs[name]), verify_pdf_offline(corpus.pdfs[name], bundle, now=_now())):
        assert verdict.outcome is Outcome.INVALID and "licence_record" in _failed(verdict), verdict.checks
        assert verdict.licence is None and "claimed_licence" in _failed(verdict)


def test_a_qr_link_to_another_licence_is_called_out(pdf_verifier: PdfVerifier, corpus: Corpus) -> None:
    verdict = pdf_verifier.verify(corpus.pdfs["link_and_payload_differ"])
    assert verdict.outcome is Outcome.INVALID and "qr_link" in _failed(verdict)
    assert corpus.with_document.number in next(c for c in verdict.failed if c.name == "qr_link").reason_en


@pytest.mark.parametrize("name", ["a", "b", "with_document"])
@pytest.mark.parametrize("attack", ["changed_title", "added_content", "flipped", "wrapped", "contents_zeroed_in_place",
                                    *sorted(hostile.MALFORMED_SIGNATURES)])
def test_attacks_on_every_genuine_licence_are_refused_online_and_offline(pdf_verifier: PdfVerifier, bundle: LoadedBundle,
                                                                        corpus: Corpus, name: str, attack: str) -> None:
    pdf = corpus.pdfs[name]
    if attack == "changed_title":
        data = hostile.changed_title(pdf, corpus.a.number if name != "a" else corpus.b.number)
    elif attack in hostile.MALFORMED_SIGNATURES:
        data = hostile.malformed_signature(pdf, attack)
    else:
        data = getattr(hostile, attack)(pdf)
    for verdict in (pdf_verifier.verify(data), verify_pdf_offline(data, bundle, now=_now())):
        assert verdict.outcome is Outcome.INVALID, (attack, verdict.checks)
        assert verdict.licence is None


def test_the_whole_corpus_over_http_gets_verdicts_and_never_a_5xx(live_url: str, runtime: Runtime, corpus: Corpus) -> None:
    """Every genuine and hostile file of this module posted to the live service: 200 with a verdict or a 4xx problem."""
    import urllib.error
    import urllib.request

    files = dict(corpus.pdfs)
    for name in ("a", "with_document"):
        for attack in ["changed_title", "added_content", "flipped", "wrapped", "contents_zeroed_in_place", *hostile.MALFORMED_SIGNATURES]:
            pdf = corpus.pdfs[name]
            files[f"{name}:{attack}"] = (hostile.changed_title(pdf, corpus.b.number) if attack == "changed_title"
                                         else hostile.malformed_signature(pdf, attack) if attack in hostile.MALFORMED_SIGNATURES
                                         else getattr(hostile, attack)(pdf))
    files.update({"many_updates": hostile.many_updates(corpus.pdfs["a"], 2200), "empty": b"", "png": b"\x89PNG\r\n\x1a\n" + b"\0" * 64,
                  "half": corpus.pdfs["a"][: len(corpus.pdfs["a"]) // 2]})
    statuses: dict[str, int] = {}
    for name, data in files.items():
        request = urllib.request.Request(f"{live_url}/api/v1/verify/pdf", data=data, method="POST",
                                         headers={"Content-Type": "application/pdf", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                statuses[name] = response.status
        except urllib.error.HTTPError as exc:
            statuses[name] = exc.code
    assert not {n: s for n, s in statuses.items() if s >= 500}, statuses
    assert all(s == 200 or 400 <= s < 500 for s in statuses.values())
