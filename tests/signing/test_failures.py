"""When the TSA or the revocation source misbehaves, sealing stops with a retryable error, and
concurrent callers share one sealer safely."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509

from keys import TransitKeyStore
from pyhanko.pdf_utils.reader import PdfFileReader

from signing.errors import InvalidPdf, SealingUnavailable
from signing.render import SEAL_BOX, render_licence
from signing.sealer import PadesSealer
from tests.support.pdf_checks import check_all
from tests.signing.conftest import DEPARTMENT, PdfSig, licence
from tests.support.pki import TestPki, TestTsa


class ImprintSwappingTsa:
    """A TSA that stamps something other than what it was asked to (a broken or hostile TSA)."""

    def __init__(self, tsa: TestTsa) -> None:
        self.tsa = tsa

    def timestamp(self, message_imprint: bytes, hash_name: str, *, nonce: int | None = None) -> bytes:
        return self.tsa.timestamp(bytes(reversed(message_imprint)), hash_name, nonce=nonce)


class RefusingTsa:
    def timestamp(self, message_imprint: bytes, hash_name: str, *, nonce: int | None = None) -> bytes:
        raise RuntimeError("policy not accepted")


class SilentRevocation:
    """A revocation source whose OCSP responder is down."""

    def __init__(self, pki: TestPki) -> None:
        self.pki = pki

    def crl_for(self, issuer: x509.Certificate) -> bytes:
        return self.pki.revocation.crl_for(issuer)

    def ocsp_for(self, certificate: x509.Certificate, issuer: x509.Certificate) -> bytes:
        raise ConnectionError("OCSP responder unreachable")


def test_a_token_over_the_wrong_imprint_is_refused(keystore: TransitKeyStore, pki: TestPki) -> None:
    sealer = PadesSealer(keystore, pki, ImprintSwappingTsa(pki.tsa), None)
    with pytest.raises(SealingUnavailable, match="different message imprint"):
        sealer.seal(DEPARTMENT, [licence(600)])


def test_a_tsa_that_refuses_makes_sealing_unavailable(keystore: TransitKeyStore, pki: TestPki) -> None:
    with pytest.raises(SealingUnavailable, match="policy not accepted"):
        PadesSealer(keystore, pki, RefusingTsa(), None).seal(DEPARTMENT, [licence(601)])


def test_missing_revocation_data_makes_sealing_unavailable(keystore: TransitKeyStore, pki: TestPki) -> None:
    with pytest.raises(SealingUnavailable, match="OCSP responder unreachable"):
        PadesSealer(keystore, pki, pki.tsa, SilentRevocation(pki)).seal(DEPARTMENT, [licence(602)])


def test_a_failed_batch_leaves_nothing_primed(keystore: TransitKeyStore, pki: TestPki) -> None:
    sealer = PadesSealer(keystore, pki, ImprintSwappingTsa(pki.tsa), None)
    with pytest.raises(SealingUnavailable):
        sealer.seal(DEPARTMENT, [licence(n) for n in range(610, 615)])
    assert sealer._seal_for(DEPARTMENT).signer._primed == {}  # noqa: SLF001


def test_concurrent_single_calls_are_coalesced_into_few_vault_round_trips(
    keystore: TransitKeyStore, pki: TestPki, pdfsig: PdfSig, tmp_path: Path
) -> None:
    sealer = PadesSealer(keystore, pki, pki.tsa, pki.revocation)
    sealer.seal(DEPARTMENT, [licence(800)])  # warm: seal state, size probe, validation data
    trips = sealer._seal_for(DEPARTMENT).signer.round_trips  # noqa: SLF001
    start = threading.Barrier(8)

    def one(n: int) -> bytes:
        start.wait()
        (pdf,) = sealer.seal(DEPARTMENT, [licence(810 + n)])
        return pdf

    with ThreadPoolExecutor(8) as pool:
        pdfs = list(pool.map(one, range(8)))
    assert sealer._seal_for(DEPARTMENT).signer.round_trips - trips < 8  # noqa: SLF001
    assert len(set(pdfs)) == 8
    for n in (0, 7):  # each caller got its own licence back
        assert licence(810 + n).number.encode("utf-16-be") in PdfFileReader(io.BytesIO(pdfs[n])).trailer_view["/Info"]["/Title"].encode("utf-16-be")
        assert check_all(pdfs[n], pki, pdfsig, tmp_path / f"{n}.pdf").all_pass


def test_one_bad_upload_does_not_fail_the_licences_sealed_with_it(
    keystore: TransitKeyStore, pki: TestPki
) -> None:
    sealer = PadesSealer(keystore, pki, pki.tsa, pki.revocation)
    sealer.seal(DEPARTMENT, [licence(820)])
    (certified,) = sealer.seal(DEPARTMENT, [licence(821)])  # a sealed licence: certified, no changes allowed
    start = threading.Barrier(4)

    def call(n: int) -> object:
        start.wait()
        try:
            if n == 0:
                return sealer.seal_uploaded(DEPARTMENT, certified)  # certified "no changes": refused
            return sealer.seal(DEPARTMENT, [licence(830 + n)])
        except InvalidPdf as exc:
            return exc

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(call, range(4)))
    assert isinstance(outcomes[0], InvalidPdf)
    assert all(isinstance(o, list) and len(o) == 1 for o in outcomes[1:])
    # and deterministically: a group holding the bad upload and a licence is split, not failed whole
    from signing.sealer import _Job, _Ticket  # noqa: PLC0415 - the coalescing internals

    seal = sealer._seal_for(DEPARTMENT)  # noqa: SLF001
    bad = _Ticket(seal, [_Job(certified, 0, SEAL_BOX, certify=False)])
    rendered = render_licence(licence(840), issuer_name=seal.name)
    good = _Ticket(seal, [_Job(rendered.pdf, 0, SEAL_BOX, certify=True)])
    sealer._seal_group([bad, good])  # noqa: SLF001
    assert bad.done and bad.error is not None and bad.result is None
    assert good.done and good.error is None and good.result is not None and len(good.result) == 1


def test_threads_sharing_one_sealer_all_get_valid_pdfs(
    sealer: PadesSealer, pki: TestPki, pdfsig: PdfSig, tmp_path: Path
) -> None:
    # A fresh sealer, so the threads also race on its first use (caches, size probe, evidence).
    fresh = PadesSealer(sealer.keystore, pki, pki.tsa, pki.revocation)
    crl_calls = pki.revocation.crl_calls
    with ThreadPoolExecutor(4) as pool:
        batches = list(pool.map(lambda k: fresh.seal(DEPARTMENT, [licence(700 + 10 * k + i) for i in range(2)]), range(8)))
    assert pki.revocation.crl_calls - crl_calls == 2  # validation data fetched once (two CAs), not per thread
    pdfs = [pdf for batch in batches for pdf in batch]
    assert len(set(pdfs)) == 16
    for n, pdf in enumerate(pdfs[::4]):
        assert check_all(pdf, pki, pdfsig, tmp_path / f"{n}.pdf").all_pass
