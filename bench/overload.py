"""Issuance under overload: many concurrent issuing clients against a real ``ecert serve``, with readiness watched.

Run: ``.venv/bin/python -m bench.overload --database sqlite|postgresql --clients 16 40 200 --seconds 30 [--callers N]``.
Each client posts sealed single issuances (``POST /api/v1/licences``) with a fresh Idempotency-Key, as a department's
system would; with ``--callers N`` the clients act as N distinct API clients of the department (made in the database
before the run, each with its own token; ``0``: one per client), so their requests are not grouped into one batch; a 503 is retried after its Retry-After with the same key (what the problem tells the caller to do).
Meanwhile a watcher asks ``/readyz`` four times a second. Afterwards the database is read directly: licences per
Idempotency-Key (duplicates) and licences without a stored PDF. Reported per run: licences/s, the answers by
status and problem type, the slowest readiness answer, duplicates and licences without PDF. Numbers are measured,
not asserted; results go to ``bench/results/overload-<db>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from bench.common import percentile, write_results
from bench.harness import POSTGRES_URL, database, licence_row, start_server

__all__ = ["main", "run_clients"]


def _token(base: str, demo: dict[str, Any]) -> str:
    response = httpx.post(f"{base}/oauth/token", data={"grant_type": "client_credentials"},
                          auth=(demo["client_id"], demo["client_secret"]), timeout=30)
    response.raise_for_status()
    return str(response.json()["access_token"])


class Readiness:
    """Asks /readyz every 0.25 s in a thread of its own; keeps the slowest answer and the failures."""

    def __init__(self, base: str) -> None:
        self.base, self.slowest, self.failures, self.asked = base, 0.0, Counter[str](), 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.wait(0.25):
                t0 = time.perf_counter()
                try:
                    status = str(client.get(f"{self.base}/readyz").status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                self.slowest = max(self.slowest, time.perf_counter() - t0)
                self.asked += 1
                if status != "200":
                    self.failures[status] += 1

    def __enter__(self) -> Readiness:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()


def _callers(base: str, database_url: str, count: int) -> list[str]:
    """Tokens of ``count`` new API clients of the demo department (created in the database, as ``ecert client add`` would)."""
    import datetime as dt

    from sqlmodel import Session

    from identity.clients import create_client
    from identity.scopes import DEPARTMENT_SCOPES

    engine = sa.create_engine(database_url)
    made = []
    try:
        with Session(engine) as session:
            for n in range(count):
                new = create_client(session, name=f"bench caller {n}", department="DEMOAMR", scopes=list(DEPARTMENT_SCOPES),
                                    actor="bench", now=dt.datetime.now(dt.timezone.utc))
                made.append({"client_id": new.client.client_id, "client_secret": new.secret})
            session.commit()
    finally:
        engine.dispose()
    return [_token(base, demo) for demo in made]


async def _client(base: str, token: str, deadline: float, seed: int, out: dict[str, Any]) -> None:
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        while time.monotonic() < deadline:
            key, body = uuid.uuid4().hex, {"type_code": "BL", **licence_row(rng)}
            while True:  # one licence: retried with its key while the server says so
                t0 = time.perf_counter()
                try:
                    response = await client.post("/api/v1/licences", json=body, headers={**headers, "Idempotency-Key": key})
                except httpx.HTTPError as exc:
                    out["answers"][type(exc).__name__] += 1
                    break
                kind = str(response.status_code)
                if response.headers.get("content-type", "").startswith("application/problem+json"):
                    kind += " " + response.json().get("type", "").removeprefix("/problems/")
                out["answers"][kind] += 1
                if response.status_code in (200, 201):
                    out["latencies"].append(time.perf_counter() - t0)
                    out["issued"].add(key)
                    break
                if response.status_code != 503 or time.monotonic() > deadline + 60:
                    break
                out["retried"] += 1
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))


async def _load(base: str, tokens: list[str], clients: int, seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {"answers": Counter[str](), "latencies": [], "issued": set(), "retried": 0}
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(_client(base, tokens[n % len(tokens)], deadline, n, out) for n in range(clients)))
    return out


def _register(database_url: str) -> dict[str, int]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            duplicates = connection.execute(sa.text(
                "SELECT count(*) FROM (SELECT idempotency_key FROM licence WHERE idempotency_key IS NOT NULL "
                "GROUP BY department_code, idempotency_key HAVING count(*) > 1) d")).scalar_one()
            without_pdf = connection.execute(sa.text(
                "SELECT count(*) FROM licence WHERE pdf_blob_key IS NULL OR pdf_sha256 IS NULL")).scalar_one()
            total = connection.execute(sa.text("SELECT count(*) FROM licence")).scalar_one()
    finally:
        engine.dispose()
    return {"licences": int(total), "duplicate_keys": int(duplicates), "without_pdf": int(without_pdf)}


def run_clients(base: str, tokens: list[str], clients: int, seconds: float) -> dict[str, Any]:
    """One run of ``clients`` concurrent issuers for ``seconds`` (acting as the callers of ``tokens`` in turn),
    readiness watched."""
    started = time.perf_counter()
    with Readiness(base) as ready:
        out = asyncio.run(_load(base, tokens, clients, seconds))
    elapsed = time.perf_counter() - started
    latencies = out["latencies"]
    return {
        "clients": clients, "callers": len(set(tokens)), "seconds": round(elapsed, 1), "issued": len(out["issued"]),
        "licences_per_second": round(len(out["issued"]) / elapsed, 1), "answers": dict(out["answers"]),
        "retries_after_503": out["retried"],
        "p50_ms": round(percentile(latencies, 50) * 1000), "p99_ms": round(percentile(latencies, 99) * 1000),
        "readyz": {"asked": ready.asked, "slowest_ms": round(ready.slowest * 1000), "not_ready": dict(ready.failures)},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--clients", type=int, nargs="+", default=[16, 40])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--callers", type=int, default=1, help="distinct API clients the load acts as (0: one per client)")
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory() as scratch, database(args.database, Path(scratch), args.postgres_url) as url:
        server = start_server(Path(scratch) / "data", url, workers=args.workers)
        try:
            token = _token(server.base, server.demo)
            for clients in args.clients:
                callers = args.callers or clients
                tokens = [token] if callers == 1 else _callers(server.base, url, callers)
                run = run_clients(server.base, tokens, clients, args.seconds)
                print(run, flush=True)
                runs.append(run)
            register = _register(url)
        finally:
            server.stop()
    results = {"database": args.database, "workers": args.workers, "callers": args.callers, "runs": runs, "register": register}
    print(f"register after all runs: {register}")
    print(f"results: {write_results(args.output or f'overload-{args.database}', results)}")


if __name__ == "__main__":
    main()
