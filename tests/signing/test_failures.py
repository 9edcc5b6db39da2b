"""When the TSA or the revocation source misbehaves, sealing stops with a retryable error, and
concurrent callers share one sealer safely."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509

from keys import TransitKeyStore
from signing.errors import SealingUnavailable
from signing.sealer import PadesSealer
from tests.signing.checks import check_all
from tests.signing.conftest import DEPARTMENT, PdfSig, licence
from tests.signing.pki import TestPki, TestTsa


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
