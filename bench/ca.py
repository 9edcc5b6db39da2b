"""Certificate authority: OCSP responses/s and CRL regeneration with 1,000,000 revoked entries;
seal-certificate issuance/s next to OpenBao's own PKI engine issuing comparable certificates (same run).

Run: ``.venv/bin/python -m bench.ca [--revoked 1000000] [--seconds 10] [--database URL]``
(SQLite in a temp dir by default; PostgreSQL with ``--database postgresql+psycopg://...``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import secrets
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from bench.common import peak_rss_mib, percentile, rate, throwaway_openbao, write_results
from ca.hierarchy import CaConfig
from ca.profiles import Endpoints
from ca.service import CertificateAuthority
from ecert.clock import SystemClock
from ecert.db import make_engine, migrate, session_scope
from keys import VaultConnection, VaultCredentials


def _fill_revoked(engine: sa.engine.Engine, count: int, issuer: str) -> list[int]:
    """``count`` revoked certificate rows of ``issuer`` (bulk insert; the DER is a placeholder)."""
    now = dt.datetime.now(dt.timezone.utc)
    serials = [secrets.randbits(150) | (1 << 150) for _ in range(count)]
    insert = sa.text(
        "INSERT INTO ca_certificate (serial, issuer, profile, subject, department_code, key_name, key_version, not_before,"
        " not_after, certificate_der, issued_at, revoked_at, revocation_reason) VALUES (:serial, :issuer, 'seal', 'CN=bench',"
        " 'BENCH', 'external', 0, :nb, :na, :der, :nb, :revoked, 'keyCompromise')"
    )
    for start in range(0, count, 20_000):
        rows = [{"serial": format(s, "x"), "issuer": issuer, "nb": now, "na": now + dt.timedelta(days=365), "der": b"\x30\x00",
                 "revoked": now} for s in serials[start:start + 20_000]]
        with engine.begin() as connection:
            connection.execute(insert, rows)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE ca_crl SET changes = changes + 1 WHERE issuer = :i"), {"i": issuer})
    return serials


def _for(seconds: float, threads: int, step: Callable[[], object]) -> tuple[int, float, list[float]]:
    deadline = time.perf_counter() + seconds

    def worker() -> list[float]:
        latencies = []
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            step()
            latencies.append(time.perf_counter() - t0)
        return latencies

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        all_latencies = [lat for lats in pool.map(lambda _: worker(), range(threads)) for lat in lats]
    return len(all_latencies), time.perf_counter() - started, all_latencies


def _summary(count: int, seconds: float, latencies: list[float]) -> dict[str, float]:
    return {"per_s": round(rate(count, seconds), 1), "p50_ms": round(percentile(latencies, 50) * 1000, 2),
            "p99_ms": round(percentile(latencies, 99) * 1000, 2), "n": count}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--revoked", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--database", default=None)
    args = parser.parse_args()
    results: dict[str, object] = {"revoked_entries": args.revoked}

    with throwaway_openbao() as (server, store), tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(args.database or f"sqlite:///{Path(scratch) / 'bench.db'}")
        migrate(engine)
        results["database"] = engine.dialect.name
        ca = CertificateAuthority(engine=engine, keystore=store, clock=SystemClock(),
                                  config=CaConfig("Bench Province", "CN", Endpoints("http://ecert.example")))
        hierarchy = ca.bootstrap()
        with session_scope(engine) as session:
            ca.add_department(session, "BENCH", "Bench Department", actor="bench")
        seal = ca.current_seal("BENCH").certificate

        # -- seal certificates: ecert (Vault transit key + our profile) vs OpenBao's PKI engine ----------
        def ecert_seal() -> None:
            with session_scope(engine) as session:
                ca.renew_seal(session, "BENCH", actor="bench", rotate=False)

        count, seconds, lat = _for(args.seconds, 1, ecert_seal)
        results["seal certificate issuance, ecert, 1 thread"] = _summary(count, seconds, lat)

        root = VaultConnection(server.addr, VaultCredentials(token=server.root_token()))
        root.request("POST", "sys/mounts/pki", {"type": "pki", "config": {"max_lease_ttl": "87600h"}})
        root.request("POST", "pki/root/generate/internal", {"common_name": "Bench PKI Root", "key_type": "ec", "key_bits": 256,
                                                             "ttl": "87600h"})
        root.request("POST", "pki/roles/seal", {"allow_any_name": True, "enforce_hostnames": False, "key_type": "ec", "key_bits": 256, "ttl": "17520h",
                                                "key_usage": ["DigitalSignature", "ContentCommitment"], "ext_key_usage": [],
                                                "ext_key_usage_oids": ["1.3.6.1.5.5.7.3.36"], "no_store": False})
        local = ec.generate_private_key(ec.SECP256R1())  # the CSR's key; OpenBao signs it with its own root
        csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench seal")]))
               .sign(local, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())
        count, seconds, lat = _for(args.seconds, 1, lambda: root.request("POST", "pki/sign/seal", {"csr": csr, "common_name": "bench seal"}))
        results["seal certificate issuance, OpenBao PKI engine (pki/sign), 1 thread"] = _summary(count, seconds, lat)

        # -- 1,000,000 revoked entries: CRL build and OCSP ---------------------------------------------
        t0 = time.perf_counter()
        serials = _fill_revoked(engine, args.revoked, hierarchy.issuing.name)
        results["fill revoked rows s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        der = ca.crl(hierarchy.issuing.name)
        results["CRL regeneration s"] = round(time.perf_counter() - t0, 2)
        results["CRL size MiB"] = round(len(der) / 2**20, 1)
        t0 = time.perf_counter()
        ca.crl(hierarchy.issuing.name)
        results["CRL served from cache ms"] = round((time.perf_counter() - t0) * 1000, 3)

        issuing = hierarchy.issuing.certificate
        sample = random.sample(serials, 1000)

        def request(serial: int, nonce: bool) -> bytes:
            builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
                hierarchy.issuing.name_hash("sha1"), hierarchy.issuing.key_hash("sha1"), serial, hashes.SHA1())
            if nonce:
                builder = builder.add_extension(x509.OCSPNonce(os.urandom(16)), critical=False)
            return builder.build().public_bytes(serialization.Encoding.DER)

        good = ocsp.OCSPRequestBuilder().add_certificate(seal, issuing, hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
        revoked_requests = [request(s, False) for s in sample]
        nonce_requests = [request(s, True) for s in sample]
        ca.ocsp(good)
        for threads in (1, 4):
            i = iter(range(10**9))
            count, seconds, lat = _for(args.seconds, threads, lambda: ca.ocsp(nonce_requests[next(i) % 1000]))  # noqa: B023 - called within this iteration
            results[f"OCSP with nonce (signed per request), {threads} threads"] = _summary(count, seconds, lat)
        for der in revoked_requests:  # fill the cache first: this measures answering from it
            ca.ocsp(der)
        for threads in (1, 4):
            i = iter(range(10**9))
            count, seconds, lat = _for(args.seconds, threads, lambda: ca.ocsp(revoked_requests[next(i) % 1000]))  # noqa: B023 - called within this iteration
            results[f"OCSP without nonce (cached answers, 1,000 serials), {threads} threads"] = _summary(count, seconds, lat)
        assert ocsp.load_der_ocsp_response(ca.ocsp(revoked_requests[0])).certificate_status == ocsp.OCSPCertStatus.REVOKED
        results["peak RSS MiB"] = round(peak_rss_mib(), 1)
        engine.dispose()

    path = write_results("ca", results)
    for name, value in results.items():
        print(f"{name}: {value}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
