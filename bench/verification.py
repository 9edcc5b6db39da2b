"""Verification throughput: by link over HTTP (JSON), PDF upload, offline QR and PDF, CLI start-up.

Command: ``.venv/bin/python -m bench.verification [--licences 400] [--seconds 10] [--database URL]``.
Link verification at scale (10 thousand vs 10 million licences, see :mod:`bench.link_scale`):
``.venv/bin/python -m bench.verification --database postgresql --fill 10000000 10000 --schema NAME10M NAME10K``.

Set-up (not timed): a throwaway embedded OpenBao, a fresh database (temp SQLite, or a throwaway
schema on the PostgreSQL server ``--database`` names), the real CA, one department and ``--licences``
sealed licences (PadesSealer, B-LT). Then:

* HTTP: ``ecert serve`` (uvicorn, ``--workers``) loaded by ``wrk`` on the same machine, after a
  warm-up run over every token (each worker builds each verdict and inclusion proof once):
  a bare FastAPI endpoint (reference, same run), ``GET /api/v1/verify/{token}`` cycling through
  every token, ``GET /v/{token}`` (the HTML page), ``POST /api/v1/verify/pdf`` of one sealed PDF.
  The per-IP rate limit is lifted for the run (``ECERT_VERIFY_RATE_PER_SECOND``).
* In-process, one thread: PdfVerifier.verify, offline QR and PDF checks from a trust bundle.
* CLI: a fresh ``ecert verify`` / ``python -m ecert.commands.verify`` process per check (median of 5).

Numbers are measured and written to ``bench/results/verification.json``, never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bench.common import RESULTS, machine, peak_rss_mib, percentile, rate
from bench.tokens import _bare_reference, _database, _serve, _wrk_script, wrk
from keys.openbao import ManagedOpenBao, free_port

DEPARTMENT = "BENCHV"


def _setup(runtime: Any, count: int) -> tuple[list[Any], bytes]:
    from ecert.container import Container
    from certificates.blobs import DatabaseBlobStore
    from certificates.issuance import Actor, IssueRequest, Issuer
    from certificates.types import add_type, parse_type_spec
    from ecert.clock import SystemClock
    from ecert.db import session_scope
    from signing.sealer import PadesSealer
    from tests.support.licences import BUSINESS_TYPE, uscc

    authority = Container.build(runtime).ca
    authority.bootstrap()
    with session_scope(runtime.engine) as session:
        authority.add_department(session, DEPARTMENT, "基准测试局", actor="bench")
        add_type(session, department_code=DEPARTMENT, spec=parse_type_spec(BUSINESS_TYPE), actor="bench", now=SystemClock().now())
    authority.refresh_crls()
    sealer = PadesSealer(runtime.keystore, authority, authority, authority)
    issuer = Issuer(keystore=runtime.keystore, clock=SystemClock(), blobs=DatabaseBlobStore(), seal_keys=authority,
                    sealer=sealer, public_url=runtime.settings.public_url)
    actor = Actor("client:bench", DEPARTMENT)
    licences: list[Any] = []
    for start in range(0, count, 100):
        with session_scope(runtime.engine) as session:
            prepared = [issuer.prepare(session, actor, DEPARTMENT, IssueRequest(
                type_code="BL", holder_kind="enterprise", holder_name=f"基准科技{n}有限公司", holder_id=uscc(),
                fields={"company": f"基准科技{n}有限公司", "capital": n})) for n in range(start, min(count, start + 100))]
            licences += issuer.issue_batch(session, actor, prepared)
    with session_scope(runtime.engine) as session:
        pdf = DatabaseBlobStore().get(session, licences[0].pdf_blob_key)
    from audit.tlog import sign_tree_head

    sign_tree_head(runtime.engine, runtime.keystore, runtime.clock)  # so verdicts carry an inclusion proof
    return licences, pdf


def _in_process(runtime: Any, licences: list[Any], pdf: bytes, seconds: float) -> dict[str, Any]:
    from ecert.container import Container
    from verify.bundle import load_bundle
    from verify.link import LinkVerifier, VerificationCounter
    from verify.offline import verify_pdf_offline, verify_qr_offline
    from verify.online import PdfVerifier
    from verify.publisher import BundlePublisher

    authority = Container.build(runtime).ca
    link = LinkVerifier(runtime.reader, runtime.clock, public_url=runtime.settings.public_url,
                        counter=VerificationCounter(runtime.engine, runtime.clock))
    pdfs = PdfVerifier(runtime.engine, runtime.clock, authority, link, cache_size=0)
    repeat = PdfVerifier(runtime.engine, runtime.clock, authority, link)
    bundle = load_bundle(BundlePublisher(runtime.engine, runtime.keystore, runtime.clock, authority).build())
    now = dt.datetime.now(dt.timezone.utc)
    qrs = [lic.qr_payload for lic in licences]
    cases = {
        "link verification, LinkVerifier.verify (steady state: version read, verdict remembered)": lambda i: link.verify(licences[i % len(licences)].token),
        "PDF verification, PdfVerifier.verify, document checks every time (pyHanko + register)": lambda i: pdfs.verify(pdf),
        "PDF verification, PdfVerifier.verify, repeat upload (document checks remembered)": lambda i: repeat.verify(pdf),
        "offline QR check, verify_qr_offline": lambda i: verify_qr_offline(qrs[i % len(qrs)], bundle, now=now),
        "offline PDF check, verify_pdf_offline": lambda i: verify_pdf_offline(pdf, bundle, now=now),
    }
    for lic in licences:  # warm-up, not timed: each verdict and inclusion proof is built once
        link.verify(lic.token)
    results = {}
    for name, function in cases.items():
        latencies, started, i = [], time.perf_counter(), 0
        while time.perf_counter() - started < seconds:
            t0 = time.perf_counter()
            outcome = function(i).outcome.value
            latencies.append(time.perf_counter() - t0)
            i += 1
        assert outcome in ("valid", "authentic"), (name, outcome)
        elapsed = time.perf_counter() - started
        results[name] = {"per_s": round(rate(i, elapsed), 1), "p50_ms": round(percentile(latencies, 50) * 1000, 2),
                         "p99_ms": round(percentile(latencies, 99) * 1000, 2)}
        print(f"{name}: {results[name]}", flush=True)
    link.counter.flush()
    return results


def _cli(scratch: Path, pdf: bytes, qr: str, bundle: bytes) -> dict[str, Any]:
    (scratch / "l.pdf").write_bytes(pdf)
    (scratch / "qr.txt").write_text(qr)
    (scratch / "bundle.json").write_bytes(bundle)
    runs = {
        "ecert verify PDF --bundle": [sys.executable, "-m", "ecert.cli", "verify", str(scratch / "l.pdf")],
        "ecert verify QR --bundle": [sys.executable, "-m", "ecert.cli", "verify", str(scratch / "qr.txt")],
        "python -m ecert.commands.verify PDF --bundle": [sys.executable, "-m", "ecert.commands.verify", str(scratch / "l.pdf")],
        "python -m ecert.commands.verify QR --bundle": [sys.executable, "-m", "ecert.commands.verify", str(scratch / "qr.txt")],
        "python -c pass (interpreter start-up, reference)": [sys.executable, "-c", "pass"],
    }
    results = {}
    for name, command in runs.items():
        extra = ["--bundle", str(scratch / "bundle.json")] if any("verify" in part for part in command) else []
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            subprocess.run([*command, *extra], check=True, capture_output=True, env={**os.environ, "ECERT_DATA_DIR": str(scratch)})
            times.append(time.perf_counter() - t0)
        results[name] = {"median_ms": round(statistics.median(times) * 1000), "min_ms": round(min(times) * 1000)}
        print(f"{name}: {results[name]}", flush=True)
    return results


def _paths_script(directory: Path, name: str, paths: list[str]) -> Path:
    """wrk: each thread cycles through its own share of ``paths``."""
    script = directory / f"{name}.lua"
    listing = ",\n".join(f'"{p}"' for p in paths)
    script.write_text(
        f"local all = {{\n{listing}\n}}\nlocal i = 0\nlocal first = 0\n"
        "function setup(thread) thread:set('first', math.random(#all)) end\n"
        "function init(args) i = first end\n"
        "function request() i = i + 1; return wrk.format('GET', all[(i % #all) + 1]) end\n")
    return script


def _upload_script(directory: Path, pdf: Path) -> Path:
    script = directory / "upload.lua"
    script.write_text(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/pdf"\n'
                      f'local f = io.open("{pdf}", "rb")\nwrk.body = f:read("*a")\nf:close()\n')
    return script


def _http(args: argparse.Namespace, server: ManagedOpenBao, credentials: Any, database_url: str, scratch: Path,
          tokens: list[str], pdf: bytes) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ECERT_PORT": str(port), "ECERT_WORKERS": str(args.workers), "ECERT_DATA_DIR": str(scratch),
           "ECERT_DATABASE_URL": database_url, "ECERT_VAULT_ADDR": server.addr, "ECERT_PUBLIC_URL": base,
           "ECERT_VAULT_ROLE_ID": credentials.role_id, "ECERT_VAULT_SECRET_ID": credentials.secret_id,
           "ECERT_LOG_LEVEL": "WARNING", "ECERT_DEMO": "false", "ECERT_VERIFY_RATE_PER_SECOND": "1000000000",
           "ECERT_VERIFY_BURST": "1000000000"}
    process = _serve([sys.executable, "-m", "ecert.cli", "serve"], env, f"{base}/readyz")
    try:
        (scratch / "upload.pdf").write_bytes(pdf)
        results: dict[str, Any] = {"GET / of a bare FastAPI app (reference, same run)": _bare_reference(args, scratch)}
        runs = {
            "GET /healthz (bare endpoint, same app)": ("/healthz", _wrk_script(scratch, "health", "GET", {}, None), args.connections),
            f"GET /api/v1/verify/{{token}} (JSON), {len(tokens)} tokens": (
                "/", _paths_script(scratch, "json", [f"/api/v1/verify/{t}" for t in tokens]), args.connections),
            f"GET /v/{{token}} (HTML page), {len(tokens)} tokens": (
                "/", _paths_script(scratch, "html", [f"/v/{t}?lang=zh" for t in tokens]), args.connections),
            "POST /api/v1/verify/pdf (one sealed PDF, B-LT, repeated: document checks remembered)": ("/api/v1/verify/pdf", _upload_script(scratch, scratch / "upload.pdf"), 8),
        }
        warm = _paths_script(scratch, "warm", [f"/api/v1/verify/{t}" for t in tokens])
        results["warm-up (not a result): GET /api/v1/verify/{token}, first pass builds each verdict and proof"] = wrk(
            base + "/", warm, max(5.0, args.seconds / 2), args.connections, 2)
        for name, (path, script, connections) in runs.items():
            results[name] = {**wrk(base + path, script, args.seconds, connections, 2), "connections": connections}
            print(f"{name}: {results[name]}", flush=True)
        return results
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--licences", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--database", help="a PostgreSQL URL, or 'postgresql' for the local test server (default SQLite)")
    parser.add_argument("--fill", type=int, nargs="+", help="link verification only, on a schema filled to this size "
                        "(bench.scale, reused when already filled): bare FastAPI, hot, cold and unknown tokens")
    parser.add_argument("--schema", nargs="+", default=[], help="one persistent schema name per --fill size")
    parser.add_argument("--identities-ratio", type=float, default=1.6, help="with --fill: person accounts per licence")
    parser.add_argument("--hot", type=int, default=1000, help="with --fill: tokens in the hot set")
    parser.add_argument("--cold", type=int, default=300_000, help="with --fill: distinct tokens for the cold run")
    parser.add_argument("--state-dir", default="/tmp/ecert-bench", help="with --fill: the schema's OpenBao lives here")
    parser.add_argument("--output", help="with --fill: result file name in bench/results")
    args = parser.parse_args()
    if args.database == "postgresql":
        args.database = os.environ.get("ECERT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    if args.fill:
        from bench.link_scale import run

        if not (args.database or "").startswith("postgresql"):
            raise SystemExit("--fill needs --database postgresql (the change feed and the filled schema)")
        with tempfile.TemporaryDirectory() as directory:
            run(args, Path(directory))
        return
    from ecert.runtime import Runtime
    from ecert.settings import Settings

    results: dict[str, Any] = {"machine": machine(), "load_average_at_start": os.getloadavg(), "licences": args.licences,
                               "database": "postgresql" if args.database else "sqlite"}
    with tempfile.TemporaryDirectory() as directory:
        scratch = Path(directory)
        server = ManagedOpenBao(scratch / "openbao", port=free_port())
        credentials = server.start()
        try:
            with _database(args.database, scratch) as database_url:
                settings = Settings(data_dir=scratch, vault_addr=server.addr, vault_role_id=credentials.role_id,
                                    vault_secret_id=SecretStr(credentials.secret_id or ""), database_url=database_url,
                                    demo=False, public_url="http://127.0.0.1:8000")
                runtime = Runtime.build(settings)
                t0 = time.perf_counter()
                licences, pdf = _setup(runtime, args.licences)
                results["setup_seconds"] = round(time.perf_counter() - t0, 1)
                results["in_process"] = _in_process(runtime, licences, pdf, min(args.seconds, 5))
                from ecert.container import Container
                from verify.publisher import BundlePublisher

                bundle = BundlePublisher(runtime.engine, runtime.keystore, runtime.clock, Container.build(runtime).ca).build()
                results["cli"] = _cli(scratch, pdf, licences[0].qr_payload, bundle)
                runtime.close()
                if shutil.which("wrk"):
                    results["http"] = _http(args, server, credentials, database_url, scratch, [lic.token for lic in licences], pdf)
                else:
                    print("wrk not found (apt-get install wrk): HTTP part skipped")
        finally:
            server.stop()
    results["load_average_at_end"] = os.getloadavg()
    results["bench_peak_rss_mib"] = peak_rss_mib()
    RESULTS.mkdir(exist_ok=True)
    name = f"verification-{results['database']}.json"
    (RESULTS / name).write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(json.dumps(results, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
