"""The per-process department status cache that write routes consult: a disable counts once committed, at once."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.engine import Engine
from sqlmodel import Session

from ca import departments
from ecert.db import session_scope
from tests.identity.conftest import register_department


def test_a_committed_disable_is_seen_at_once_and_a_rolled_back_one_never(engine: Engine, uid: str) -> None:
    code = f"S{uid.upper()}"
    register_department(engine, code)
    assert departments.load_status(engine, code) is True and departments.cached_status(engine, code) is True
    with Session(engine) as session:  # disabled, then rolled back: still active, even when the session commits later
        departments.disable_department(session, code, actor="test", now=dt.datetime.now(dt.timezone.utc))
        session.flush()
        session.rollback()
        departments.add_department(session, f"R{uid.upper()}", "another", actor="test", now=dt.datetime.now(dt.timezone.utc))
        session.commit()
    assert departments.cached_status(engine, code) is True and departments.load_status(engine, code) is True
    with session_scope(engine) as session:
        departments.disable_department(session, code, actor="test", now=dt.datetime.now(dt.timezone.utc))
    assert departments.cached_status(engine, code) is False  # no waiting for the TTL in this process


def test_unknown_departments_are_not_active(engine: Engine) -> None:
    assert departments.load_status(engine, "NOSUCHDEPT") is False
    assert departments.cached_status(engine, "NOSUCHDEPT") is None

