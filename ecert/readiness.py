"""Readiness of the running system: the database, Vault (unsealed) and, when PDFs live outside the database, the blob
store, checked concurrently, each in a small pool of its own with at most one check of each kind in flight, within
:data:`READY_BUDGET` seconds whatever they do: a check that has not answered by then counts as ``timeout``. A hung
dependency therefore never holds the probe or the request threads."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from sqlmodel import Session

from certificates.blobs import BlobStore, DatabaseBlobStore, FileBlobStore
from ecert.errors import EcertError
from ecert.runtime import Runtime

__all__ = ["READY_BUDGET", "MIN_FREE_BYTES", "Outcome", "Readiness", "blob_store_state"]

READY_BUDGET = 0.8  # seconds: /readyz answers within 1 s
MIN_FREE_BYTES = 1 << 20  # a filesystem blob store with less than this free is full (about ten sealed PDFs)
Outcome = tuple[str, str | None]  # (state, reason when not ok)


class _Probe:
    """One dependency check, run in a thread, at most one at a time; waited for up to a budget."""

    def __init__(self, check: Callable[[], Outcome], pool: ThreadPoolExecutor) -> None:
        self._check = check
        self._pool = pool
        self._lock = threading.Lock()
        self._running: Future[Outcome] | None = None

    async def outcome(self, budget: float) -> Outcome:
        with self._lock:  # a check still running from an earlier call is awaited, not started again
            if self._running is None or self._running.done():
                self._running = self._pool.submit(self._safe)
            running = self._running
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(running)), budget)
        except TimeoutError:
            return "timeout", f"no answer within {budget:g} s"

    def _safe(self) -> Outcome:
        try:
            return self._check()
        except EcertError as exc:
            return "unavailable", exc.detail
        except Exception as exc:  # noqa: BLE001 - readiness reports, it never fails
            return "unavailable", type(exc).__name__


class Readiness:
    """The checks behind /readyz for one runtime."""

    def __init__(self, runtime: Runtime, blobs: BlobStore) -> None:
        self._pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="readyz")
        self.probes = {
            "database": _Probe(lambda: ("ok", None) if runtime.database_ready() else ("unavailable", None), self._pool),
            "vault": _Probe(lambda: _vault_state(runtime), self._pool),
        }
        if not isinstance(blobs, DatabaseBlobStore):  # PDFs in the database: the database check covers them
            self.probes["blobs"] = _Probe(lambda: blob_store_state(blobs), self._pool)

    async def check(self, budget: float = READY_BUDGET) -> dict[str, Outcome]:
        names = list(self.probes)
        outcomes = await asyncio.gather(*(self.probes[name].outcome(budget) for name in names))
        return dict(zip(names, outcomes))


def _vault_state(runtime: Runtime) -> Outcome:
    health = runtime.keystore.connection.health()
    if health.ready:
        return "ok", None
    return ("sealed", None) if health.reachable and health.sealed else ("unavailable", None)


def blob_store_state(store: BlobStore) -> Outcome:
    """Can the blob store take a document now? A file store is written to (and must have room); others are asked."""
    if isinstance(store, FileBlobStore):
        return _directory_state(store.root)
    store.exists(Session(), "readyz/probe")  # S3: HEAD of an absent object; unreachable raises BlobStoreUnavailable
    return "ok", None


def _directory_state(root: Path) -> Outcome:
    probe = root / f".readyz-{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        stats = os.statvfs(root)
        free = stats.f_bavail * stats.f_frsize
        if free < MIN_FREE_BYTES:
            return "full", f"{free // 1024} KiB free in {root}"
        with open(probe, "wb") as handle:
            handle.write(b"ready?")
            handle.flush()
            os.fsync(handle.fileno())
        probe.unlink()
    except OSError as exc:
        return "unwritable", f"{root}: {exc.strerror or exc}"
    return "ok", None
