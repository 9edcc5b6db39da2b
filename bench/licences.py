"""E-licence issuance throughput: single (one transaction per licence) and bulk (batched Vault calls).

Run: ``.venv/bin/python -m bench.licences [--seconds 10] [--bulk 2000] [--database URL]``

Uses a throwaway embedded OpenBao (the service's least-privilege AppRole) and a fresh SQLite
database unless ``--database`` names another (e.g. PostgreSQL). Numbers are measured, never asserted.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import peak_rss_mib, percentile, rate, throwaway_openbao, write_results
from certificates.blobs import DatabaseBlobStore
from certificates.bulk import create_job, process_job
from certificates.issuance import Actor, IssueRequest
from certificates.service import LicenceService
from certificates.types import add_type, parse_type_spec
from ecert.clock import SystemClock
from ecert.db import make_engine, migrate, session_scope
from keys import KeyRef, KeyType, TransitKeyStore

DEPARTMENT = "BENCH"
TYPE = {
    "code": "BL", "name_zh": "营业执照", "name_en": "Business licence",
    "fields_schema": {"type": "object", "properties": {"company": {"type": "string"}, "capital": {"type": "integer"}},
                      "required": ["company", "capital"]},
    "validity": {"kind": "years", "years": 5},
    "layout": {"fields": [{"name": "company", "label_zh": "名称", "label_en": "Name"},
                          {"name": "capital", "label_zh": "注册资本", "label_en": "Capital"}]},
    "disclosure": {"holder_name": "full", "holder_id": "hidden", "fields": ["company"]},
}


class QrKeys:
    def __init__(self, keystore: TransitKeyStore) -> None:
        self.ref = keystore.create("bench-seal", KeyType.EC_P256).latest

    def qr_key(self, department_code: str) -> KeyRef:
        return self.ref


def person_id(rng: random.Random) -> str:
    body = f"{rng.randint(110000, 659999)}19{rng.randint(50, 99)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    total = sum(int(d) * (2 ** (17 - i) % 11) for i, d in enumerate(body))
    return body + "10X98765432"[total % 11]


def row(rng: random.Random, i: int) -> dict[str, Any]:
    return {"holder": {"kind": "person", "name": f"持证人{i}", "id_number": person_id(rng)},
            "fields": {"company": f"企业{i}", "capital": i}}


def single(service: LicenceService, engine: Any, seconds: float, threads: int) -> dict[str, float]:
    actor = Actor("bench", department=DEPARTMENT)
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def work(seed: int) -> None:
        rng = random.Random(seed)
        mine = []
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            r = row(rng, seed)
            with session_scope(engine) as session:
                service.issue(session, actor, DEPARTMENT, IssueRequest(
                    type_code="BL", holder_kind="person", holder_name=r["holder"]["name"], holder_id=r["holder"]["id_number"],
                    fields=r["fields"]))
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    elapsed = time.perf_counter() - started
    return {"per_s": rate(len(latencies), elapsed), "count": len(latencies), "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000}


def bulk(service: LicenceService, engine: Any, rows: int, chunk: int) -> dict[str, Any]:
    rng = random.Random(7)
    actor = Actor("bench", department=DEPARTMENT)
    t0 = time.perf_counter()
    with session_scope(engine) as session:
        job = create_job(session, service.issuer, actor, department_code=DEPARTMENT, type_code="BL",
                         rows=[row(rng, i) for i in range(rows)])
    submitted = time.perf_counter() - t0
    t1 = time.perf_counter()
    status = process_job(engine, service.issuer, job.id, owner="bench", chunk=chunk)
    elapsed = time.perf_counter() - t1
    return {"per_s": rate(rows, elapsed), "rows": rows, "chunk": chunk, "submit_s": submitted, "process_s": elapsed,
            "status": status}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--bulk", type=int, default=2000)
    parser.add_argument("--chunk", type=int, default=200)
    parser.add_argument("--database")
    args = parser.parse_args()
    with throwaway_openbao() as (_server, keystore), tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(args.database or f"sqlite:///{scratch}/bench.db")
        migrate(engine)
        with session_scope(engine) as session:
            add_type(session, department_code=DEPARTMENT, spec=parse_type_spec(TYPE), actor="bench", now=SystemClock().now())
        service = LicenceService(engine=engine, keystore=keystore, clock=SystemClock(), blobs=DatabaseBlobStore(),
                                 seal_keys=QrKeys(keystore), sealer=None, public_url="http://127.0.0.1:8000")
        results: dict[str, Any] = {}
        for threads in (1, 4):
            results[f"single issuance, {threads} thread(s)"] = single(service, engine, args.seconds, threads)
            print(results)
        results["bulk job"] = bulk(service, engine, args.bulk, args.chunk)
        results["peak_rss_mib"] = peak_rss_mib()
        path = write_results("licences", {"database": engine.url.get_backend_name(), "results": results})
        for name, value in results.items():
            print(f"{name}: {value}")
        print(f"written to {path}")


if __name__ == "__main__":
    main()
