"""Bulk issuance: a job of many rows, processed in the background in batches.

* Rows are stored at submission with the holder ID encrypted (Vault ``pii``), never in clear.
* A worker *claims* a job with a lease (one process at a time), then issues pending rows in
  chunks: each chunk is one transaction (licences, row results, counters, audit) with batched
  Vault calls (holder encryption, QR signatures, PDF seals).
* Each row's licence carries ``bulk_item = <job>:<row>`` (unique), a column apart from clients'
  Idempotency-Keys, so a restart mid-job resumes where it stopped with no duplicate and no loss,
  and no client key can make a row point at another licence.
* A submission carries the client's Idempotency-Key: the same key and rows answer with the same job,
  the same key with other rows is refused.
* Cancellation is checked between chunks; rows not yet issued end as ``cancelled``.
* The lease holder beats a heartbeat every few seconds while it works, so when its process dies
  another worker takes the job over once the heartbeat has been silent for ``SILENCE``, not only
  when the two-minute lease runs out.
* An outage (Vault, blob store) backs the job off exponentially (``retry_at``), and until a chunk
  succeeds again each try issues a single row, so a failing store does not burn a chunk's worth
  of licence numbers and Vault signatures every second.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from audit import record_event
from certificates.holders import HolderKind, normalise_holder_id
from certificates.issuance import (
    Actor, IdempotencyKeyReused, IdempotentRequestInProgress, IssueRequest, Issuer, Prepared, fingerprint,
)
from certificates.models import BulkJob, BulkJobItem, Licence
from certificates.types import get_type
from ecert.clock import Clock
from ecert.db import session_scope
from ecert.errors import Conflict, EcertError, InvalidInput, NotFound, ServiceUnavailable

__all__ = [
    "MAX_ROWS",
    "JobNotFound",
    "JobFinished",
    "create_job",
    "submit_job",
    "get_job",
    "job_items",
    "cancel_job",
    "process_job",
    "run_pending",
    "BulkWorker",
]

log = logging.getLogger(__name__)
MAX_ROWS = 20_000
LEASE = dt.timedelta(minutes=2)
HEARTBEAT = dt.timedelta(seconds=5)
SILENCE = 3 * HEARTBEAT  # a lease holder not heard of for this long is taken to be dead
BACKOFF_FIRST, BACKOFF_MAX = dt.timedelta(seconds=2), dt.timedelta(minutes=5)
FINAL = ("completed", "cancelled")


class JobNotFound(NotFound):
    slug = "bulk-job-not-found"
    title = "No such bulk job"


class JobFinished(Conflict):
    slug = "bulk-job-finished"
    title = "The bulk job has already finished"


def _row_request(row: Any, index: int) -> dict[str, Any]:
    holder = row.get("holder") if isinstance(row, dict) else None
    if not isinstance(holder, dict) or not isinstance(row.get("fields"), dict):
        detail = "each row needs holder {kind, name, id_number} and fields {...}"
        raise InvalidInput(detail, errors=[{"pointer": f"#/rows/{index}", "detail": detail}])
    return {
        "kind": str(holder.get("kind", "")), "name": str(holder.get("name", "")), "id": str(holder.get("id_number", "")),
        "fields": row["fields"], "valid_from": row.get("valid_from"),
    }


def _normalised_row(payload: dict[str, Any]) -> list[Any]:
    """A row as it will be issued (trimmed name, canonical ID, start in UTC), for the submission's fingerprint."""
    holder_id = payload["id"]
    try:
        holder_id = normalise_holder_id(HolderKind(payload["kind"]), holder_id)
    except (ValueError, InvalidInput):
        pass  # the row fails when issued; its raw ID still tells it apart
    start = payload["valid_from"]
    try:
        start = dt.datetime.fromisoformat(start).astimezone(dt.timezone.utc).isoformat() if start else None
    except (TypeError, ValueError):
        pass
    return [payload["kind"], payload["name"].strip(), holder_id, payload["fields"], start]


def submit_job(
    session: Session, issuer: Issuer, actor: Actor, *, department_code: str, type_code: str, rows: Sequence[Any],
    idempotency_key: str | None,
) -> tuple[BulkJob, bool]:
    """Store a job and its rows (holder IDs encrypted) for the background worker: (job, False); or, when
    ``idempotency_key`` already made a job of the same rows, (that job, True). IdempotencyKeyReused when the key
    came with other rows."""
    if actor.department is not None and actor.department != department_code:
        raise JobNotFound(f"no department {department_code} among yours")
    if not 0 < len(rows) <= MAX_ROWS:
        detail = f"a job has 1 to {MAX_ROWS} rows"
        raise InvalidInput(detail, errors=[{"pointer": "#/rows", "detail": detail}])
    licence_type = get_type(session, department_code=department_code, code=type_code)
    payloads = [_row_request(row, i) for i, row in enumerate(rows)]
    digest = fingerprint([[licence_type.code, licence_type.version], [_normalised_row(p) for p in payloads]])
    existing = _job_for_key(session, department_code, idempotency_key, digest)
    if existing is not None:
        return existing, True
    ciphers = issuer.pii.seal_many([p.pop("id") for p in payloads])
    now = issuer.clock.now()
    job = BulkJob(
        id=uuid.uuid4().hex, department_code=department_code, type_code=type_code, type_version=licence_type.version,
        status="queued", total=len(rows), created_by=actor.subject, created_at=now, updated_at=now,
        idempotency_key=idempotency_key, request_fingerprint=digest if idempotency_key else None,
    )
    session.add(job)
    try:
        session.flush()  # a concurrent submission with the same key stops here, before its rows are written
    except sa.exc.IntegrityError as exc:
        raise IdempotentRequestInProgress(
            f"a bulk job with Idempotency-Key {idempotency_key!r} is being submitted; retry to get it"
        ) from exc
    for i, (payload, cipher) in enumerate(zip(payloads, ciphers)):
        session.add(BulkJobItem(job_id=job.id, row=i, status="pending", payload={**payload, "id_cipher": cipher}))
    record_event(
        session, action="certificates.bulk.create", actor=actor.subject, target=f"bulk:{job.id}",
        department=department_code, details={"type": type_code, "rows": len(rows)}, at=now,
    )
    session.flush()
    return job, False


def create_job(
    session: Session, issuer: Issuer, actor: Actor, *, department_code: str, type_code: str, rows: Sequence[Any],
    idempotency_key: str | None = None,
) -> BulkJob:
    """:func:`submit_job`'s job (the new one, or the one the key made before)."""
    return submit_job(session, issuer, actor, department_code=department_code, type_code=type_code, rows=rows,
                      idempotency_key=idempotency_key)[0]


def _job_for_key(session: Session, department_code: str, key: str | None, digest: str) -> BulkJob | None:
    """The job a key already made for the same rows; IdempotencyKeyReused when it was made for other rows."""
    if not key:
        return None
    job = session.exec(select(BulkJob).where(BulkJob.department_code == department_code, BulkJob.idempotency_key == key)).first()
    if job is not None and job.request_fingerprint != digest:
        raise IdempotencyKeyReused(f"Idempotency-Key {key!r} was used for a different bulk job ({job.id})")
    return job


def get_job(session: Session, actor: Actor, job_id: str) -> BulkJob:
    job = session.get(BulkJob, job_id)
    if job is None or (actor.department is not None and actor.department != job.department_code):
        raise JobNotFound(f"no bulk job {job_id} among yours")
    return job


def job_items(
    session: Session, actor: Actor, job_id: str, *, status: str | None = None, offset: int = 0, limit: int = 100
) -> list[BulkJobItem]:
    get_job(session, actor, job_id)
    query = select(BulkJobItem).where(BulkJobItem.job_id == job_id)
    if status:
        query = query.where(BulkJobItem.status == status)
    return list(session.exec(query.order_by(col(BulkJobItem.row)).offset(offset).limit(limit)).all())


def cancel_job(session: Session, actor: Actor, job_id: str, now: dt.datetime) -> BulkJob:
    job = get_job(session, actor, job_id)
    if job.status in FINAL:
        raise JobFinished(f"bulk job {job_id} is already {job.status}")
    job.cancel_requested = True
    job.updated_at = now
    session.add(job)
    record_event(session, action="certificates.bulk.cancel", actor=actor.subject, target=f"bulk:{job.id}",
                 department=job.department_code, at=now)
    session.flush()
    return job


# -- processing ---------------------------------------------------------------------------
def _claim(engine: Engine, job_id: str, owner: str, now: dt.datetime) -> bool:
    """Take (or renew) the job's lease; False if it is finished, backing off, or held by a worker that is alive
    (its lease running and its heartbeat heard within ``SILENCE``)."""
    with session_scope(engine) as session:
        result = session.execute(
            sa.update(BulkJob)
            .where(
                col(BulkJob.id) == job_id,
                col(BulkJob.status).in_(("queued", "running")),
                sa.or_(col(BulkJob.retry_at).is_(None), col(BulkJob.retry_at) <= now),
                sa.or_(col(BulkJob.lease_until).is_(None), col(BulkJob.lease_until) < now, col(BulkJob.lease_owner) == owner,
                       col(BulkJob.heartbeat_at) < now - SILENCE),
            )
            .values(status="running", lease_owner=owner, lease_until=now + LEASE, heartbeat_at=now, updated_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]  # an UPDATE gives a CursorResult; sqlmodel types it Result


@contextmanager
def _heartbeat(engine: Engine, job_id: str, owner: str, clock: Clock) -> Iterator[None]:
    """While the body runs, mark the job's lease as alive every ``HEARTBEAT`` (a thread of its own, so a long
    chunk keeps its lease; a dead process falls silent and loses it)."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT.total_seconds()):
            try:
                with session_scope(engine) as session:
                    session.execute(sa.update(BulkJob).where(col(BulkJob.id) == job_id, col(BulkJob.lease_owner) == owner)
                                    .values(heartbeat_at=clock.now()))
            except Exception:  # noqa: BLE001 - a missed beat only risks a takeover, which leases make safe
                log.warning("bulk job %s: heartbeat failed", job_id, exc_info=True)

    thread = threading.Thread(target=beat, name=f"ecert-bulk-heartbeat-{job_id[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _finish(session: Session, job: BulkJob, status: str, now: dt.datetime) -> None:
    if status == "cancelled":
        session.execute(
            sa.update(BulkJobItem).where(col(BulkJobItem.job_id) == job.id, col(BulkJobItem.status) == "pending").values(status="cancelled")
        )
    job.status, job.finished_at, job.updated_at, job.lease_owner, job.lease_until = status, now, now, None, None
    session.add(job)
    record_event(session, action=f"certificates.bulk.{'complete' if status == 'completed' else 'cancelled'}",
                 actor="system:bulk", target=f"bulk:{job.id}", department=job.department_code,
                 details={"succeeded": job.succeeded, "failed": job.failed, "total": job.total}, at=now)


def _prepare_chunk(
    session: Session, issuer: Issuer, actor: Actor, job: BulkJob, items: list[BulkJobItem]
) -> list[tuple[BulkJobItem, Prepared]]:
    """Validate rows; failed rows get their error now, replayed rows their existing licence."""
    ids = issuer.pii.open_many([i.payload["id_cipher"] for i in items])
    ready = []
    for item, raw_id in zip(items, ids):
        key = f"{job.id}:{item.row}"
        existing = session.exec(select(Licence).where(Licence.bulk_item == key)).first()
        if existing is not None:
            item.status, item.licence_id = "issued", existing.id
            job.succeeded += 1
            continue
        p = item.payload
        try:
            valid_from = dt.datetime.fromisoformat(p["valid_from"]) if p.get("valid_from") else None
            request = IssueRequest(
                type_code=job.type_code, type_version=job.type_version, holder_kind=p["kind"], holder_name=p["name"],
                holder_id=raw_id, fields=p["fields"], valid_from=valid_from, bulk_item=key,
            )
            ready.append((item, issuer.prepare(session, actor, job.department_code, request)))
        except (InvalidInput, ValueError) as exc:
            item.status = "failed"
            item.error = {"detail": getattr(exc, "detail", str(exc)), "errors": getattr(exc, "extensions", {}).get("errors", [])}
            job.failed += 1
    return ready


def process_job(engine: Engine, issuer: Issuer, job_id: str, *, owner: str, chunk: int = 50,
                should_stop: Callable[[], bool] = lambda: False) -> str:
    """Work on a job until it is done, cancelled, or ``should_stop``; return its status."""
    with _heartbeat(engine, job_id, owner, issuer.clock):
        return _process(engine, issuer, job_id, owner=owner, chunk=chunk, should_stop=should_stop)


def _process(engine: Engine, issuer: Issuer, job_id: str, *, owner: str, chunk: int,
             should_stop: Callable[[], bool]) -> str:
    while not should_stop():
        now = issuer.clock.now()
        if not _claim(engine, job_id, owner, now):
            with Session(engine) as session:
                job = session.get(BulkJob, job_id)
                return job.status if job else "missing"
        with session_scope(engine) as session:
            job = session.get(BulkJob, job_id, with_for_update=True)
            assert job is not None
            if job.cancel_requested:
                _finish(session, job, "cancelled", now)
                return "cancelled"
            items = list(session.exec(
                select(BulkJobItem).where(BulkJobItem.job_id == job_id, BulkJobItem.status == "pending")
                .order_by(col(BulkJobItem.row)).limit(1 if job.failures else chunk)  # after an outage: one row first
            ).all())
            if not items:
                _finish(session, job, "completed", now)
                return "completed"
            actor = Actor(f"bulk:{job.id}", department=job.department_code)
            ready = _prepare_chunk(session, issuer, actor, job, items)
            licences = issuer.issue_batch(session, actor, [p for _, p in ready])
            for (item, _), licence in zip(ready, licences):
                item.status, item.licence_id = "issued", licence.id
            job.succeeded += len(licences)
            job.updated_at, job.last_error, job.failures, job.retry_at = now, None, 0, None
            for item in items:
                session.add(item)
            session.add(job)
    with session_scope(engine) as session:  # stopped on request: let another worker resume at once
        session.execute(sa.update(BulkJob).where(col(BulkJob.id) == job_id, col(BulkJob.lease_owner) == owner).values(lease_until=None))
    return "running"


def run_pending(engine: Engine, issuer: Issuer, *, owner: str, should_stop: Callable[[], bool] = lambda: False) -> int:
    """Process every queued or running job whose lease is free; return how many were worked on."""
    with Session(engine) as session:
        ids = session.exec(select(BulkJob.id).where(col(BulkJob.status).in_(("queued", "running"))).order_by(col(BulkJob.created_at))).all()
    worked = 0
    for job_id in ids:
        if should_stop():
            break
        try:
            process_job(engine, issuer, job_id, owner=owner, should_stop=should_stop)
            worked += 1
        except ServiceUnavailable as exc:  # Vault, blob store or database down: keep the job, retry later
            _back_off(engine, job_id, exc, issuer.clock.now())
            log.warning("bulk job %s paused: %s", job_id, exc.detail)
            break
        except EcertError as exc:
            _back_off(engine, job_id, exc, issuer.clock.now())
            log.error("bulk job %s: %s", job_id, exc.detail)
    return worked


def _back_off(engine: Engine, job_id: str, exc: EcertError, now: dt.datetime) -> None:
    """Record the failure, free the lease, and keep every worker off the job for 2 s, 4 s, 8 s ... up to 5 min."""
    with session_scope(engine) as session:
        job = session.get(BulkJob, job_id, with_for_update=True)
        if job is None:
            return
        job.failures += 1
        job.retry_at = now + min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** min(job.failures - 1, 16))
        job.last_error, job.lease_until, job.updated_at = exc.detail[:500], None, now
        session.add(job)


class BulkWorker:
    """A daemon thread that runs open bulk jobs, then exits when none is left (``start`` again on submit).

    Several processes may each run one: job leases decide who works on what.
    """

    def __init__(self, engine: Engine, issuer: Issuer, *, interval: float = 1.0,
                 tick: Callable[[], object] | None = None) -> None:
        self.engine, self.issuer, self.interval, self.tick = engine, issuer, interval, tick
        self.owner = f"worker-{uuid.uuid4().hex[:12]}"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        with self._lock:
            self._wake.set()
            if not self.running:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="ecert-bulk", daemon=True)
                self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _open_jobs(self) -> bool:
        with Session(self.engine) as session:
            return session.exec(select(BulkJob.id).where(col(BulkJob.status).in_(("queued", "running"))).limit(1)).first() is not None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                run_pending(self.engine, self.issuer, owner=self.owner, should_stop=self._stop.is_set)
                if self.tick is not None:
                    self.tick()
                if not self._open_jobs() and not self._wake.is_set():
                    return
            except Exception:  # a worker never dies on one bad iteration; it logs and tries again
                log.exception("bulk worker iteration failed")
            self._wake.wait(self.interval)
