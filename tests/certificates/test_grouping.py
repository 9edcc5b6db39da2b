"""Group commit: concurrent single issuances of one caller share a transaction; one bad request fails alone."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from certificates.grouping import GroupCommit
from certificates.issuance import Actor, IdempotencyKeyReused, Issuer, Prepared
from certificates.models import Licence, LicenceType
from ecert.errors import OutcomeUnknown, commit_fate_unknown
from tests.certificates.conftest import request_for


class CountingIssuer(Issuer):
    """The real issuer, counting the batches it is asked to issue (what group commit changes)."""

    def __init__(self, base: Issuer) -> None:
        self.__dict__.update(base.__dict__)
        self.batches: list[int] = []
        self.lock = threading.Lock()

    def issue_batch(self, session: Any, actor: Actor, batch: Any) -> list[Licence]:
        with self.lock:
            self.batches.append(len(batch))
        return super().issue_batch(session, actor, batch)


def _prepare(engine: Engine, issuer: Issuer, actor: Actor, department: str, **overrides: Any) -> Prepared:
    with Session(engine) as session:
        return issuer.prepare(session, actor, department, request_for(**overrides))


def _concurrently(calls: list[Callable[[], Any]]) -> list[Any]:
    """Runs the calls at once; each result is its return value or the exception it raised."""
    results: list[Any] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - compared by the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_concurrent_requests_share_batches_and_all_commit(engine: Engine, issuer: Issuer, actor: Actor, department: str,
                                                          licence_type: LicenceType) -> None:
    counting = CountingIssuer(issuer)
    grouped = GroupCommit(engine, counting)
    prepared = [_prepare(engine, issuer, actor, department) for _ in range(8)]
    results = _concurrently([lambda p=p: grouped.issue(actor, p) for p in prepared])
    assert all(isinstance(r, tuple) and r[1] is False for r in results), results
    numbers = {licence.number for licence, _ in results}
    assert len(numbers) == 8
    assert sum(counting.batches) == 8 and len(counting.batches) < 8  # fewer transactions than requests
    with Session(engine) as session:
        stored = session.exec(select(Licence.number).where(Licence.department_code == department)).all()
    assert numbers <= set(stored)  # committed when issue() returned


def test_a_concurrent_retry_is_a_replay(engine: Engine, issuer: Issuer, actor: Actor, department: str,
                                               licence_type: LicenceType, uid: str) -> None:
    grouped = GroupCommit(engine, issuer)
    body = request_for(idempotency_key=f"k-{uid}")
    with Session(engine) as session:
        first, again = (issuer.prepare(session, actor, department, body) for _ in range(2))
    results = _concurrently([lambda: grouped.issue(actor, first), lambda: grouped.issue(actor, again)])
    assert results[0][0].id == results[1][0].id
    assert sorted(replayed for _, replayed in results) == [False, True]


def test_a_key_reused_for_another_body_fails_alone(engine: Engine, issuer: Issuer, actor: Actor, department: str,
                                                   licence_type: LicenceType, uid: str) -> None:
    grouped = GroupCommit(engine, issuer)
    key = f"k-{uid}"
    one = _prepare(engine, issuer, actor, department, idempotency_key=key)
    other = _prepare(engine, issuer, actor, department, idempotency_key=key)  # another holder: another body
    bystander = _prepare(engine, issuer, actor, department)
    results = _concurrently([lambda: grouped.issue(actor, one), lambda: grouped.issue(actor, other),
                             lambda: grouped.issue(actor, bystander)])
    failed = [r for r in results[:2] if isinstance(r, Exception)]
    assert len(failed) == 1 and isinstance(failed[0], IdempotencyKeyReused)
    assert isinstance(results[2], tuple) and results[2][0].number  # the others in the batch are issued
    loser = one if results[0] is failed[0] else other
    with Session(engine) as session:  # nothing of the refused request was stored
        assert session.exec(select(Licence).where(Licence.holder_name == loser.request.holder_name,
                                                  Licence.request_fingerprint == loser.fingerprint)).first() is None


def test_a_lone_request_does_not_wait(engine: Engine, issuer: Issuer, actor: Actor, department: str,
                                      licence_type: LicenceType) -> None:
    counting = CountingIssuer(issuer)
    grouped = GroupCommit(engine, counting)
    licence, replayed = grouped.issue(actor, _prepare(engine, issuer, actor, department))
    assert not replayed and licence.number and counting.batches == [1]


@contextmanager
def _killing(engine: Engine, department: str, moment: str) -> Iterator[list[int]]:
    """Terminate (pg_terminate_backend, from an admin connection) the backend of the transaction that issues a
    licence of ``department``, once, at ``moment``: "before_flush" (nothing sent yet) or "before_commit" (all rows
    written, COMMIT about to be sent)."""
    admin = sa.create_engine(engine.url.render_as_string(hide_password=False))
    killed: list[int] = []

    def ours(session: Session) -> bool:
        rows = session.new if moment == "before_flush" else session.identity_map.values()
        return any(isinstance(o, Licence) and o.department_code == department for o in rows)

    def kill(session: Session, *_: Any) -> None:
        if killed or not ours(session):
            return
        pid = session.connection().connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
        with admin.begin() as connection:
            connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        killed.append(pid)

    event.listen(Session, moment, kill)
    try:
        yield killed
    finally:
        event.remove(Session, moment, kill)
        admin.dispose()


def _licences_for(engine: Engine, department: str, key: str) -> list[Licence]:
    with Session(engine) as session:
        return list(session.exec(select(Licence).where(Licence.department_code == department,
                                                       Licence.idempotency_key == key)).all())


def test_a_database_lost_before_the_commit_says_nothing_changed_truly(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType, uid: str,
) -> None:
    key = f"lost-early-{uid}"
    prepared = _prepare(engine, issuer, actor, department, idempotency_key=key)
    if engine.dialect.name == "sqlite":  # another writer holds the real database's lock past our busy timeout
        impatient = sa.create_engine(engine.url, connect_args={"timeout": 0.2, "check_same_thread": False})
        holder = sqlite3.connect(engine.url.database or "")
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(sa.exc.OperationalError) as lost:
                GroupCommit(impatient, issuer).issue(actor, prepared)
        finally:
            holder.rollback()
            holder.close()
            impatient.dispose()
    else:
        with _killing(engine, department, "before_flush") as killed, pytest.raises(sa.exc.OperationalError) as lost:
            GroupCommit(engine, issuer).issue(actor, prepared)
        assert killed
    assert not commit_fate_unknown(lost.value)  # so the API answers database-unavailable, "nothing was changed"
    assert _licences_for(engine, department, key) == []  # ... and that is true
    licence, replayed = GroupCommit(engine, issuer).issue(actor, prepared)
    assert not replayed and [lic.id for lic in _licences_for(engine, department, key)] == [licence.id]


@pytest.mark.postgres_only
def test_a_commit_lost_with_its_connection_is_an_unknown_outcome_until_retried(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType, uid: str,
) -> None:
    key = f"lost-commit-{uid}"
    prepared = _prepare(engine, issuer, actor, department, idempotency_key=key)
    with _killing(engine, department, "before_commit") as killed:
        try:
            first: Licence | None = GroupCommit(engine, issuer).issue(actor, prepared)[0]
        except OutcomeUnknown as exc:
            first = None
            assert "may have been issued" in exc.detail and "same Idempotency-Key" in exc.detail
    assert killed
    stored = _licences_for(engine, department, key)
    assert first is None or [lic.id for lic in stored] == [first.id]  # settled by looking again: it was issued
    again, _ = GroupCommit(engine, issuer).issue(actor, prepared)  # the retry the 503 asked for
    assert [lic.id for lic in _licences_for(engine, department, key)] == [again.id]
    assert first is None or again.id == first.id
