"""When checkpoints and tree heads are signed: every N events / leaves or T seconds, only when something is new."""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy.engine import Engine
from sqlmodel import Session

from audit import append_leaf, record_event, tlog
from audit.checkpoints import CheckpointPolicy, latest_checkpoint, maybe_checkpoint, take_checkpoint
from audit.publisher import Publisher, PublishPolicy
from ecert.clock import FixedClock
from ecert.db import session_scope
from keys import TransitKeyStore


def _events(engine: Engine, uid: str, count: int) -> None:
    with session_scope(engine) as session:
        for i in range(count):
            record_event(session, action="test.policy", actor="system", target=f"t:{uid}", details={"i": i})


def test_checkpoint_policy(engine: Engine, keystore: TransitKeyStore, uid: str) -> None:
    clock = FixedClock(dt.datetime(2031, 1, 1, tzinfo=dt.timezone.utc))
    policy = CheckpointPolicy(every_events=5, every_seconds=60)
    _events(engine, uid, 1)
    take_checkpoint(engine, keystore, clock)
    assert maybe_checkpoint(engine, keystore, clock, policy) is None  # nothing new
    _events(engine, uid, 4)
    assert maybe_checkpoint(engine, keystore, clock, policy) is None  # 4 < 5 events, no time passed
    _events(engine, uid, 1)
    by_count = maybe_checkpoint(engine, keystore, clock, policy)
    assert by_count is not None
    _events(engine, uid, 1)
    clock.advance(dt.timedelta(seconds=59))
    assert maybe_checkpoint(engine, keystore, clock, policy) is None
    clock.advance(dt.timedelta(seconds=1))
    by_time = maybe_checkpoint(engine, keystore, clock, policy)
    assert by_time is not None and by_time.seq == by_count.seq + 1
    with Session(engine) as session:
        assert latest_checkpoint(session) == by_time


def test_publisher_signs_heads_and_checkpoints(engine: Engine, keystore: TransitKeyStore, uid: str) -> None:
    clock = FixedClock(dt.datetime(2032, 1, 1, tzinfo=dt.timezone.utc))
    publisher = Publisher(engine, keystore, clock, PublishPolicy(CheckpointPolicy(every_events=1), sth_every_leaves=3,
                                                                 sth_every_seconds=3600))
    publisher.run_once()
    with session_scope(engine) as session:
        record_event(session, action="test.publish", actor="system", target=f"t:{uid}")
        for i in range(3):
            append_leaf(session, cert_digest=hashlib.sha256(f"{uid}{i}".encode()).digest(), licence_number=f"P-{uid}-{i}",
                        kind="issued", at=clock.now())
    publisher.run_once()
    with Session(engine) as session:
        head = tlog.latest_tree_head(session)
        assert head is not None and head.tree_size == tlog.tree_size(session)
        checkpoint = latest_checkpoint(session)
    assert checkpoint is not None and checkpoint.at == clock.now()


def test_publisher_restarts_after_stop(engine: Engine, keystore: TransitKeyStore) -> None:
    publisher = Publisher(engine, keystore, FixedClock(dt.datetime(2033, 1, 1, tzinfo=dt.timezone.utc)),
                          PublishPolicy(poll_seconds=0.05))
    publisher.start()
    publisher.stop()
    publisher.start()
    assert publisher._thread is not None and publisher._thread.is_alive()
    publisher.stop()
    assert publisher._thread is None
