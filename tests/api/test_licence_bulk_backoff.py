"""While the blob store fails, a bulk job backs off exponentially and tries one row at a time: it does not seal and
number a whole chunk every second. Real sealer (the department's seal in Vault), a real file store that cannot write
(its root is a file), explicit clocks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session

from certificates.blobs import FileBlobStore
from certificates.bulk import BACKOFF_FIRST, create_job, process_job, run_pending
from certificates.issuance import Actor, Issuer
from certificates.models import BulkJob
from ecert.container import Container
from ecert.clock import FixedClock
from ecert.db import session_scope
from ecert.runtime import Runtime
from tests.api.test_licence_authz import Department
from tests.certificates.conftest import uscc


def _serial(runtime: Runtime, department: str) -> int:
    with runtime.engine.connect() as connection:
        return int(connection.execute(sa.text("SELECT max(last) FROM licence_serial WHERE department_code = :d"),
                                      {"d": department}).scalar() or 0)


def _job(runtime: Runtime, job_id: str) -> BulkJob:
    with Session(runtime.engine) as session:
        job = session.get(BulkJob, job_id)
        assert job is not None
        return job


def _until(clock: FixedClock, moment: dt.datetime | None) -> None:
    assert moment is not None
    clock.advance((moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)) - clock.now())


def test_a_failing_blob_store_backs_the_job_off_one_row_at_a_time(client: TestClient, runtime: Runtime, container: Container, uid: str,
                                                                   tmp_path: Path) -> None:
    dept = Department(client, runtime, f"W{uid.upper()}")
    service = container.licences
    service.worker.stop()  # this test drives the job itself, with its own clock and store
    try:
        (tmp_path / "not-a-directory").write_bytes(b"")
        clock = FixedClock(dt.datetime.now(dt.timezone.utc))
        broken = Issuer(keystore=runtime.keystore, clock=clock, blobs=FileBlobStore(tmp_path / "not-a-directory"),
                        seal_keys=service.issuer.seal_keys, sealer=service.issuer.sealer, public_url="http://ecert.test")
        actor = Actor(f"client:{dept.code.lower()}", department=dept.code)
        rows = [{"holder": {"kind": "enterprise", "name": f"公司{i}", "id_number": uscc()},
                 "fields": {"company": f"公司{i}", "capital": i}} for i in range(8)]
        with session_scope(runtime.engine) as session:
            job_id = create_job(session, broken, actor, department_code=dept.code, type_code="BL", rows=rows).id
        before = _serial(runtime, dept.code)

        run_pending(runtime.engine, broken, owner="w")  # a full chunk is tried once, and fails on the store
        first = _job(runtime, job_id)
        assert (first.failures, first.succeeded) == (1, 0) and "cannot store" in (first.last_error or "")
        assert first.retry_at is not None
        burned = _serial(runtime, dept.code) - before  # numbers taken apart from the transaction (PostgreSQL)
        for _ in range(5):  # a worker waking up every second meanwhile does nothing at all
            run_pending(runtime.engine, broken, owner="w")
        assert _job(runtime, job_id).failures == 1 and _serial(runtime, dept.code) - before == burned

        delays = []
        for attempt in range(2, 5):
            previous = _job(runtime, job_id)
            assert previous.retry_at is not None
            _until(clock, previous.retry_at)
            run_pending(runtime.engine, broken, owner="w")
            job = _job(runtime, job_id)
            assert job.failures == attempt and job.retry_at is not None
            delays.append(job.retry_at - previous.retry_at)
        assert delays == [BACKOFF_FIRST * 2, BACKOFF_FIRST * 4, BACKOFF_FIRST * 8]
        if runtime.engine.dialect.name == "postgresql":  # later tries seal and number one row, not a chunk
            assert _serial(runtime, dept.code) - before == burned + 3 and burned == len(rows)
        else:  # SQLite takes numbers inside the failed transaction: none is lost
            assert _serial(runtime, dept.code) == before

        working = Issuer(keystore=runtime.keystore, clock=clock, blobs=FileBlobStore(tmp_path / "blobs"),
                         seal_keys=service.issuer.seal_keys, sealer=service.issuer.sealer, public_url="http://ecert.test")
        _until(clock, _job(runtime, job_id).retry_at)
        assert process_job(runtime.engine, working, job_id, owner="w") == "completed"
        done = _job(runtime, job_id)
        assert (done.succeeded, done.failures, done.retry_at) == (8, 0, None)
    finally:
        service.start()
