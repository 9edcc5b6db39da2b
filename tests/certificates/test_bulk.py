"""Bulk jobs: per-row results, progress, cancellation, resume without duplicates."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from certificates.blobs import DatabaseBlobStore
from certificates.bulk import BulkWorker, JobFinished, JobNotFound, cancel_job, create_job, get_job, job_items, process_job, run_pending
from certificates.issuance import Actor, Issuer
from certificates.models import BulkJobItem, Licence, LicenceType
from ecert.clock import FixedClock
from ecert.db import session_scope
from ecert.errors import ServiceUnavailable
from keys import KeyRef, TransitKeyStore
from tests.certificates.conftest import TransitSealKeys, person_id


def rows(n: int, bad: tuple[int, ...] = ()) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        fields: dict[str, Any] = {"company": f"企业{i}", "capital": i}
        if i in bad:
            fields = {"capital": "lots"}
        out.append({"holder": {"kind": "person", "name": f"张{i}", "id_number": person_id()}, "fields": fields})
    return out


def licences_of(engine: Engine, department: str) -> list[Licence]:
    with Session(engine) as session:
        return list(session.exec(select(Licence).where(Licence.department_code == department)).all())


def test_a_job_issues_every_good_row_and_reports_the_bad_ones(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType
) -> None:
    with session_scope(engine) as session:
        job = create_job(session, issuer, actor, department_code=department, type_code="BL", rows=rows(25, bad=(3, 17)))
        stored = session.exec(select(BulkJobItem).where(BulkJobItem.job_id == job.id, BulkJobItem.row == 0)).one()
        assert "id_number" not in str(stored.payload) and stored.payload["id_cipher"].startswith("vault:")
    assert process_job(engine, issuer, job.id, owner="w1", chunk=10) == "completed"
    with Session(engine) as session:
        done = get_job(session, actor, job.id)
        assert (done.status, done.total, done.succeeded, done.failed) == ("completed", 25, 23, 2)
        failed = job_items(session, actor, job.id, status="failed")
        assert [i.row for i in failed] == [3, 17]
        assert failed[0].error and failed[0].error["errors"][0]["pointer"].startswith("#/fields")
    assert len(licences_of(engine, department)) == 23


def test_a_job_resumes_after_a_failure_without_duplicates(
    engine: Engine, keystore: TransitKeyStore, seal_keys: TransitSealKeys, actor: Actor, department: str, licence_type: LicenceType
) -> None:
    class FlakyKeys:
        calls = 0

        def qr_key(self, department_code: str) -> KeyRef:
            FlakyKeys.calls += 1
            if FlakyKeys.calls == 2:
                raise ServiceUnavailable("Vault went away")
            return seal_keys.qr_key(department_code)

    clock = FixedClock(dt.datetime.now(dt.timezone.utc))
    flaky = Issuer(keystore=keystore, clock=clock, blobs=DatabaseBlobStore(), seal_keys=FlakyKeys(), sealer=None,
                   public_url="https://ecert.example")
    with session_scope(engine) as session:
        job = create_job(session, flaky, actor, department_code=department, type_code="BL", rows=rows(12))
    with pytest.raises(ServiceUnavailable):
        process_job(engine, flaky, job.id, owner="crashed", chunk=5)
    assert len(licences_of(engine, department)) == 5  # the first chunk committed, the second rolled back
    assert process_job(engine, flaky, job.id, owner="other", chunk=5) == "running"  # lease still held
    clock.advance(dt.timedelta(minutes=3))
    assert process_job(engine, flaky, job.id, owner="other", chunk=5) == "completed"
    issued = licences_of(engine, department)
    assert len(issued) == 12 and len({lic.idempotency_key for lic in issued}) == 12
    with Session(engine) as session:
        items = job_items(session, actor, job.id, limit=100)
        assert {i.licence_id for i in items} == {lic.id for lic in issued}


def test_cancel_stops_the_job_and_marks_the_rest(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType
) -> None:
    with session_scope(engine) as session:
        job = create_job(session, issuer, actor, department_code=department, type_code="BL", rows=rows(8))
    stop_after_one = iter([False, True])
    assert process_job(engine, issuer, job.id, owner="w", chunk=3, should_stop=lambda: next(stop_after_one)) == "running"
    with session_scope(engine) as session:
        cancel_job(session, actor, job.id, issuer.clock.now())
    assert process_job(engine, issuer, job.id, owner="w2", chunk=3) == "cancelled"
    with Session(engine) as session:
        done = get_job(session, actor, job.id)
        assert (done.status, done.succeeded) == ("cancelled", 3)
        assert len(job_items(session, actor, job.id, status="cancelled")) == 5
    with pytest.raises(JobFinished):
        with session_scope(engine) as session:
            cancel_job(session, actor, job.id, issuer.clock.now())
    with Session(engine) as session, pytest.raises(JobNotFound):
        get_job(session, Actor("client:other", department="ZZOTHER"), job.id)


def test_the_background_worker_runs_submitted_jobs(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType
) -> None:
    with session_scope(engine) as session:
        job = create_job(session, issuer, actor, department_code=department, type_code="BL", rows=rows(4))
    worker = BulkWorker(engine, issuer, interval=0.2)
    worker.start()
    try:
        import time

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with Session(engine) as session:
                if get_job(session, actor, job.id).status == "completed":
                    break
            time.sleep(0.2)
    finally:
        worker.stop()
    assert len(licences_of(engine, department)) == 4
    assert run_pending(engine, issuer, owner="again") >= 0
    with Session(engine) as session:
        assert session.execute(sa.select(sa.func.count()).select_from(Licence).where(Licence.department_code == department)).scalar() == 4
