"""Bulk issuance: a job of many rows, processed in the background in batches.

* Rows are stored at submission with the holder ID encrypted (Vault ``pii``), never in clear.
* A worker *claims* a job with a lease (one process at a time), then issues pending rows in
  chunks: each chunk is one transaction (licences, row results, counters, audit) with batched
  Vault calls (holder encryption, QR signatures, PDF seals).
* Each row's licence carries the idempotency key ``bulk:<job>:<row>`` (unique per department),
  so a restart mid-job resumes where it stopped with no duplicate and no loss.
* Cancellation is checked between chunks; rows not yet issued end as ``cancelled``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from audit import record_event
from certificates.issuance import Actor, IssueRequest, Issuer, Prepared
from certificates.models import BulkJob, BulkJobItem, Licence
from certificates.types import get_type
from ecert.db import session_scope
from ecert.errors import Conflict, EcertError, InvalidInput, NotFound, ServiceUnavailable

__all__ = [
    "MAX_ROWS",
    "JobNotFound",
    "JobFinished",
    "create_job",
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


def create_job(
    session: Session, issuer: Issuer, actor: Actor, *, department_code: str, type_code: str, rows: Sequence[Any]
) -> BulkJob:
    """Store a job and its rows (holder IDs encrypted) for the background worker."""
    if actor.department is not None and actor.department != department_code:
        raise JobNotFound(f"no department {department_code} among yours")
    if not 0 < len(rows) <= MAX_ROWS:
        detail = f"a job has 1 to {MAX_ROWS} rows"
        raise InvalidInput(detail, errors=[{"pointer": "#/rows", "detail": detail}])
    licence_type = get_type(session, department_code=department_code, code=type_code)
    payloads = [_row_request(row, i) for i, row in enumerate(rows)]
    ciphers = issuer.pii.seal_many([p.pop("id") for p in payloads])
    now = issuer.clock.now()
    job = BulkJob(
        id=uuid.uuid4().hex, department_code=department_code, type_code=type_code, type_version=licence_type.version,
        status="queued", total=len(rows), created_by=actor.subject, created_at=now, updated_at=now,
    )
    session.add(job)
    for i, (payload, cipher) in enumerate(zip(payloads, ciphers)):
        session.add(BulkJobItem(job_id=job.id, row=i, status="pending", payload={**payload, "id_cipher": cipher}))
    record_event(
        session, action="certificates.bulk.create", actor=actor.subject, target=f"bulk:{job.id}",
        department=department_code, details={"type": type_code, "rows": len(rows)}, at=now,
    )
    session.flush()
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
    """Take (or renew) the job's lease; False if another worker holds it or it is finished."""
    with session_scope(engine) as session:
        result = session.execute(
            sa.update(BulkJob)
            .where(
                col(BulkJob.id) == job_id,
                col(BulkJob.status).in_(("queued", "running")),
                sa.or_(col(BulkJob.lease_until).is_(None), col(BulkJob.lease_until) < now, col(BulkJob.lease_owner) == owner),
            )
            .values(status="running", lease_owner=owner, lease_until=now + LEASE, updated_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]  # an UPDATE gives a CursorResult; sqlmodel types it Result


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
        key = f"bulk:{job.id}:{item.row}"
        existing = session.exec(select(Licence).where(Licence.department_code == job.department_code, Licence.idempotency_key == key)).first()
        if existing is not None:
            item.status, item.licence_id = "issued", existing.id
            job.succeeded += 1
            continue
        p = item.payload
        try:
            valid_from = dt.datetime.fromisoformat(p["valid_from"]) if p.get("valid_from") else None
            request = IssueRequest(
                type_code=job.type_code, type_version=job.type_version, holder_kind=p["kind"], holder_name=p["name"],
                holder_id=raw_id, fields=p["fields"], valid_from=valid_from, idempotency_key=key,
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
                .order_by(col(BulkJobItem.row)).limit(chunk)
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
            job.updated_at, job.last_error = now, None
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
        except ServiceUnavailable as exc:  # Vault or database down: keep the job, retry later
            _note_error(engine, job_id, exc)
            log.warning("bulk job %s paused: %s", job_id, exc.detail)
            break
        except EcertError as exc:
            _note_error(engine, job_id, exc)
            log.error("bulk job %s: %s", job_id, exc.detail)
    return worked


def _note_error(engine: Engine, job_id: str, exc: EcertError) -> None:
    with session_scope(engine) as session:
        session.execute(sa.update(BulkJob).where(col(BulkJob.id) == job_id).values(last_error=exc.detail[:500], lease_until=None))


class BulkWorker:
    """A daemon thread that runs open bulk jobs, then exits when none is left (``start`` again on submit).

    Several processes may each run one: job leases decide who works on what.
    """

    def __init__(self, engine: Engine, issuer: Issuer, *, interval: float = 1.0,
                 tick: Callable[[], None] | None = None) -> None:
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
