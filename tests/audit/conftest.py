"""Fixtures of the audit tests: a transaction to tamper in (always rolled back) and a clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session


@pytest.fixture
def tampering(engine: Engine) -> Iterator[Session]:
    """A session on one connection whose transaction is rolled back at the end: tamper freely with SQL.

    The shared database stays intact for the other tests, while the checks inside the test see
    the tampered rows exactly as an attacker with database access would leave them.
    """
    with engine.connect() as connection:
        transaction = connection.begin()
        session = Session(bind=connection, expire_on_commit=False)
        try:
            yield session
        finally:
            session.close()
            transaction.rollback()
