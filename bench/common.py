"""Shared helpers for benchmarks: a throwaway OpenBao, timing, and result files."""

from __future__ import annotations

import json
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from keys import TransitKeyStore, VaultConnection
from keys.openbao import ManagedOpenBao, free_port

RESULTS = Path(__file__).resolve().parent / "results"


@contextmanager
def throwaway_openbao() -> Iterator[tuple[ManagedOpenBao, TransitKeyStore]]:
    """A fresh embedded OpenBao in a temp dir, with the service's least-privilege AppRole."""
    with tempfile.TemporaryDirectory() as directory:
        server = ManagedOpenBao(Path(directory) / "openbao", port=free_port(), audit_log=True)
        credentials = server.start()
        try:
            yield server, TransitKeyStore(VaultConnection(server.addr, credentials))
        finally:
            server.stop()


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else float("inf")


def timed(function: Callable[[], Any], repeat: int) -> tuple[float, list[float]]:
    """Total seconds and per-call latencies of ``repeat`` sequential calls."""
    latencies = []
    started = time.perf_counter()
    for _ in range(repeat):
        t0 = time.perf_counter()
        function()
        latencies.append(time.perf_counter() - t0)
    return time.perf_counter() - started, latencies


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    import os

    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def write_results(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(), **data}
    path.write_text(json.dumps(payload, indent=2))
    return path


@contextmanager
def throwaway_schema(postgres_url: str, prefix: str) -> Iterator[str]:
    """A database URL whose search_path is a fresh schema on the PostgreSQL server ``postgres_url`` names, dropped
    (with everything in it) afterwards."""
    import uuid
    from urllib.parse import quote

    import sqlalchemy as sa

    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{postgres_url}{'&' if '?' in postgres_url else '?'}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
