"""pyHanko's checks in worker processes with a deadline that really stops the work.

A thread cannot be stopped: when an upload's check outlived the route's timeout, the route answered 503
and the check kept a core busy for as long as pyHanko needed. :class:`IsolatedChecks` runs
:func:`verify.pdf.check_pdf` in a worker process instead; a check past ``deadline`` seconds kills its
worker (the work stops at once), answers a verdict that says why, and a fresh worker takes its place. A worker
that dies (memory limit, crash) gives a verdict too. The seal-profile path (:mod:`verify.profile`,
linear and capped) stays in the caller's process: only PDFs outside our own profile pay the hand-over
(about a millisecond for the pipe, plus pickling the upload).

Workers come from a ``forkserver`` (no fork of a threaded server) that imports pyHanko once, so a
replacement starts in milliseconds; each caps its address space at ``memory_bytes``.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import queue
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from verify.findings import PdfLimits, SealFindings, sha256_hex
from verify.model import check
from verify.trust import TrustMaterial

__all__ = ["IsolatedChecks"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Job:
    data: bytes
    root: bytes
    intermediates: tuple[bytes, ...]
    crls: tuple[bytes, ...]
    now: dt.datetime
    limits: PdfLimits


def _serve(conn: Connection, memory_bytes: int) -> None:  # pragma: no cover - runs in the worker process
    """A worker: check PDFs sent over ``conn`` until it closes."""
    import resource

    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    from verify.pdf import check_pdf

    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
    while True:
        try:
            job: _Job = conn.recv()
        except (EOFError, OSError):
            return
        trust = TrustMaterial(x509.load_der_x509_certificate(job.root),
                              tuple(x509.load_der_x509_certificate(c) for c in job.intermediates), job.crls)
        try:
            found = check_pdf(job.data, trust, now=job.now, limits=job.limits)
        except MemoryError:
            found = _refused(job.data, "The PDF needs more memory to check than any e-licence does; it is refused.",
                             "检查该 PDF 所需内存超出任何电子证照；已拒绝。")
        conn.send(found)


def _refused(data: bytes, en: str, zh: str) -> SealFindings:
    return SealFindings((check("readable", False, en, zh),), sha256=sha256_hex(data))


class _Worker:
    def __init__(self, context: Any, memory_bytes: int) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, memory_bytes), daemon=True, name="ecert-pdf-check")
        self.process.start()
        child.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.conn.close()


class IsolatedChecks:
    """``check_pdf`` in up to ``workers`` processes, each check stopped after ``deadline`` seconds."""

    def __init__(self, *, workers: int = 2, deadline: float = 10.0, memory_bytes: int = 1 << 30, method: str = "forkserver") -> None:
        self.deadline = deadline
        self.memory_bytes = memory_bytes
        self._context = multiprocessing.get_context(method)
        if method == "forkserver":
            self._context.set_forkserver_preload(["verify.pdf"])
        self._idle: queue.LifoQueue[_Worker | None] = queue.LifoQueue()
        for _ in range(workers):
            self._idle.put(None)  # a slot; its worker starts when first needed

    def check(self, data: bytes, trust: TrustMaterial, *, now: dt.datetime, limits: PdfLimits) -> SealFindings:
        """The findings of :func:`verify.pdf.check_pdf`, or a refusal when it overruns the deadline or its worker dies."""
        job = _Job(data, trust.root.public_bytes(Encoding.DER), tuple(c.public_bytes(Encoding.DER) for c in trust.intermediates),
                   tuple(trust.crls), now, limits)
        worker = self._idle.get()
        try:
            if worker is None or not worker.process.is_alive():
                worker = _Worker(self._context, self.memory_bytes)
            worker.conn.send(job)
            if not worker.conn.poll(self.deadline):
                log.warning("PDF check over %.1f s: worker killed (sha256 %s)", self.deadline, sha256_hex(data))
                worker.kill()
                worker = None
                return _refused(data, f"The PDF took longer than {self.deadline:g} s to check (a hostile or needlessly complex file); it is refused.",
                                f"该 PDF 检查超过 {self.deadline:g} 秒（恶意或过于复杂的文件）；已拒绝。")
            found: SealFindings = worker.conn.recv()
            return found
        except (EOFError, OSError) as exc:  # the worker died under it (memory cap, crash)
            log.warning("PDF check worker died (%s)", exc)
            if worker is not None:
                worker.kill()
            worker = None
            return _refused(data, "The PDF could not be checked within the resource limits (a hostile or damaged file); it is refused.",
                            "无法在资源限制内检查该 PDF（恶意或已损坏的文件）；已拒绝。")
        finally:
            self._idle.put(worker)

    def close(self) -> None:
        """Stop every worker (they also end with the process that started them)."""
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return
            if worker is not None:
                worker.kill()
