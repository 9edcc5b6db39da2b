"""The standard load scenarios against a real ``ecert serve`` (HTTP, keep-alive, N connections).

Run: ``.venv/bin/python -m bench.harness [--database sqlite|postgresql] [--duration S] [--scenario NAME ...]``
(``make bench`` runs it with the defaults). It starts ``ecert serve`` as a subprocess on free ports with a fresh
data directory (embedded OpenBao; with ``--database postgresql`` a throwaway schema on the server
``--postgres-url`` names), waits for ``/readyz``, reads the demo client from ``demo.json`` and runs each
scenario with a load generator in a separate process, ``--connections`` keep-alive connections: wrk (C, see
``bench/wrk.py``) for the request/response scenarios when it is installed, asyncio + httpx for ``bulk`` and
``mixed`` (and for all with ``--generator httpx``). Results (throughput, p50/p95/p99, errors, peak RSS of the server's processes) go to
``bench/results/harness-<db>.json``. Numbers are measured, never asserted.

Scenarios: ``token-issue`` (client credentials), ``issue`` (POST /api/v1/licences with an Idempotency-Key: a
PAdES B-LT sealed licence each), ``bulk`` (POST /api/v1/bulk-jobs, poll until done; rows/s), ``verify-link``
(GET /api/v1/verify/{token}), ``verify-pdf`` (POST /api/v1/verify/pdf, one sealed PDF over and over),
``verify-pdf-distinct`` (``--distinct-pdfs`` licences sealed by one bulk job first, each uploaded at most once), ``token-verify``
(POST /api/v1/identity/verify) and ``mixed`` (a day-in-the-life blend of all of them).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench import wrk
from bench.common import percentile, throwaway_schema, write_results
from keys.openbao import free_port

__all__ = ["SCENARIOS", "Server", "main", "run_scenario", "start_server"]

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SCENARIOS = ("token-issue", "issue", "verify-link", "verify-pdf", "verify-pdf-distinct", "token-verify", "bulk", "mixed")
# The mixed day: mostly citizens and businesses verifying, some departments issuing and logging in.
MIX = {"verify-link": 60, "token-verify": 15, "issue": 10, "token-issue": 5, "verify-pdf": 5, "read": 5}
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc(rng: random.Random) -> str:
    """A random unified social credit code with a valid check character (GB 32100)."""
    body = "91" + "440101" + "".join(rng.choice(_USCC_ALPHABET) for _ in range(9))
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(body, _USCC_WEIGHTS))
    return body + _USCC_ALPHABET[(31 - total % 31) % 31]


def licence_row(rng: random.Random) -> dict[str, Any]:
    name = f"压测科技有限公司{rng.randrange(10**8):08d}"
    return {"holder": {"kind": "enterprise", "name": name, "id_number": uscc(rng)},
            "fields": {"company": name, "legal_representative": "李四", "capital": rng.randrange(1, 10**7),
                       "address": "示例市示例区压测路1号", "scope": "软件开发"}}


# --- the server under test ------------------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    data_dir: Path
    demo: dict[str, Any]
    peak_rss_mib: dict[str, float] = field(default_factory=lambda: {"ecert": 0.0, "openbao": 0.0})
    _stop: threading.Event = field(default_factory=threading.Event)

    def rss_mib(self) -> dict[str, float]:
        """Resident memory now: the ecert processes (serve, uvicorn workers) and the embedded OpenBao."""
        totals = {"ecert": 0.0, "openbao": 0.0}
        try:
            root = psutil.Process(self.process.pid)
            for proc in [root, *root.children(recursive=True)]:
                try:
                    kind = "openbao" if "bao" in proc.name() else "ecert"
                    totals[kind] += proc.memory_info().rss / 2**20
                except psutil.Error:
                    continue
        except psutil.Error:
            pass
        return totals

    def watch_memory(self) -> None:
        def loop() -> None:
            while not self._stop.wait(0.25):
                for kind, value in self.rss_mib().items():
                    self.peak_rss_mib[kind] = max(self.peak_rss_mib[kind], value)

        threading.Thread(target=loop, daemon=True, name="rss-watch").start()

    def reset_peak(self) -> None:
        self.peak_rss_mib = self.rss_mib()

    def stop(self) -> None:
        self._stop.set()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@contextmanager
def database(kind: str, scratch: Path, postgres_url: str) -> Iterator[str]:
    """A fresh database: a SQLite file in ``scratch``, or a throwaway schema on PostgreSQL."""
    if kind == "sqlite":
        yield f"sqlite:///{scratch}/ecert.db"
        return
    with throwaway_schema(postgres_url, "bench_harness") as url:
        yield url


def start_server(data_dir: Path, database_url: str, *, workers: int = 2, extra_env: dict[str, str] | None = None,
                 timeout: float = 180.0, log_path: Path | None = None) -> Server:
    """``ecert serve`` with the demo seed on free ports; returns once /readyz answers 200 and demo.json exists."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ECERT_DATA_DIR": str(data_dir), "ECERT_DATABASE_URL": database_url, "ECERT_PORT": str(port),
           "ECERT_PUBLIC_URL": base, "ECERT_WORKERS": str(workers), "ECERT_DEMO": "true", "ECERT_LOG_LEVEL": "WARNING",
           "ECERT_EMBEDDED_VAULT_PORT": str(free_port()),
           # load comes from one address: lift the per-IP limit on public lookups (an edge proxy's job in production)
           "ECERT_VERIFY_RATE_PER_SECOND": "1000000", "ECERT_VERIFY_BURST": "1000000", **(extra_env or {})}
    for name in ("VAULT_ADDR", "VAULT_TOKEN"):
        env.pop(name, None)
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_path or data_dir / "serve.log", "ab")  # noqa: SIM115 - the child owns it
    process = subprocess.Popen([sys.executable, "-m", "ecert.cli", "serve"], env=env, start_new_session=True,
                               stdout=log, stderr=subprocess.STDOUT)
    server = Server(process, base, data_dir, {})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ecert serve exited with {process.returncode}; see {log.name}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200 and (data_dir / "demo.json").exists():
                server.demo = json.loads((data_dir / "demo.json").read_text())
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"ecert serve was not ready within {timeout:.0f} s; see {log.name}")


# --- the load generator (runs in its own process) -------------------------------------------------------------


@dataclass
class Plan:
    base: str
    scenario: str
    duration: float
    connections: int
    client_id: str
    client_secret: str
    token: str
    licence_tokens: list[str]
    licence_ids: list[str]
    pdf: bytes
    bulk_rows: int
    seed: int
    pdf_files: list[str] = field(default_factory=list)  # distinct sealed PDFs (verify-pdf-distinct)


class Load:
    def __init__(self, plan: Plan, progress: Any) -> None:
        self.plan = plan
        self.progress = progress  # multiprocessing.Value: completed requests
        self.latencies: dict[str, list[float]] = {}
        self.errors: dict[str, dict[str, int]] = {}
        self.rng = random.Random(plan.seed)
        self.new_tokens: list[str] = []
        self.new_ids: list[str] = []
        self.extra: dict[str, Any] = {}

    def _note(self, kind: str, seconds: float, status: int | str, ok: bool) -> None:
        if ok:
            self.latencies.setdefault(kind, []).append(seconds)
        else:
            self.errors.setdefault(kind, {}).setdefault(str(status), 0)
            self.errors[kind][str(status)] += 1
        with self.progress.get_lock():
            self.progress.value += 1

    async def _call(self, client: httpx.AsyncClient, kind: str, method: str, url: str, expect: int = 200,
                    **kwargs: Any) -> httpx.Response | None:
        t0 = time.perf_counter()
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self._note(kind, time.perf_counter() - t0, type(exc).__name__, False)
            return None
        ok = response.status_code == expect
        self._note(kind, time.perf_counter() - t0, response.status_code, ok)
        return response if ok else None

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.plan.token}"}

    async def issue(self, client: httpx.AsyncClient) -> None:
        body = {"type_code": "BL", **licence_row(self.rng)}
        headers = {**self._auth(), "Idempotency-Key": uuid.uuid4().hex}
        response = await self._call(client, "issue", "POST", "/api/v1/licences", 201, json=body, headers=headers)
        if response is not None:
            view = response.json()
            self.new_ids.append(view["id"])
            self.new_tokens.append(view["verification_url"].rsplit("/", 1)[1])

    async def token_issue(self, client: httpx.AsyncClient) -> None:
        await self._call(client, "token-issue", "POST", "/oauth/token", data={"grant_type": "client_credentials"},
                         auth=(self.plan.client_id, self.plan.client_secret))

    async def verify_link(self, client: httpx.AsyncClient) -> None:
        token = self.rng.choice(self.plan.licence_tokens)
        await self._call(client, "verify-link", "GET", f"/api/v1/verify/{token}")

    async def verify_pdf(self, client: httpx.AsyncClient) -> None:
        await self._call(client, "verify-pdf", "POST", "/api/v1/verify/pdf", content=self.plan.pdf,
                         headers={"Content-Type": "application/pdf"})

    async def verify_pdf_distinct(self, client: httpx.AsyncClient) -> None:
        document = Path(self.plan.pdf_files[self.rng.randrange(len(self.plan.pdf_files))]).read_bytes()
        await self._call(client, "verify-pdf-distinct", "POST", "/api/v1/verify/pdf", content=document,
                         headers={"Content-Type": "application/pdf"})

    async def token_verify(self, client: httpx.AsyncClient) -> None:
        await self._call(client, "token-verify", "POST", "/api/v1/identity/verify", data={"token": self.plan.token},
                         headers=self._auth())

    async def read(self, client: httpx.AsyncClient) -> None:
        licence_id = self.rng.choice(self.plan.licence_ids)
        await self._call(client, "read", "GET", f"/api/v1/licences/{licence_id}", headers=self._auth())

    async def bulk(self, client: httpx.AsyncClient) -> None:
        """One bulk job of ``bulk_rows`` rows per round; rows/s from submission to the job's end."""
        rows = [licence_row(self.rng) for _ in range(self.plan.bulk_rows)]
        t0 = time.perf_counter()
        response = await self._call(client, "bulk-submit", "POST", "/api/v1/bulk-jobs", 202,
                                    json={"type_code": "BL", "rows": rows},
                                    headers={**self._auth(), "Idempotency-Key": uuid.uuid4().hex})
        if response is None:
            return
        job_id = response.json()["id"]
        while True:
            await asyncio.sleep(0.25)
            polled = await self._call(client, "bulk-poll", "GET", f"/api/v1/bulk-jobs/{job_id}", headers=self._auth())
            if polled is None:
                continue
            job = polled.json()
            if job["status"] not in ("queued", "running", "pending"):
                break
        seconds = time.perf_counter() - t0
        jobs = self.extra.setdefault("jobs", [])
        jobs.append({"rows": job["total"], "succeeded": job["succeeded"], "failed": job["failed"], "status": job["status"],
                     "seconds": round(seconds, 3), "rows_per_s": round(job["succeeded"] / seconds, 2)})

    def _pick(self) -> str:
        if self.plan.scenario != "mixed":
            return self.plan.scenario
        return self.rng.choices(list(MIX), weights=list(MIX.values()))[0]

    async def worker(self, client: httpx.AsyncClient, deadline: float) -> None:
        while time.perf_counter() < deadline:
            kind = self._pick()
            await getattr(self, kind.replace("-", "_"))(client)

    async def run(self) -> dict[str, Any]:
        connections = 1 if self.plan.scenario == "bulk" else self.plan.connections
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(base_url=self.plan.base, limits=limits, timeout=120.0) as client:
            started = time.perf_counter()
            deadline = started + self.plan.duration
            await asyncio.gather(*(self.worker(client, deadline) for _ in range(connections)))
            elapsed = time.perf_counter() - started
        return {"elapsed": elapsed, "latencies": self.latencies, "errors": self.errors, "new_tokens": self.new_tokens,
                "new_ids": self.new_ids, "extra": self.extra, "connections": connections}


def _generate(plan: Plan, progress: Any, out: Any) -> None:
    out.put(asyncio.run(Load(plan, progress).run()))


# --- orchestration ----------------------------------------------------------------------------------------------


def summarise(raw: dict[str, Any]) -> dict[str, Any]:
    elapsed = raw["elapsed"]
    kinds: dict[str, Any] = {}
    for kind in sorted(set(raw["latencies"]) | set(raw["errors"])):
        values = raw["latencies"].get(kind, [])
        errors = raw["errors"].get(kind, {})
        kinds[kind] = {"ok": len(values), "errors": sum(errors.values()), "error_statuses": errors,
                       "per_s": round(len(values) / elapsed, 2),
                       **{f"p{q}_ms": round(percentile(values, q) * 1000, 2) for q in (50, 95, 99)}}
    return {"seconds": round(elapsed, 2), "connections": raw["connections"], "requests": kinds, **raw["extra"]}


def run_scenario(plan: Plan, *, label: str = "") -> dict[str, Any]:
    """Run one scenario in a separate process; a progress bar counts completed requests against the clock."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    context = mp.get_context("spawn")
    progress, out = context.Value("q", 0), context.Queue()
    process = context.Process(target=_generate, args=(plan, progress, out), daemon=True)
    started = time.monotonic()
    process.start()
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[done]} requests"),
                  TimeRemainingColumn(), transient=False) as bar:
        task = bar.add_task(label or plan.scenario, total=plan.duration, done=0)
        raw = None
        while raw is None:
            try:
                raw = out.get(timeout=0.5)
            except Exception:  # queue.Empty; also covers a dead generator below
                if not process.is_alive():
                    raise RuntimeError(f"load generator for {plan.scenario} died ({process.exitcode})") from None
            bar.update(task, completed=min(plan.duration, time.monotonic() - started), done=progress.value)
        bar.update(task, completed=plan.duration, done=progress.value)
    process.join(timeout=10)
    return raw


WRK_SCENARIOS = ("issue", "token-issue", "verify-link", "verify-pdf", "verify-pdf-distinct", "token-verify")


def _wrk_script(plan: Plan, scratch: Path) -> Path:
    """The wrk script of a request/response scenario (the same requests the httpx generator sends)."""
    auth = {"Authorization": f"Bearer {plan.token}"}
    path = scratch / f"{plan.scenario}.lua"
    if plan.scenario == "verify-link":
        return wrk.script(path, method="GET", paths=[f"/api/v1/verify/{t}" for t in plan.licence_tokens])
    if plan.scenario == "token-verify":
        return wrk.script(path, method="POST", paths=["/api/v1/identity/verify"], body=f"token={plan.token}",
                          headers={**auth, "Content-Type": "application/x-www-form-urlencoded"})
    if plan.scenario == "verify-pdf":
        document = scratch / "licence.pdf"
        document.write_bytes(plan.pdf)
        return wrk.script(path, method="POST", paths=["/api/v1/verify/pdf"], body_files=[document],
                          headers={"Content-Type": "application/pdf"})
    if plan.scenario == "verify-pdf-distinct":
        return wrk.script(path, method="POST", paths=["/api/v1/verify/pdf"], body_files=[Path(f) for f in plan.pdf_files],
                          headers={"Content-Type": "application/pdf"})
    if plan.scenario == "token-issue":
        basic = base64.b64encode(f"{plan.client_id}:{plan.client_secret}".encode()).decode()
        return wrk.script(path, method="POST", paths=["/oauth/token"], body="grant_type=client_credentials",
                          headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"})
    body = json.dumps({"type_code": "BL", **licence_row(random.Random(plan.seed))}, ensure_ascii=False)
    return wrk.script(path, method="POST", paths=["/api/v1/licences"], body=body, fresh_key=True,
                      headers={**auth, "Content-Type": "application/json"})


def run_wrk_scenario(plan: Plan, scratch: Path, *, label: str = "") -> dict[str, Any]:
    """One scenario with wrk as the load generator (a separate process); a progress bar follows the clock."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    lua = _wrk_script(plan, scratch)
    found: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: found.update(
        wrk.run(plan.base, lua, seconds=plan.duration, connections=plan.connections)), daemon=True)
    started = time.monotonic()
    runner.start()
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(), transient=False) as bar:
        task = bar.add_task(label or plan.scenario, total=plan.duration)
        while runner.is_alive():
            runner.join(timeout=0.5)
            bar.update(task, completed=min(plan.duration, time.monotonic() - started))
    if not found:
        raise RuntimeError(f"wrk failed for {plan.scenario}")
    requests = {plan.scenario: {k: v for k, v in found.items() if k != "seconds"}}
    return {"seconds": found["seconds"], "connections": plan.connections, "generator": "wrk", "requests": requests}


def _prepare(server: Server, connections: int) -> tuple[str, list[str], list[str], bytes]:
    """An access token and a few sealed licences (tokens, ids, one PDF) that the read scenarios use."""
    demo = server.demo
    with httpx.Client(base_url=server.base, timeout=120) as client:
        response = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                               auth=(demo["client_id"], demo["client_secret"]))
        response.raise_for_status()
        token = response.json()["access_token"]
        rng, tokens, ids = random.Random(7), [], []
        for _ in range(20):
            issued = client.post("/api/v1/licences", json={"type_code": "BL", **licence_row(rng)},
                                 headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex})
            issued.raise_for_status()
            ids.append(issued.json()["id"])
            tokens.append(issued.json()["verification_url"].rsplit("/", 1)[1])
        pdf = client.get(f"/api/v1/licences/{ids[0]}/pdf", headers={"Authorization": f"Bearer {token}"})
        pdf.raise_for_status()
        deadline = time.monotonic() + 60  # the publisher signs a tree head every few seconds: wait for the proofs
        while time.monotonic() < deadline:
            if (client.get(f"/api/v1/verify/{tokens[-1]}").json().get("transparency") or {}).get("logged"):
                break
            time.sleep(0.5)
    return token, tokens, ids, pdf.content


def _distinct_pdfs(server: Server, token: str, count: int, directory: Path) -> list[str]:
    """``count`` distinct sealed licences (one bulk job), each PDF downloaded to ``directory``: uploads nobody has
    checked before, so no document check is remembered (verify-pdf-distinct)."""
    auth = {"Authorization": f"Bearer {token}"}
    rng = random.Random(11)
    with httpx.Client(base_url=server.base, timeout=120, headers=auth) as client:
        job = client.post("/api/v1/bulk-jobs", json={"type_code": "BL", "rows": [licence_row(rng) for _ in range(count)]},
                          headers={"Idempotency-Key": uuid.uuid4().hex})
        job.raise_for_status()
        job_id = job.json()["id"]
        while client.get(f"/api/v1/bulk-jobs/{job_id}").json()["status"] in ("queued", "running", "pending"):
            time.sleep(1)
        ids, offset = [], 0
        while True:
            page = client.get(f"/api/v1/bulk-jobs/{job_id}/items", params={"limit": 1000, "offset": offset}).json()["items"]
            ids += [i["licence_id"] for i in page if i.get("licence_id")]
            if len(page) < 1000:
                break
            offset += 1000
        files = []
        for licence_id in ids:
            pdf = client.get(f"/api/v1/licences/{licence_id}/pdf")
            pdf.raise_for_status()
            path = directory / f"{licence_id}.pdf"
            path.write_bytes(pdf.content)
            files.append(str(path))
    return files


def _bare_reference(seconds: float) -> dict[str, Any]:
    """Issue #4's yardstick, in the same run with the server idle: a bare pyHanko PAdES B-B signature of a rendered
    (unsealed) licence with a throwaway local key, one thread (``bench.signing.bare_pyhanko``)."""
    from bench.signing import bare_pyhanko, sample_documents
    from signing.render import render_licence

    pdf = render_licence(sample_documents("BENCH", 0, 1)[0], issuer_name="Benchmark bureau").pdf
    count, elapsed, latencies = bare_pyhanko(pdf, min(seconds, 10.0))
    return {"per_s": round(count / elapsed, 2), "p50_ms": round(percentile(latencies, 50) * 1000, 2), "threads": 1}


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"database": args.database, "workers": args.workers, "duration_s": args.duration,
                               "connections": args.connections, "generator": args.generator, "load_average_at_start": os.getloadavg(),
                               "scenarios": {}}
    with tempfile.TemporaryDirectory(prefix="ecert-harness-") as directory:
        scratch = Path(directory)
        with database(args.database, scratch, args.postgres_url) as database_url:
            t0 = time.perf_counter()
            server = start_server(scratch / "data", database_url, workers=args.workers)
            results["start_seconds"] = round(time.perf_counter() - t0, 1)
            try:
                server.watch_memory()
                token, tokens, ids, pdf = _prepare(server, args.connections)
                pdf_files: list[str] = []
                if "verify-pdf-distinct" in args.scenario:
                    (scratch / "pdfs").mkdir()
                    pdf_files = _distinct_pdfs(server, token, args.distinct_pdfs, scratch / "pdfs")
                for scenario in args.scenario:
                    plan = Plan(server.base, scenario, args.duration, args.connections, server.demo["client_id"],
                                server.demo["client_secret"], token, tokens, ids, pdf, args.bulk_rows, seed=len(tokens),
                                pdf_files=pdf_files)
                    server.reset_peak()
                    label = f"{args.database} {scenario}"
                    if args.generator == "wrk" and scenario in WRK_SCENARIOS:
                        summary = run_wrk_scenario(plan, scratch, label=label)
                    else:
                        raw = run_scenario(plan, label=label)
                        tokens += raw["new_tokens"][:5000]
                        ids += raw["new_ids"][:5000]
                        summary = {"generator": "httpx", **summarise(raw)}
                    summary["peak_rss_mib"] = {k: round(v, 1) for k, v in server.peak_rss_mib.items()}
                    results["scenarios"][scenario] = summary
                    print(json.dumps({scenario: summary}, ensure_ascii=False), flush=True)
                if "issue" in args.scenario:
                    results["reference_bare_pyhanko"] = _bare_reference(args.duration)
                    print(json.dumps({"reference_bare_pyhanko": results["reference_bare_pyhanko"]}), flush=True)
            finally:
                server.stop()
    results["load_average_at_end"] = os.getloadavg()
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.harness", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres-url", default=os.environ.get("ECERT_TEST_POSTGRES_URL", POSTGRES_URL))
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections")
    parser.add_argument("--workers", type=int, default=2, help="ECERT_WORKERS of the server")
    parser.add_argument("--bulk-rows", type=int, default=500, help="rows per bulk job")
    parser.add_argument("--distinct-pdfs", type=int, default=3000,
                        help="sealed licences issued for verify-pdf-distinct (more than that scenario sends)")
    parser.add_argument("--scenario", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--generator", choices=("auto", "wrk", "httpx"), default="auto",
                        help="load generator of the request/response scenarios (auto: wrk when installed); "
                             "bulk and mixed always use the httpx generator")
    args = parser.parse_args(argv)
    if args.generator == "auto":
        args.generator = "wrk" if wrk.available() else "httpx"
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    results = run(args)
    path = write_results(f"harness-{args.database}", results)
    print(f"results: {path}")


if __name__ == "__main__":
    main()
