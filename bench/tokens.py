"""Access tokens: verification in-process and over HTTP, and client-credentials grants.

Run: ``.venv/bin/python -m bench.tokens [--seconds 10] [--workers 2] [--connections 64] [--database POSTGRES_URL]``

In-process: ``AccessTokens.verify`` (python-jose, public keys cached by kid, no Vault call) and
``AccessTokens.issue`` (one Vault transit signature per token). Over HTTP: ``ecert serve`` (uvicorn,
``--workers`` processes) against a throwaway embedded OpenBao and a fresh SQLite database (or a
throwaway schema on the PostgreSQL server ``--database`` names), loaded with ``wrk`` (Debian package ``wrk``; the HTTP part is skipped without it):
``GET /healthz`` as the bare-endpoint reference, ``POST /api/v1/identity/verify``, and
``POST /oauth/token`` (client_secret_basic: client lookup, hash, audit event, Vault signature).
People's side: the raw argon2id rate with ecert's parameters (in-process), ``POST /portal/login``
(password logins: rate at 16 connections; 200 concurrent logins with shed ones counted apart) and refresh-token grants
(``POST /oauth/token``, each token used once), then all of it in Keycloak's sizing units
(per vCPU, memory per node). ``--no-logins`` skips that part.
wrk runs on the same machine, so it takes CPU from the server. Numbers are measured, never asserted.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from argon2 import PasswordHasher
from jose import jwt
from jose.backends import ECKey
from sqlmodel import select

from bench.common import peak_rss_mib, percentile, rate, throwaway_schema, write_results
from bench.licences import person_id
from ca.departments import add_department
from certificates.holders import PiiVault
from ecert.clock import SystemClock
from ecert.db import make_engine, migrate, session_scope
from identity import accounts, login, oidc
from identity.clients import NewClient, create_client
from identity.models import Account, RefreshToken
from identity.passwords import ARGON2_PARAMETERS, keyed_hash
from identity.tokens import AccessTokens, TokenKeys
from keys import TransitKeyStore, VaultConnection
from keys.openbao import ManagedOpenBao, free_port

DEPARTMENT = "BENCH"
PASSWORD = "bench password 1234"


def _verify_rate(tokens: AccessTokens, token: str, seconds: float) -> dict[str, float]:
    count, latencies, deadline = 0, [], time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        for _ in range(100):
            tokens.verify(token)
        latencies.append((time.perf_counter() - t0) / 100)
        count += 100
    return {"per_s": rate(count, time.perf_counter() - started), "p50_us": percentile(latencies, 50) * 1e6}


def in_process(keystore: TransitKeyStore, seconds: float) -> dict[str, Any]:
    keys = TokenKeys(keystore, "bench-token-signing")
    tokens = AccessTokens(keys, issuer="http://bench", audience="http://bench/api", clock=SystemClock())
    uncached = AccessTokens(keys, issuer="http://bench", audience="http://bench/api", clock=SystemClock(), cache_size=0)
    issue = lambda: tokens.issue(subject="cl_bench", scopes=["licences:read"], client_id="cl_bench",  # noqa: E731
                                 department=DEPARTMENT, acr="client-secret")
    token = issue().token
    results: dict[str, Any] = {
        "verify, signature checked each time (python-jose, cached JWKS), 1 thread": _verify_rate(uncached, token, seconds),
        "verify, token seen before (claims re-checked), 1 thread": _verify_rate(tokens, token, seconds / 2),
    }
    key = ECKey(keys.info().public_key(), "ES256")
    started, count = time.perf_counter(), 0
    while time.perf_counter() - started < seconds / 2:
        jwt.decode(token, key, algorithms=["ES256"], audience="http://bench/api", issuer="http://bench")
        count += 1
    results["reference: jose.jwt.decode with a prepared key, 1 thread"] = {"per_s": rate(count, time.perf_counter() - started)}
    for threads in (1, 4):
        done: list[float] = []
        deadline = time.perf_counter() + seconds / 2

        def work(_: int) -> list[float]:
            mine = []
            while time.perf_counter() < deadline:  # noqa: B023 - work() runs within this iteration
                t0 = time.perf_counter()
                issue()
                mine.append(time.perf_counter() - t0)
            return mine

        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            for part in pool.map(work, range(threads)):
                done.extend(part)
        results[f"issue (Vault signature), {threads} thread(s)"] = {
            "per_s": rate(len(done), time.perf_counter() - started), "p50_ms": percentile(done, 50) * 1000,
            "p99_ms": percentile(done, 99) * 1000}
    return results


def argon2_rate(seconds: float) -> dict[str, Any]:
    """The raw argon2id verification rate with ecert's parameters (identity.passwords), 1 thread and one per CPU."""
    hasher = PasswordHasher(**ARGON2_PARAMETERS)
    stored = hasher.hash(PASSWORD)
    results: dict[str, Any] = {"parameters": ARGON2_PARAMETERS}
    for threads in sorted({1, os.cpu_count() or 1}):
        deadline = time.perf_counter() + seconds / 2

        def work(_: int) -> int:
            count = 0
            while time.perf_counter() < deadline:  # noqa: B023 - work() runs within this iteration
                hasher.verify(stored, PASSWORD)
                count += 1
            return count

        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            total = sum(pool.map(work, range(threads)))
        results[f"argon2id verify, {threads} thread(s)"] = {"per_s": rate(total, time.perf_counter() - started)}
    return results


def _people(database_url: str, keystore: TransitKeyStore, count: int) -> list[str]:
    """``count`` person accounts (password ``PASSWORD``); their login names (ID numbers)."""
    engine = make_engine(database_url)
    pii, rng, names = PiiVault(keystore), random.Random(7), []

    def one(_: int) -> str:
        id_number = person_id(rng)
        with session_scope(engine) as session:
            accounts.register_person(session, pii, name="压测", id_number=id_number, phone="139" + f"{rng.randint(0, 99999999):08d}",
                                     password=PASSWORD, now=SystemClock().now())
        return id_number

    with ThreadPoolExecutor(4) as pool:
        names = list(pool.map(one, range(count)))
    engine.dispose()
    return names


def _refresh_tokens(database_url: str, count: int) -> tuple[oidc.NewRelyingParty, list[str]]:
    """A confidential relying party and ``count`` live refresh tokens (rows written directly: one session each)."""
    engine = make_engine(database_url)
    now = SystemClock().now()
    with session_scope(engine) as session:
        party = oidc.register_relying_party(session, name="bench", redirect_uris=["https://bench.example/cb"], actor="bench", now=now)
        account = session.exec(select(Account).limit(1)).one()
        login_session = login.start_session(session, account, acr="pwd", now=now).session
        tokens = [secrets.token_urlsafe(32) for _ in range(count)]
        session.add_all([RefreshToken(
            token_hash=keyed_hash("refresh", t), family_id=f"fam_{i:012x}", client_id=party.party.client_id,
            account_id=account.id, session_id=login_session.id, scope="openid profile", acr="pwd", auth_time=now,
            issued_at=now, expires_at=now + dt.timedelta(days=1)) for i, t in enumerate(tokens)])
    engine.dispose()
    return party, tokens


def _login_scenarios(args: argparse.Namespace, scratch: Path, base: str, keystore: TransitKeyStore,
                     database_url: str) -> dict[str, Any]:
    people = _people(database_url, keystore, args.people)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    bodies = [f"login_name={name}&password={quote(PASSWORD)}&next=/portal" for name in people]
    login_script = _rotating_script(scratch, form, bodies * 4, 2, prefix="", name="logins")
    party, refresh = _refresh_tokens(database_url, args.refresh)
    basic = base64.b64encode(f"{party.party.client_id}:{party.secret}".encode()).decode()
    refresh_script = _rotating_script(scratch, {**form, "Authorization": f"Basic {basic}"}, refresh, 2,
                                      prefix="grant_type=refresh_token&refresh_token=", name="refresh")
    results: dict[str, Any] = {}
    _drain(base)
    name = "POST /portal/login (argon2id, session, history, audit), 16 connections"
    results[name] = {**wrk(f"{base}/portal/login", login_script, args.seconds, 16, 2, timeout=30), "connections": 16}
    print(f"{name}: {results[name]}", flush=True)
    _drain(base)
    name = "POST /portal/login, 200 concurrent logins (shed ones retry after Retry-After)"
    results[name] = login_crowd(base, people, concurrency=200, seconds=args.seconds)
    print(f"{name}: {results[name]}", flush=True)
    _drain(base)
    name = "POST /portal/login, 200 people at the same moment, once each (time until logged in, retries included)"
    results[name] = login_burst(base, people, concurrency=200)
    print(f"{name}: {results[name]}", flush=True)
    _drain(base)
    name = "POST /oauth/token (refresh_token grant: rotation, access + ID token, audit)"
    results[name] = {**wrk(f"{base}/oauth/token", refresh_script, args.seconds, 16, 2, timeout=30), "connections": 16}
    print(f"{name}: {results[name]}", flush=True)
    return results


async def _exchange(reader: Any, writer: Any, raw: bytes) -> tuple[int, float]:
    """One HTTP/1.1 request on a keep-alive connection: (status, Retry-After seconds or 1)."""
    writer.write(raw)
    await writer.drain()
    status, length, retry = int((await reader.readline()).split()[1]), 0, 1.0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "retry-after":
            retry = float(value)
    await reader.readexactly(length)
    return status, retry


def _login_request(host: str, login_name: str) -> bytes:
    from urllib.parse import urlencode

    body = urlencode({"login_name": login_name, "password": PASSWORD, "next": "/portal"}).encode()
    return (f"POST /portal/login HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded"
            f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def login_crowd(base: str, people: list[str], *, concurrency: int, seconds: float) -> dict[str, Any]:
    """``concurrency`` people logging in over and over for ``seconds``, each on a keep-alive connection of their own.
    A login refused for load (503, ``login-busy``) is counted apart, and its sender waits Retry-After as the page
    asks; latency percentiles are of admitted logins (303) and of shed answers separately. Plain asyncio streams:
    an HTTP client library would be the bottleneck on a shared 2-core machine long before the server."""
    import asyncio
    from urllib.parse import urlsplit

    target = urlsplit(base)
    admitted: list[float] = []
    shed: list[float] = []
    other: dict[int, int] = {}

    async def person(i: int, deadline: float) -> None:
        raw = _login_request(target.netloc, people[i % len(people)])
        reader, writer = await asyncio.open_connection(target.hostname, target.port)
        try:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                status, retry = await _exchange(reader, writer, raw)
                elapsed = (time.perf_counter() - started) * 1000
                if status == 303:
                    admitted.append(elapsed)
                elif status == 503:
                    shed.append(elapsed)
                    await asyncio.sleep(min(retry, max(0.0, deadline - time.monotonic())))
                else:
                    other[status] = other.get(status, 0) + 1
        finally:
            writer.close()

    async def crowd() -> float:
        started = time.monotonic()
        await asyncio.gather(*(person(i, started + seconds) for i in range(concurrency)))
        return time.monotonic() - started

    elapsed = asyncio.run(crowd())
    per_s = round(rate(len(admitted), elapsed), 1)
    return {"per_s": per_s, "admitted_per_s": per_s, "admitted": len(admitted), "shed": len(shed),
            "other_statuses": other, "admitted_p50_ms": round(percentile(admitted, 50)),
            "admitted_p99_ms": round(percentile(admitted, 99)), "shed_p99_ms": round(percentile(shed, 99)),
            "connections": concurrency, "seconds": round(elapsed, 1)}


def login_burst(base: str, people: list[str], *, concurrency: int) -> dict[str, Any]:
    """``concurrency`` people press "log in" at the same moment, once each; one refused for load waits Retry-After
    and tries again, as the page asks. The latency is each person's, from the first press to being logged in."""
    import asyncio
    from urllib.parse import urlsplit

    target = urlsplit(base)
    waited: list[float] = []
    attempts: list[int] = []
    failed: dict[int, int] = {}

    async def person(i: int, start: asyncio.Event) -> None:
        raw = _login_request(target.netloc, people[i % len(people)])
        reader, writer = await asyncio.open_connection(target.hostname, target.port)
        try:
            await start.wait()
            began, tries = time.perf_counter(), 0
            while True:
                tries += 1
                status, retry = await _exchange(reader, writer, raw)
                if status != 503:
                    break
                await asyncio.sleep(retry)
            if status == 303:
                waited.append((time.perf_counter() - began) * 1000)
                attempts.append(tries)
            else:
                failed[status] = failed.get(status, 0) + 1
        finally:
            writer.close()

    async def burst() -> float:
        start = asyncio.Event()
        people_ = [asyncio.create_task(person(i, start)) for i in range(concurrency)]
        await asyncio.sleep(1.0)  # every connection open before anyone presses
        began = time.monotonic()
        start.set()
        await asyncio.gather(*people_)
        return time.monotonic() - began

    elapsed = asyncio.run(burst())
    return {"logged_in": len(waited), "failed_statuses": failed, "p50_ms": round(percentile(waited, 50)),
            "p99_ms": round(percentile(waited, 99)), "max_ms": round(max(waited, default=0.0)),
            "attempts_max": max(attempts, default=0), "seconds": round(elapsed, 1), "connections": concurrency}


def _drain(base: str) -> None:
    """Wait until requests queued by the last load run are done (a health check answers quickly again)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            httpx.get(f"{base}/healthz", timeout=30)
        except httpx.HTTPError:
            pass
        if time.perf_counter() - started < 0.05:
            return
        time.sleep(0.5)


def _keycloak_units(results: dict[str, Any]) -> dict[str, Any]:
    """Ours in Keycloak's sizing units: per vCPU (this machine's CPUs, wrk included) and memory per node."""
    cpus = os.cpu_count() or 1
    http = results.get("http", {})

    def per_cpu(prefix: str) -> float | None:
        found = [v["per_s"] for k, v in http.items() if k.startswith(prefix) and isinstance(v, dict) and "per_s" in v]
        return round(max(found) / cpus, 1) if found else None

    return {
        "vcpus": cpus,
        "password logins/s per vCPU (Keycloak: 15)": per_cpu("POST /portal/login"),
        "client-credential grants/s per vCPU (Keycloak: 120)": per_cpu("POST /oauth/token (client_credentials"),
        "refresh-token grants/s per vCPU (Keycloak: 120)": per_cpu("POST /oauth/token (refresh_token"),
        "server memory MiB per node (Keycloak: ~1250)": http.get("server_rss_mib"),
    }


def _wrk_script(directory: Path, name: str, method: str, headers: dict[str, str], body: str | None) -> Path:
    lines = [f'wrk.method = "{method}"']
    lines += [f'wrk.headers["{key}"] = "{value}"' for key, value in headers.items()]
    if body is not None:
        lines.append(f'wrk.body = "{body}"')
    path = directory / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def _rotating_script(directory: Path, headers: dict[str, str], tokens: list[str], threads: int, *,
                     prefix: str = "token=", name: str = "verify-distinct") -> Path:
    """Each wrk thread cycles through its own share of ``tokens`` (so revisits are far apart); the
    body of each request is ``prefix`` + one line."""
    (directory / f"{name}.txt").write_text("\n".join(tokens) + "\n")
    header_lines = "\n".join(f'headers["{key}"] = "{value}"' for key, value in headers.items())
    script = f"""
headers = {{}}
{header_lines}
local all = {{}}
for line in io.lines("{directory / f'{name}.txt'}") do all[#all + 1] = line end
local count = 0
function setup(thread)
  thread:set("id", count)
  count = count + 1
end
function init(args)
  share = math.floor(#all / {threads})
  first = id * share
  i = 0
end
function request()
  i = (i + 1) % share
  return wrk.format("POST", nil, headers, "{prefix}" .. all[first + i + 1])
end
"""
    path = directory / f"{name}.lua"
    path.write_text(script)
    return path


def _mint(keystore: TransitKeyStore, issuer: str, count: int) -> list[str]:
    """Tokens the server accepts (its key, issuer and audience), minted here with 8 threads."""
    tokens = AccessTokens(TokenKeys(keystore), issuer=issuer, audience=issuer + "/api", clock=SystemClock())

    def one(i: int) -> str:
        return tokens.issue(subject=f"cl_{i:020x}", scopes=["licences:read"], client_id=f"cl_{i:020x}",
                            department=DEPARTMENT, acr="client-secret").token

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def _found(pattern: str, text: str) -> str:
    """The first group of ``pattern`` in ``text`` (wrk's and /proc's formats are fixed)."""
    match = re.search(pattern, text)
    if match is None:
        raise ValueError(f"{pattern!r} is not in {text[:200]!r}")
    return match.group(1)


def _unit_ms(value: str) -> float:
    number, unit = _found(r"^([\d.]+)", value), _found(r"^[\d.]+(us|ms|s)", value)
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, script: Path, seconds: float, connections: int, threads: int, timeout: int = 2) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(seconds)}s", f"--timeout={timeout}s", "--latency", "-s",
         str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout
    per_s = float(_found(r"Requests/sec:\s+([\d.]+)", out))
    latency = {q: _unit_ms(_found(rf"\s{q}%\s+(\S+)", out)) for q in ("50", "99")}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    timeouts = re.search(r"timeout (\d+)", out)
    return {"per_s": per_s, "p50_ms": latency["50"], "p99_ms": latency["99"],
            "non_2xx": int(errors.group(1)) if errors else 0, "timeouts": int(timeouts.group(1)) if timeouts else 0}


def _clients(database_url: str) -> tuple[NewClient, NewClient]:
    engine = make_engine(database_url)
    migrate(engine)
    now = SystemClock().now()
    with session_scope(engine) as session:
        add_department(session, DEPARTMENT, "Benchmark department", actor="bench", now=now)
        checker = create_client(session, name="verifier", department=DEPARTMENT, scopes=["identity:verify"],
                                actor="bench", now=now)
        system = create_client(session, name="system", department=DEPARTMENT, scopes=["licences:read"],
                               actor="bench", now=now)
    engine.dispose()
    return checker, system


def bare() -> Any:
    """The reference: a bare FastAPI app with one JSON endpoint (``uvicorn bench.tokens:bare --factory``)."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/")
    async def root() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _bare_reference(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bench.tokens:bare", "--factory", "--port", str(port),
               "--workers", str(args.workers), "--log-level", "warning", "--no-access-log"]
    process = _serve(command, dict(os.environ), f"http://127.0.0.1:{port}/")
    try:
        script = _wrk_script(scratch, "bare", "GET", {}, None)
        return {**wrk(f"http://127.0.0.1:{port}/", script, args.seconds, args.connections, 2), "connections": args.connections}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def _serve(command: list[str], env: dict[str, str], ready_url: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            if httpx.get(ready_url, timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("ecert serve did not become ready")


def _rss_mib(root: int) -> float:
    """Resident memory of the server: the uvicorn parent and its worker processes."""
    total = 0
    for pid in [root, *(int(p) for p in subprocess.run(["pgrep", "-P", str(root)], capture_output=True, text=True).stdout.split())]:
        for child in [pid, *(int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split())]:
            try:
                status = Path(f"/proc/{child}/status").read_text()
            except OSError:
                continue
            total += int(_found(r"VmRSS:\s+(\d+)", status))
    return total / 1024


def over_http(server: ManagedOpenBao, credentials: Any, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    with _database(args.database, scratch) as database_url:
        return _over_http(server, credentials, args, scratch, database_url)


def _over_http(server: ManagedOpenBao, credentials: Any, args: argparse.Namespace, scratch: Path,
               database_url: str) -> dict[str, Any]:
    checker, system = _clients(database_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ECERT_PORT": str(port), "ECERT_WORKERS": str(args.workers), "ECERT_DATA_DIR": str(scratch),
           "ECERT_DATABASE_URL": database_url, "ECERT_VAULT_ADDR": server.addr, "ECERT_PUBLIC_URL": base,
           "ECERT_VAULT_ROLE_ID": credentials.role_id, "ECERT_VAULT_SECRET_ID": credentials.secret_id,
           "ECERT_LOG_LEVEL": "WARNING", "ECERT_DEMO": "false", "ECERT_LOGIN_RATE_PER_SECOND": "1000000",
           "ECERT_LOGIN_BURST": "1000000"}
    process = _serve([sys.executable, "-m", "ecert.cli", "serve"], env, f"{base}/readyz")
    try:
        def token(new: NewClient) -> str:
            response = httpx.post(f"{base}/oauth/token", data={"grant_type": "client_credentials"},
                                  auth=(new.client.client_id, new.secret))
            response.raise_for_status()
            return str(response.json()["access_token"])

        caller, subject = token(checker), token(system)
        distinct = _mint(TransitKeyStore(VaultConnection(server.addr, credentials)), base, args.distinct)
        basic = base64.b64encode(f"{system.client.client_id}:{system.secret}".encode()).decode()
        form = "application/x-www-form-urlencoded"
        scripts = {
            "GET /healthz (bare endpoint, same app)": ("/healthz", _wrk_script(scratch, "health", "GET", {}, None)),
            "POST /api/v1/identity/verify, one token (verified once, then cached)": ("/api/v1/identity/verify", _wrk_script(
                scratch, "verify", "POST", {"Authorization": f"Bearer {caller}", "Content-Type": form},
                f"token={quote(subject)}")),
            f"POST /api/v1/identity/verify, {args.distinct} distinct tokens (a signature check each)": (
                "/api/v1/identity/verify", _rotating_script(
                    scratch, {"Authorization": f"Bearer {caller}", "Content-Type": form}, distinct, 2)),
            "POST /oauth/token (client_credentials grant)": ("/oauth/token", _wrk_script(
                scratch, "grant", "POST", {"Authorization": f"Basic {basic}", "Content-Type": form},
                "grant_type=client_credentials")),
        }
        results: dict[str, Any] = {"GET / of a bare FastAPI app (reference, same workers)": _bare_reference(args, scratch)}
        for name, (path, script) in scripts.items():
            connections = args.connections if "grant" not in name else min(args.connections, 16)
            results[name] = {**wrk(base + path, script, args.seconds, connections, 2), "connections": connections}
            print(f"{name}: {results[name]}", flush=True)
        if args.logins:
            keystore = TransitKeyStore(VaultConnection(server.addr, credentials))
            results.update(_login_scenarios(args, scratch, base, keystore, database_url))
        print(results, flush=True)
        results["server_rss_mib"] = _rss_mib(process.pid)
        return results
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


@contextmanager
def _database(url: str | None, scratch: Path) -> Iterator[str]:
    """A fresh database: a temp SQLite file, or a throwaway schema on the PostgreSQL server ``url`` names."""
    if not url:
        yield f"sqlite:///{scratch}/bench.db"
        return
    with throwaway_schema(url, "bench_tokens") as schema_url:
        yield schema_url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--database")
    parser.add_argument("--distinct", type=int, default=24000, help="tokens to cycle through (more than the cache)")
    parser.add_argument("--no-logins", dest="logins", action="store_false", help="skip password logins and refresh grants")
    parser.add_argument("--people", type=int, default=64, help="accounts the login load cycles through")
    parser.add_argument("--refresh", type=int, default=30000, help="refresh tokens to mint (each is used once)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        scratch = Path(directory)
        server = ManagedOpenBao(scratch / "openbao", port=free_port(), audit_log=True)
        credentials = server.start()
        try:
            keystore = TransitKeyStore(VaultConnection(server.addr, credentials))
            results: dict[str, Any] = {"load_average_at_start": os.getloadavg(), "in-process": in_process(keystore, args.seconds)}
            if args.logins:
                results["in-process"].update(argon2_rate(args.seconds))
            print(results, flush=True)
            if shutil.which("wrk"):
                results["http"] = over_http(server, credentials, args, scratch)
            else:
                print("wrk not found (apt-get install wrk): HTTP part skipped")
        finally:
            server.stop()
    results["load_average_at_end"] = os.getloadavg()
    results["keycloak_units"] = _keycloak_units(results)
    results["bench_peak_rss_mib"] = peak_rss_mib()
    path = write_results("tokens" if not args.database else "tokens-postgresql", {"workers": args.workers, "database": (args.database or "sqlite").split(":")[0],
                                    "at_utc": dt.datetime.now(dt.timezone.utc).isoformat(), "results": results})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
