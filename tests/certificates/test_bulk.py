"""Bulk jobs: per-row results, progress, cancellation, resume without duplicates."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from certificates.blobs import DatabaseBlobStore
from certificates.bulk import (
    LEASE, SILENCE, BulkWorker, JobFinished, JobNotFound, cancel_job, create_job, get_job, job_items, process_job, run_pending, submit_job,
)
from certificates.issuance import Actor, IdempotencyKeyReused, Issuer
from certificates.models import BulkJob, BulkJobItem, Licence, LicenceType
from ecert.clock import FixedClock
from ecert.db import session_scope
from ecert.errors import ServiceUnavailable
from keys import KeyRef, TransitKeyStore
from tests.certificates.conftest import TransitSealKeys, person_id, request_for


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
    assert len(issued) == 12 and len({lic.bulk_item for lic in issued}) == 12
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


def test_a_client_key_shaped_like_a_row_key_cannot_take_a_row(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType
) -> None:
    with session_scope(engine) as session:
        job = create_job(session, issuer, actor, department_code=department, type_code="BL", rows=rows(3))
    intruders = []
    for key in (f"bulk:{job.id}:0", f"{job.id}:1"):  # the old internal form, and the new one as a client key
        with session_scope(engine) as session:
            prepared = issuer.prepare(session, actor, department, request_for(idempotency_key=key))
            intruders.append(issuer.issue_one(session, actor, prepared)[0].id)
    assert process_job(engine, issuer, job.id, owner="w", chunk=10) == "completed"
    with Session(engine) as session:
        items = job_items(session, actor, job.id)
        assert [i.status for i in items] == ["issued"] * 3
        assert not {i.licence_id for i in items} & set(intruders)
        for item in items:  # each row points at the licence issued for that row's holder
            licence = session.get(Licence, item.licence_id)
            assert licence is not None and licence.holder_name == item.payload["name"]
            assert licence.bulk_item == f"{job.id}:{item.row}" and licence.idempotency_key is None
    assert len(licences_of(engine, department)) == 5


def test_one_key_one_job_however_the_rows_are_written(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType
) -> None:
    submitted = rows(3)
    with session_scope(engine) as session:
        job, replayed = submit_job(session, issuer, actor, department_code=department, type_code="BL", rows=submitted,
                                   idempotency_key="bulk-1")
    assert not replayed
    rewritten = [{"fields": dict(reversed(r["fields"].items())),
                  "holder": {"id_number": r["holder"]["id_number"].lower(), "name": f" {r['holder']['name']} ",
                             "kind": "person"}} for r in submitted]
    with session_scope(engine) as session:
        again, replayed = submit_job(session, issuer, actor, department_code=department, type_code="BL", rows=rewritten,
                                     idempotency_key="bulk-1")
    assert replayed and again.id == job.id
    with pytest.raises(IdempotencyKeyReused), session_scope(engine) as session:
        submit_job(session, issuer, actor, department_code=department, type_code="BL", rows=rows(3),
                   idempotency_key="bulk-1")
    with Session(engine) as session:
        count = session.execute(sa.text("SELECT count(*) FROM bulk_job WHERE department_code = :d"), {"d": department})
        assert count.scalar() == 1


def test_the_upgrade_moves_rows_keys_apart_and_leaves_clients_keys(tmp_path: Any) -> None:
    from alembic import command

    from ecert.db import alembic_config, make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    config = alembic_config(engine)
    command.upgrade(config, "heads")
    command.downgrade(config, "certificates@0af2768c38f6")  # the schema before bulk_item
    now = dt.datetime.now(dt.timezone.utc)
    common = {"type_code": "BL", "type_version": 1, "department_code": "D", "holder_kind": "person", "holder_name": "x",
              "holder_id_cipher": "c", "holder_index": "i", "fields": "{}", "fields_digest": "d", "status": "valid",
              "valid_from": now, "issued_at": now, "updated_at": now}
    rows = [("r", "bulk:job1", "bulk:job1:0"), ("c", "client:d", "bulk:job1:1"), ("k", "client:d", "plain")]
    with engine.begin() as connection:
        for ident, issuer_name, key in rows:
            connection.execute(sa.table("licence", *map(sa.column, ["id", "number", "token", "issued_by", "idempotency_key", *common]))
                               .insert().values(id=ident, number=ident, token=ident, issued_by=issuer_name, idempotency_key=key, **common))
    migrate(engine)
    with engine.connect() as connection:
        moved = connection.execute(sa.text("SELECT id, idempotency_key, bulk_item FROM licence ORDER BY id")).all()
    engine.dispose()
    assert [tuple(r) for r in moved] == [("c", "bulk:job1:1", None), ("k", "plain", None), ("r", None, "job1:0")]


def test_a_dead_workers_job_is_taken_over_when_its_heartbeat_stops(
    engine: Engine, keystore: TransitKeyStore, seal_keys: TransitSealKeys, actor: Actor, department: str,
    licence_type: LicenceType,
) -> None:
    clock = FixedClock(dt.datetime.now(dt.timezone.utc))
    issuer = Issuer(keystore=keystore, clock=clock, blobs=DatabaseBlobStore(), seal_keys=seal_keys, sealer=None,
                    public_url="https://ecert.example")
    with session_scope(engine) as session:
        job = create_job(session, issuer, actor, department_code=department, type_code="BL", rows=rows(6))
    stop_after_one = iter([False, True])  # the first worker issues one chunk, then its process "dies"
    assert process_job(engine, issuer, job.id, owner="dead", chunk=2, should_stop=lambda: next(stop_after_one)) == "running"
    with session_scope(engine) as session:  # as a killed process leaves it: lease held, no release
        session.execute(sa.update(BulkJob).where(BulkJob.id == job.id).values(lease_owner="dead", lease_until=clock.now() + LEASE))
    clock.advance(SILENCE - dt.timedelta(seconds=1))
    assert process_job(engine, issuer, job.id, owner="other", chunk=2) == "running"  # still heard of recently
    clock.advance(dt.timedelta(seconds=2))  # silent for longer than SILENCE, long before the lease ends
    assert SILENCE + dt.timedelta(seconds=1) < LEASE
    assert process_job(engine, issuer, job.id, owner="other", chunk=2) == "completed"
    issued = licences_of(engine, department)
    assert len(issued) == 6 and len({lic.bulk_item for lic in issued}) == 6
