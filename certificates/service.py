"""The licence library as one service object: what routes, commands and the demo seed call."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from certificates import records
from certificates.blobs import BlobStore
from certificates.bulk import BulkWorker, cancel_job, create_job
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

__all__ = ["LicenceService", "NoDocument"]


class NoDocument(NotFound):
    slug = "licence-document-missing"
    title = "This licence has no stored PDF"


class LicenceService:
    def __init__(
        self, *, engine: Engine, keystore: KeyStore, clock: Clock, blobs: BlobStore, seal_keys: SealKeys,
        sealer: Sealer | None, public_url: str,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.blobs = blobs
        self.public_url = public_url
        self.issuer = Issuer(keystore=keystore, clock=clock, blobs=blobs, seal_keys=seal_keys, sealer=sealer, public_url=public_url)
        self.worker = BulkWorker(engine, self.issuer, tick=self.expire_due)
        self.grouped = GroupCommit(engine, self.issuer)
        self._unexpirable: set[str] = set()  # licence ids the expiry sweep failed on (reported once, not retried)

    def issue(self, session: Session, actor: Actor, department: str, request: IssueRequest) -> tuple[Licence, bool]:
        """Issue in the caller's transaction."""
        prepared = self.issuer.prepare(session, actor, department, request)
        return self.issuer.issue_one(session, actor, prepared)

    def issue_grouped(self, session: Session, actor: Actor, department: str,
                      request: IssueRequest) -> tuple[Licence, bool]:
        """Issue together with concurrent requests of the same caller (:mod:`certificates.grouping`), committed
        in a transaction of its own by the time this returns; ``session`` only reads (checks and replays)."""
        prepared = self.issuer.prepare(session, actor, department, request)
        existing = self.issuer.find_replay(session, prepared)
        if existing is not None:
            return existing, True
        return self.grouped.issue(actor, prepared)

    def change(self, session: Session, actor: Actor, licence_id: str, action: Action, *,
               reason: str | None, effective_at: dt.datetime | None) -> Licence:
        return records.change_status(session, actor, licence_id, action, reason=reason, effective_at=effective_at, clock=self.clock)

    def amend(self, session: Session, actor: Actor, licence_id: str, *, fields: dict[str, Any], holder_name: str | None,
              reason: str | None, idempotency_key: str | None) -> tuple[Licence, Licence, bool]:
        return records.amend(session, self.issuer, actor, licence_id, fields=fields, holder_name=holder_name,
                             reason=reason, idempotency_key=idempotency_key)

    def pdf(self, session: Session, actor: Actor, licence_id: str) -> bytes:
        licence = records.get_licence(session, actor, licence_id)
        if not licence.pdf_blob_key:
            raise NoDocument(f"licence {licence.number} has no stored PDF")
        return self.blobs.get(session, licence.pdf_blob_key, sha256=licence.pdf_sha256)

    def holder_pdf(self, session: Session, kind: str, id_number: str, licence_id: str) -> bytes:
        mine = {l.id: l for l in records.list_for_holder(session, self.issuer.pii, kind=kind, id_number=id_number, limit=1000)}
        licence = mine.get(licence_id)
        if licence is None:
            raise records.LicenceNotFound(f"no licence {licence_id} among yours")
        if not licence.pdf_blob_key:
            raise NoDocument(f"licence {licence.number} has no stored PDF")
        return self.blobs.get(session, licence.pdf_blob_key, sha256=licence.pdf_sha256)

    def submit_bulk(self, session: Session, actor: Actor, *, department: str, type_code: str, rows: list[Any]) -> BulkJob:
        job = create_job(session, self.issuer, actor, department_code=department, type_code=type_code, rows=rows)
        return job

    def cancel_bulk(self, session: Session, actor: Actor, job_id: str) -> BulkJob:
        return cancel_job(session, actor, job_id, self.clock.now())

    def view(self, licence: Licence, *, history: bool = False, session: Session | None = None) -> dict[str, Any]:
        events = records.history(session, licence.id) if history and session is not None else None
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
