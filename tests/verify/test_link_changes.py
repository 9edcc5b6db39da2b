"""Remembered verdicts and change notices: answers from memory only while nothing can have been missed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from audit.tlog import sign_tree_head
from certificates import records
from certificates.changes import CHANNEL
from certificates.issuance import Actor
from certificates.lifecycle import Action
from ecert.container import Container
from ecert.clock import SystemClock
from ecert.db import make_reader, session_scope
from ecert.runtime import Runtime
from signing.sealer import PadesSealer
from tests.verify.conftest import PUBLIC_URL, issue_for, new_department
from verify.link import LinkVerifier, VerificationCounter
from verify.model import Outcome


def eventually(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Polls ``condition`` (a notice crosses a connection and a thread); no timing is asserted."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def listening(runtime: Runtime) -> Iterator[LinkVerifier]:
    verifier = LinkVerifier(make_reader(runtime.engine), runtime.clock, public_url=PUBLIC_URL, listen=True,
                            counter=VerificationCounter(runtime.engine, runtime.clock, every_seconds=3600))
    if verifier.feed is not None:
        assert verifier.feed.wait_live(10)
    yield verifier
    verifier.close()


@pytest.fixture
def fresh_licence(runtime: Runtime, container: Container):  # type: ignore[no-untyped-def]
    authority = container.ca
    code = new_department(runtime, authority)
    [licence] = issue_for(runtime, authority, PadesSealer(runtime.keystore, authority, authority, authority), code)
    sign_tree_head(runtime.engine, runtime.keystore, SystemClock())  # verdicts are remembered once logged
    return licence


def _remember(verifier: LinkVerifier, token: str) -> None:
    assert verifier.verify(token).outcome is Outcome.VALID
    assert verifier.verify(token).outcome is Outcome.VALID  # the second read vouches for the first


def _suspend(runtime: Runtime, licence) -> None:  # type: ignore[no-untyped-def]
    with session_scope(runtime.engine) as session:
        records.change_status(session, Actor("client:t", licence.department_code), licence.id, Action.SUSPEND,
                              reason="检查", effective_at=None, clock=SystemClock())


def test_only_postgresql_has_a_feed_sqlite_always_reads(runtime: Runtime, listening: LinkVerifier, fresh_licence) -> None:  # type: ignore[no-untyped-def]
    if runtime.engine.dialect.name == "postgresql":
        assert listening.feed is not None and listening.feed.live
        return
    _remember(listening, fresh_licence.token)
    assert listening.feed is None and listening.remembered(fresh_licence.token) is None
    _suspend(runtime, fresh_licence)
    assert listening.verify(fresh_licence.token).outcome is Outcome.SUSPENDED


@pytest.mark.postgres_only
def test_a_change_committed_here_is_forgotten_at_commit(runtime: Runtime, listening: LinkVerifier, fresh_licence) -> None:  # type: ignore[no-untyped-def]
    _remember(listening, fresh_licence.token)
    remembered = listening.remembered(fresh_licence.token)
    assert remembered is not None and remembered.outcome is Outcome.VALID
    _suspend(runtime, fresh_licence)
    assert listening.remembered(fresh_licence.token) is None  # no waiting: this process heard it at commit
    assert listening.verify(fresh_licence.token).outcome is Outcome.SUSPENDED


@pytest.mark.postgres_only
def test_another_process_change_arrives_by_notice(runtime: Runtime, listening: LinkVerifier, fresh_licence) -> None:  # type: ignore[no-untyped-def]
    _remember(listening, fresh_licence.token)
    with runtime.engine.begin() as connection:  # what another worker's commit sends: the notice alone
        connection.execute(sa.text("SELECT pg_notify(:channel, :token)"), {"channel": CHANNEL, "token": fresh_licence.token})
    assert eventually(lambda: listening.remembered(fresh_licence.token) is None)


@pytest.mark.postgres_only
def test_a_rolled_back_change_sends_nothing(runtime: Runtime, listening: LinkVerifier, fresh_licence) -> None:  # type: ignore[no-untyped-def]
    _remember(listening, fresh_licence.token)
    with pytest.raises(RuntimeError), session_scope(runtime.engine) as session:
        records.change_status(session, Actor("client:t", fresh_licence.department_code), fresh_licence.id,
                              Action.SUSPEND, reason="检查", effective_at=None, clock=SystemClock())
        raise RuntimeError("the request failed after the change")
    assert listening.remembered(fresh_licence.token) is not None
    assert listening.verify(fresh_licence.token).outcome is Outcome.VALID


@pytest.mark.postgres_only
def test_a_lost_feed_falls_back_to_reads_and_comes_back(runtime: Runtime, listening: LinkVerifier, fresh_licence) -> None:  # type: ignore[no-untyped-def]
    _remember(listening, fresh_licence.token)
    with runtime.engine.begin() as connection:
        killed = connection.execute(sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query = :q AND pid <> pg_backend_pid()"),
            {"q": f"LISTEN {CHANNEL}"}).scalar_one()
    assert killed >= 1
    assert eventually(lambda: listening.remembered(fresh_licence.token) is None)  # forgotten: notices may be lost
    _suspend(runtime, fresh_licence)
    assert listening.verify(fresh_licence.token).outcome is Outcome.SUSPENDED  # read while the feed is down
    assert listening.feed is not None and listening.feed.wait_live(10)
    assert listening.verify(fresh_licence.token).outcome is Outcome.SUSPENDED
    assert listening.verify(fresh_licence.token).outcome is Outcome.SUSPENDED  # vouched for by the new feed
    assert listening.remembered(fresh_licence.token).outcome is Outcome.SUSPENDED  # type: ignore[union-attr]
