"""Link verification over HTTP on a filled PostgreSQL schema (``bench.verification --fill N --schema NAME``).

For each (size, schema) pair: :func:`bench.scale.ensure` fills the schema once (licences of a real department and
type, identities, the licences' transparency leaves) or reuses it; a persistent embedded OpenBao kept beside it
(``--state-dir``/NAME/openbao, same port every run) holds the CA and transparency keys, so the CA made by the first
run stays usable; a tree head over the whole log is signed at set-up, so every synthetic licence has an inclusion
proof. Then ``ecert serve`` (``--workers`` uvicorn processes, per-IP limit lifted) is loaded by ``wrk`` on the same
machine, one variant after the other in the same run:

* the bare FastAPI endpoint of :func:`bench.tokens.bare` (reference);
* hot: ``--hot`` tokens chosen at random per request, after a warm-up over them (``LinkVerifier.remembered``: the
  verdict from memory, vouched for by the change feed, no database read);
* cold: distinct random tokens across the whole table, each requested once (a full verdict read: record, history,
  inclusion proof; the answer is then remembered but never asked for again). Before it, one run of the same length
  asks for ``--cold`` other tokens, each once, and is recorded as a warm-up: the measured first sights meet a server
  that has been answering first sights (its read pool, PostgreSQL's and the kernel's caches of the index pages), not
  one that has just started; the warm-up's own numbers stay in the results;
* unknown tokens: well-formed tokens that match no licence (one indexed read each, nothing to remember: the cost of
  the read path alone, at any size).

Requests/s, p50/p99 latency, non-2xx answers and socket errors/timeouts per variant, and the server's RSS (uvicorn
parent and workers) after each, go to ``bench/results/verification-link-postgresql.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from bench import scale
from bench.common import RESULTS, machine
from bench.tokens import _bare_reference, _rss_mib, _serve, wrk
from keys.openbao import ManagedOpenBao, free_port

__all__ = ["run"]


def _tokens_script(directory: Path, name: str, paths: list[str], *, distinct: bool) -> Path:
    """wrk: paths read from a file by every thread; random choice per request, or (``distinct``) each thread walks
    its own slice of the (shuffled) list so no path is asked twice."""
    listing = directory / f"{name}.txt"
    listing.write_text("\n".join(paths) + "\n")
    script = directory / f"{name}.lua"
    script.write_text(
        "local threads, all, i = 0, {}, 0\n"
        "function setup(thread) thread:set('id', threads); threads = threads + 1 end\n"
        f"function init(args)\n  for line in io.lines('{listing}') do all[#all + 1] = line end\n"
        "  math.randomseed(os.time() * 1000 + id)\n"
        "  local share = math.floor(#all / 2)\n  i = id * share\nend\n"
        + ("function request() i = i + 1; return wrk.format('GET', all[(i % #all) + 1]) end\n" if distinct else
           "function request() return wrk.format('GET', all[math.random(#all)]) end\n"))
    return script


def _connections_per_process(port: int, after: float) -> dict[str, int]:
    """After ``after`` seconds: how the load generator's connections to ``port`` are spread over server processes
    (uvicorn workers share one listening socket; each keeps the connections it accepted)."""
    time.sleep(after)
    listing = subprocess.run(["ss", "-Htnp", "state", "established", f"( sport = :{port} )"], capture_output=True,
                             text=True).stdout
    spread: dict[str, int] = {}
    for pid in re.findall(r"pid=(\d+)", listing):
        spread[pid] = spread.get(pid, 0) + 1
    return spread


def _loaded(base: str, port: int, script: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One wrk run, and the connections per worker seen 2 s into it."""
    with ThreadPoolExecutor(1) as pool:
        spread = pool.submit(_connections_per_process, port, 2.0)
        result = wrk(base + "/", script, args.seconds, args.connections, 2)
        return {**result, "connections_per_worker": sorted(spread.result().values(), reverse=True)}


def _openbao(state: Path) -> ManagedOpenBao:
    """The schema's own OpenBao, on the port it was first given (raft remembers its cluster address)."""
    state.mkdir(parents=True, exist_ok=True)
    port_file = state / "openbao.port"
    if not port_file.exists():
        port_file.write_text(str(free_port()))
    return ManagedOpenBao(state / "openbao", port=int(port_file.read_text()), audit_log=False)


def _prepare(database_url: str, server: ManagedOpenBao, credentials: Any, state: Path, token: str) -> dict[str, Any]:
    """The CA (first run only), a signed tree head over every leaf, and one synthetic verdict checked in process."""
    from sqlmodel import Session

    from audit.tlog import latest_tree_head, sign_tree_head
    from ecert.container import Container
    from ecert.runtime import Runtime
    from ecert.settings import Settings
    from verify.link import LinkVerifier

    settings = Settings(data_dir=state / "data", vault_addr=server.addr, vault_role_id=credentials.role_id,
                        vault_secret_id=SecretStr(credentials.secret_id or ""), database_url=database_url,
                        demo=False, public_url="http://127.0.0.1:8000")
    runtime = Runtime.build(settings)
    try:
        t0 = time.perf_counter()
        Container.build(runtime).ca.bootstrap()
        sign_tree_head(runtime.engine, runtime.keystore, runtime.clock)  # None when the latest head already covers the log
        with Session(runtime.engine) as session:
            head = latest_tree_head(session)
        verdict = LinkVerifier(runtime.reader, runtime.clock, public_url=settings.public_url).verify(token)
        assert verdict.outcome.value == "valid" and verdict.transparency and verdict.transparency.logged, verdict
        return {"setup_seconds": round(time.perf_counter() - t0, 1), "tree_size": head.tree_size if head else None,
                "sample verdict": {"outcome": verdict.outcome.value, "issuer": verdict.licence.issuer_name if verdict.licence else None,
                                   "proof logged": verdict.transparency.logged,
                                   "leaf_index": verdict.transparency.leaf_index}}
    finally:
        runtime.close()


def _size(args: argparse.Namespace, size: int, schema: str, scratch: Path) -> dict[str, Any]:
    state = Path(args.state_dir) / schema
    label = scale.ensure(args.database, schema, licences=size, identities=int(size * args.identities_ratio))
    print(f"{schema}: {label}", flush=True)
    database_url = scale.schema_url(args.database, schema)
    rng = random.Random(size)
    picks = rng.sample(range(size), min(size, args.hot + 2 * args.cold))
    hot = [f"/api/v1/verify/{scale.token_of(i)}" for i in picks[:args.hot]]
    cold = [f"/api/v1/verify/{scale.token_of(i)}" for i in (picks[args.hot:args.hot + args.cold] or picks)]
    # first sights before the measured ones, of other tokens (none of them is asked again): a running server's state
    warm_cold = [f"/api/v1/verify/{scale.token_of(i)}" for i in picks[args.hot + args.cold:]]
    unknown = [f"/api/v1/verify/{uuid.UUID(int=rng.getrandbits(128)).hex}" for _ in range(10_000)]
    server = _openbao(state)
    credentials = server.start()
    result: dict[str, Any] = {"schema": schema, "fill": label, "connections": args.connections, "wrk_threads": 2,
                              "workers": args.workers, "seconds_per_variant": args.seconds}
    try:
        result.update(_prepare(database_url, server, credentials, state, scale.token_of(picks[0])))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "ECERT_PORT": str(port), "ECERT_WORKERS": str(args.workers), "ECERT_DATA_DIR": str(state / "data"),
               "ECERT_DATABASE_URL": database_url, "ECERT_VAULT_ADDR": server.addr, "ECERT_PUBLIC_URL": base,
               "ECERT_VAULT_ROLE_ID": credentials.role_id or "", "ECERT_VAULT_SECRET_ID": credentials.secret_id or "",
               "ECERT_LOG_LEVEL": "WARNING", "ECERT_DEMO": "false", "ECERT_VERIFY_RATE_PER_SECOND": "1000000000",
               "ECERT_VERIFY_BURST": "1000000000"}
        result["load_average_before"] = os.getloadavg()
        result["GET / of a bare FastAPI app (reference, same run)"] = _bare_reference(args, scratch)
        process = _serve([sys.executable, "-m", "ecert.cli", "serve"], env, f"{base}/readyz")
        try:
            answer = httpx.get(base + cold[-1], timeout=10)
            body = answer.json()
            result["sample answer"] = {"status": answer.status_code, "outcome": body.get("outcome"),
                                       "transparency logged": (body.get("transparency") or {}).get("logged")}
            result["server RSS MiB at start"] = round(_rss_mib(process.pid))
            warm = _tokens_script(scratch, "hot-warm", hot, distinct=False)
            # ~10 requests per hot token and worker, so each worker has read and remembered (nearly) all of them
            result["warm-up (not a result)"] = wrk(base + "/", warm, max(10.0, args.seconds), args.connections, 2)
            if warm_cold:
                script = _tokens_script(scratch, "cold-warm", warm_cold, distinct=True)
                result["first sights of other tokens before the measured ones (warm-up, not a result)"] = {
                    **_loaded(base, port, script, args), "server_rss_mib": round(_rss_mib(process.pid))}
            runs = {
                f"hot: {len(hot)} tokens at random (remembered verdicts, no database read)": (hot, False),
                f"cold: distinct random tokens across all {size:,} licences (a database read each)": (cold[:-1], True),
                "unknown tokens (404 expected: one indexed read each, nothing remembered)": (unknown, False),
            }
            for name, (paths, distinct) in runs.items():
                script = _tokens_script(scratch, f"run-{len(result)}", paths, distinct=distinct)
                result[name] = {**_loaded(base, port, script, args),
                                "server_rss_mib": round(_rss_mib(process.pid)), "load_average_after": os.getloadavg()}
                print(f"{size:,} {name}: {result[name]}", flush=True)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    finally:
        server.stop()
    return result


def run(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    if len(args.schema) != len(args.fill):
        raise SystemExit("give one --schema per --fill size")
    results: dict[str, Any] = {"machine": machine(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "load_average_at_start": os.getloadavg(), "sizes": {}}
    for size, schema in zip(args.fill, args.schema):
        results["sizes"][str(size)] = _size(args, size, schema, scratch)
    results["load_average_at_end"] = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / (args.output or "verification-link-postgresql.json")
    path.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(f"results: {path}")
    return results
