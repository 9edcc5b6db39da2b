"""Sealed e-licence PDFs/s through PadesSealer, next to a bare pyHanko signature with a local key.

Run: ``.venv/bin/python -m bench.signing [--seconds 10] [--batch 50] [--pki ca|test]``

A throwaway embedded OpenBao holds every key. ``--pki ca`` (default) uses the real CA
(``ca.CertificateAuthority`` over a temp SQLite database: seal certificate, CRLs, delegated OCSP
responder, TSA); ``--pki test`` the small test PKI of ``tests/support/pki.py``. Measured, all in
one process and one run:

- rendering only (reportlab, the licence page with its QR code);
- PadesSealer, PAdES B-LT (render + seal + TSA token + DSS), batches of ``--batch``, single calls,
  and single calls from 8 threads (coalesced into shared batches);
- the same sealer at B-B (no TSA, no DSS), to show what the timestamp and validation data cost;
- a bare pyHanko PAdES B-B signature of an already rendered licence with a throwaway local key
  (``SimpleSigner``; no appearance, no TSA, no DSS): the floor pyHanko itself sets.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko_certvalidator.registry import SimpleCertificateStore

from bench.common import peak_rss_mib, percentile, rate, throwaway_openbao, write_results
from certificates.sealing import LicenceDocument
from ecert.clock import SystemClock
from keys import KeyStore
from signing.render import render_licence
from signing.sealer import PadesSealer
from tests.support.licences import licence
from tests.support.pki import TestPki

DEPARTMENT_NAME = "浙江省市场监督管理局"


_CPU: dict[str, float] = {}


def _for(seconds: float, step: Callable[[], int]) -> tuple[int, float, list[float]]:
    """Run ``step`` for ``seconds``; also records this process's CPU ms per item in ``_CPU["last"]``
    (robust to other load on the machine; Vault's own CPU is in its process, not counted)."""
    count, latencies = 0, []
    started, cpu = time.perf_counter(), time.process_time()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        count += step()
        latencies.append(time.perf_counter() - t0)
    _CPU["last"] = (time.process_time() - cpu) * 1000 / max(count, 1)
    return count, time.perf_counter() - started, latencies


def sample_documents(code: str, start: int, n: int) -> list[LicenceDocument]:
    return [licence(start + i, department_code=code) for i in range(n)]


def _ca_pki(store: KeyStore, directory: Path) -> tuple[Any, Any, Any, str]:
    from ca.hierarchy import CaConfig
    from ca.profiles import Endpoints
    from ca.service import CertificateAuthority
    from ecert.db import make_engine, migrate, session_scope

    engine = make_engine(f"sqlite:///{directory}/bench.db")
    migrate(engine)
    authority = CertificateAuthority(
        engine=engine, keystore=store, clock=SystemClock(),
        config=CaConfig(organization="Example Province Government", country="CN", endpoints=Endpoints("https://ecert.example.gov.cn")),
    )
    authority.bootstrap()
    with session_scope(engine) as session:
        authority.add_department(session, "BENCH01", DEPARTMENT_NAME, actor="bench")
    return authority, authority, authority, "BENCH01"


def _test_pki(store: KeyStore) -> tuple[Any, Any, Any, str]:
    pki = TestPki(store)
    pki.add_department("BENCH01", DEPARTMENT_NAME)
    return pki, pki.tsa, pki.revocation, "BENCH01"


def bare_pyhanko(pdf: bytes, seconds: float) -> tuple[int, float, list[float]]:
    key = ec.generate_private_key(ec.SECP256R1())  # measurement reference only; never an ecert key
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    signer = signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER)),
        signing_key=asn1_keys.PrivateKeyInfo.load(key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())),
        cert_registry=SimpleCertificateStore(),
    )
    meta = signers.PdfSignatureMetadata(field_name="Sig", md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES)

    def step() -> int:
        signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)), meta, signer=signer)
        return 1

    return _for(seconds, step)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--pki", choices=["ca", "test"], default="ca")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}

    with throwaway_openbao() as (_server, store), tempfile.TemporaryDirectory() as directory:
        seals, tsa, revocation, code = _ca_pki(store, Path(directory)) if args.pki == "ca" else _test_pki(store)
        sample = licence(1, department_code=code)
        count, elapsed, lat = _for(args.seconds, lambda: (render_licence(sample, issuer_name=DEPARTMENT_NAME), 1)[1])
        results["render only (reportlab + QR)"] = {
            "per_s": rate(count, elapsed), "p50_ms": percentile(lat, 50) * 1000, "cpu_ms_per_pdf": _CPU["last"],
        }

        sealer = PadesSealer(store, seals, tsa, revocation)
        sealer.seal(code, sample_documents(code, 0, 2))  # warm: seal cache, TSA size probe
        trips = sealer._seal_for(code).signer.round_trips  # noqa: SLF001
        counter = iter(range(10, 10**9, args.batch))
        count, elapsed, lat = _for(args.seconds, lambda: len(sealer.seal(code, sample_documents(code, next(counter), args.batch))))
        batches = len(lat)
        results[f"PadesSealer B-LT, batches of {args.batch}"] = {
            "per_s": rate(count, elapsed),
            "p50_ms_per_batch": percentile(lat, 50) * 1000,
            "vault_seal_round_trips_per_batch": (sealer._seal_for(code).signer.round_trips - trips) / batches,  # noqa: SLF001
            "cpu_ms_per_pdf": _CPU["last"],
        }
        count, elapsed, lat = _for(args.seconds, lambda: len(sealer.seal(code, sample_documents(code, next(counter), 1))))
        results["PadesSealer B-LT, one at a time"] = {
            "per_s": rate(count, elapsed), "p50_ms": percentile(lat, 50) * 1000, "p99_ms": percentile(lat, 99) * 1000,
            "cpu_ms_per_pdf": _CPU["last"],
        }

        with ThreadPoolExecutor(8) as pool:
            started, cpu = time.perf_counter(), time.process_time()
            trips = sealer._seal_for(code).signer.round_trips  # noqa: SLF001
            counts = list(pool.map(lambda _: _for(args.seconds, lambda: len(sealer.seal(code, sample_documents(code, next(counter), 1))))[0], range(8)))
            elapsed = time.perf_counter() - started
        results["PadesSealer B-LT, one per call, 8 threads (coalesced)"] = {
            "per_s": rate(sum(counts), elapsed),
            "calls_per_vault_round_trip": sum(counts) / max(sealer._seal_for(code).signer.round_trips - trips, 1),  # noqa: SLF001
            "cpu_ms_per_pdf": (time.process_time() - cpu) * 1000 / max(sum(counts), 1),
        }

        plain = PadesSealer(store, seals, None, None)
        plain.seal(code, sample_documents(code, 0, 2))
        count, elapsed, lat = _for(args.seconds, lambda: len(plain.seal(code, sample_documents(code, next(counter), args.batch))))
        results[f"PadesSealer B-B (no TSA, no DSS), batches of {args.batch}"] = {
            "per_s": rate(count, elapsed), "cpu_ms_per_pdf": _CPU["last"],
        }

        rendered = render_licence(sample, issuer_name=DEPARTMENT_NAME).pdf
        count, elapsed, lat = bare_pyhanko(rendered, args.seconds)
        results["bare pyHanko B-B, local key, pre-rendered PDF"] = {
            "per_s": rate(count, elapsed), "p50_ms": percentile(lat, 50) * 1000, "cpu_ms_per_pdf": _CPU["last"],
        }

    path = write_results(f"signing-{args.pki}", {
        "seconds": args.seconds, "batch": args.batch, "pki": args.pki, "results": results, "peak_rss_mib": peak_rss_mib(),
    })
    print("| measurement | PDFs/s | notes |\n|---|---:|---|")
    for name, values in results.items():
        notes = ", ".join(f"{k} {v:.1f}" for k, v in values.items() if k != "per_s")
        print(f"| {name} | {values['per_s']:,.1f} | {notes} |")
    print(f"peak RSS {peak_rss_mib():.0f} MiB; results: {path}")


if __name__ == "__main__":
    main()
