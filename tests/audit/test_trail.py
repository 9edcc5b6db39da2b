"""Appending to the audit chain on both database backends."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from audit import record_event
from audit.models import AuditEvent
from audit.trail import event_hash
from ecert.db import session_scope


def test_events_chain_by_hash(engine: Engine, uid: str) -> None:
    with session_scope(engine) as session:
        first = record_event(session, action="test.first", actor="system", target=f"t:{uid}")
        second = record_event(session, action="test.second", actor="system", target=f"t:{uid}", details={"n": 2})
    assert second.seq == first.seq + 1
    assert second.prev_hash == first.hash
    with Session(engine) as session:
        stored = session.exec(select(AuditEvent).where(AuditEvent.seq == second.seq)).one()
        assert stored.hash == event_hash(
            seq=stored.seq, at=stored.at, action=stored.action, actor=stored.actor, target=stored.target,
            department=stored.department, details=stored.details, prev_hash=stored.prev_hash,
        )


def test_rolled_back_work_leaves_no_event_and_no_gap(engine: Engine, uid: str) -> None:
    with session_scope(engine) as session:
        before = record_event(session, action="test.kept", actor="system", target=f"t:{uid}")
    try:
        with session_scope(engine) as session:
            record_event(session, action="test.lost", actor="system", target=f"t:{uid}")
            raise RuntimeError("the business write failed")
    except RuntimeError:
        pass
    with session_scope(engine) as session:
        after = record_event(session, action="test.after", actor="system", target=f"t:{uid}")
    assert after.seq == before.seq + 1 and after.prev_hash == before.hash
    with Session(engine) as session:
        actions = session.exec(select(AuditEvent.action).where(AuditEvent.target == f"t:{uid}")).all()
    assert sorted(actions) == ["test.after", "test.kept"]
    with engine.connect() as connection:
        head = connection.execute(sa.text("SELECT seq, hash FROM audit_head")).one()
    assert head.seq >= after.seq
