"""The licence library as one service object: what routes, commands and the demo seed call."""

from __future__ import annotations

import datetime as dt
import threading
from contextlib import nullcontext
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from certificates import records
from certificates.blobs import BlobStore
from certificates.bulk import BulkWorker, cancel_job, submit_job
from certificates.grouping import GroupCommit
from certificates.issuance import Actor, IssueRequest, Issuer
from certificates.lifecycle import Action
from certificates.models import BulkJob, Licence
from certificates.sealing import Sealer, SealKeys
from certificates.views import licence_view
from ecert.clock import Clock
from ecert.db import session_scope
from ecert.errors import NotFound
from keys import KeyStore

__all__ = ["LicenceService", "NoDocument", "PREPARING"]

PREPARING = 8  # so admitted requests never wait for a pooled connection: 8 + 2 per batch stays below the pool


class NoDocument(NotFound):
    slug = "licence-document-missing"
    title = "This licence has no stored PDF"


class LicenceService:
    def __init__(
        self, *, engine: Engine, keystore: KeyStore, clock: Clock, blobs: BlobStore, seal_keys: SealKeys,
        sealer: Sealer | None, public_url: str, queue_limit: int = 64, concurrency: int = 4,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.blobs = blobs
        self.public_url = public_url
        self.issuer = Issuer(keystore=keystore, clock=clock, blobs=blobs, seal_keys=seal_keys, sealer=sealer, public_url=public_url)
        self.worker = BulkWorker(engine, self.issuer, tick=self.expire_due)
        self.grouped = GroupCommit(engine, self.issuer, queue_limit=queue_limit, concurrency=concurrency)
        self._preparing = threading.BoundedSemaphore(PREPARING)  # admitted requests reading their checks at a time
        self._unexpirable: set[str] = set()  # licence ids the expiry sweep failed on (reported once, not retried)

    def issue(self, session: Session, actor: Actor, department: str, request: IssueRequest) -> tuple[Licence, bool]:
        """Issue in the caller's transaction."""
        prepared = self.issuer.prepare(session, actor, department, request)
        return self.issuer.issue_one(session, actor, prepared)

    def issue_grouped(self, actor: Actor, department: str, request: IssueRequest) -> tuple[Licence, bool]:
        """Issue together with concurrent requests of the same caller (:mod:`certificates.grouping`), committed
        in a transaction of its own by the time this returns. The checks and the replay lookup read in a short
        session closed before the request waits for its batch, so a waiting request holds no connection; a
        request over this server's admission limit is refused at once (:class:`~certificates.grouping.IssuanceBusy`)."""
        with self.grouped.admitted():
            with self._preparing, Session(self.engine, expire_on_commit=False) as session:
                prepared = self.issuer.prepare(session, actor, department, request)
                existing = self.issuer.find_replay(session, prepared)
            if existing is not None:
                return existing, True
            return self.grouped.issue(actor, prepared)

    def change(self, actor: Actor, licence_id: str, action: Action, *, reason: str | None,
               effective_at: dt.datetime | None) -> Licence:
        """A lifecycle change (suspend, revoke...), committed with its history and audit events when this returns."""
        with session_scope(self.engine) as session:
            return records.change_status(session, actor, licence_id, action, reason=reason, effective_at=effective_at,
                                         clock=self.clock)

    def amend(self, actor: Actor, licence_id: str, *, fields: dict[str, Any], holder_name: str | None,
              reason: str | None, idempotency_key: str | None) -> tuple[Licence, Licence, bool]:
        """A new version superseding ``licence_id``, committed when this returns: (new, old, replayed)."""
        with session_scope(self.engine) as session:
            return records.amend(session, self.issuer, actor, licence_id, fields=fields, holder_name=holder_name,
                                 reason=reason, idempotency_key=idempotency_key)

    def pdf(self, session: Session, actor: Actor, licence_id: str) -> bytes:
        licence = records.get_licence(session, actor, licence_id)
        if not licence.pdf_blob_key:
            raise NoDocument(f"licence {licence.number} has no stored PDF")
        return self.blobs.get(session, licence.pdf_blob_key, sha256=licence.pdf_sha256)

    def holder_pdf(self, session: Session, kind: str, id_number: str, licence_id: str) -> bytes:
        mine = {rec.id: rec for rec in records.list_for_holder(session, self.issuer.pii, kind=kind, id_number=id_number, limit=1000)}
        licence = mine.get(licence_id)
        if licence is None:
            raise records.LicenceNotFound(f"no licence {licence_id} among yours")
        if not licence.pdf_blob_key:
            raise NoDocument(f"licence {licence.number} has no stored PDF")
        return self.blobs.get(session, licence.pdf_blob_key, sha256=licence.pdf_sha256)

    def submit_bulk(self, actor: Actor, *, department: str, type_code: str, rows: list[Any],
                    idempotency_key: str) -> tuple[BulkJob, bool]:
        """The job for this Idempotency-Key, committed when this returns, and whether it was submitted before
        (:func:`certificates.bulk.submit_job`); the worker is woken to issue a new one."""
        with session_scope(self.engine) as session:
            job, replayed = submit_job(session, self.issuer, actor, department_code=department, type_code=type_code,
                                       rows=rows, idempotency_key=idempotency_key)
        if not replayed:
            self.worker.start()
            self.worker.wake()
        return job, replayed

    def cancel_bulk(self, actor: Actor, job_id: str) -> BulkJob:
        with session_scope(self.engine) as session:
            return cancel_job(session, actor, job_id, self.clock.now())

    def view(self, licence: Licence, *, history: bool = False, session: Session | None = None) -> dict[str, Any]:
        """The licence as the API shows it; with its history read in ``session`` (or a short read of its own)."""
        events = None
        if history:
            with nullcontext(session) if session is not None else Session(self.engine) as reading:
                events = records.history(reading, licence.id)
        return licence_view(licence, now=self.clock.now(), public_url=self.public_url, history=events)

    def expire_due(self) -> records.SweepReport:
        """One expiry sweep; licences it could not expire are logged once and left out of later sweeps."""
        with session_scope(self.engine) as session:
            report = records.expire_due(session, now=self.clock.now(), skip=self._unexpirable)
        self._unexpirable.update(report.failed)
        return report

    def start(self) -> None:
        self.worker.start()

    def stop(self) -> None:
        self.worker.stop()
