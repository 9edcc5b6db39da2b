"""Shared rate limits (ecert.ratelimit) on the real databases: several limiters on one database stand for
several workers; an explicit clock, and syncs run by hand, so every step is deterministic."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ecert.models import RateCount
from ecert.ratelimit import DirectWindows, SharedWindows

WINDOW_START = 1_800_000_000.0  # a multiple of the 100 s windows below


class Clock:
    def __init__(self) -> None:
        self.at = WINDOW_START + 1.0

    def __call__(self) -> float:
        return self.at


def _admit(limiter: SharedWindows | DirectWindows, key: str, tries: int) -> int:
    return sum(1 for _ in range(tries) if limiter.take(key) == 0.0)


@pytest.fixture
def scope() -> str:
    return "t" + uuid.uuid4().hex[:12]


def test_workers_together_admit_no_more_than_the_limit(engine: Engine, scope: str) -> None:
    clock = Clock()
    workers = [SharedWindows(engine, scope, 0.1, 10, expected_workers=2, now=clock, background=False) for _ in range(2)]
    admitted = []
    for _ in range(6):  # serve until refused on each worker, then sync, as the background threads would
        admitted += [_admit(worker, "203.0.113.7", 20) for worker in workers]
        for worker in workers:
            worker.sync()
    assert admitted[:2] == [2, 2]  # before any sync: the provisional allowance, limit / (2 x expected workers)
    assert 8 <= sum(admitted) <= 10, admitted
    assert all(worker.workers == 2 for worker in workers)  # both heartbeats seen
    assert _admit(workers[0], "198.51.100.1", 1) == 1  # other addresses are not affected

    wait = workers[0].take("203.0.113.7")
    assert 0 < wait <= 2 * workers[0].window
    clock.at += 2 * workers[0].window  # both windows have passed: room again
    assert _admit(workers[0], "203.0.113.7", 1) == 1


def test_a_key_already_near_its_limit_gets_no_allowance_on_another_worker(engine: Engine, scope: str) -> None:
    clock = Clock()
    busy, idle = (SharedWindows(engine, scope, 0.1, 12, expected_workers=2, now=clock, background=False) for _ in range(2))
    for _ in range(4):
        _admit(busy, "k", 20)
        busy.sync()
    idle.take("other")  # the idle worker becomes active and syncs: it learns the heavy key without serving it
    idle.sync()
    assert _admit(idle, "k", 5) == 0


def test_counts_survive_a_sync_and_old_windows_are_dropped(engine: Engine, scope: str) -> None:
    clock = Clock()
    worker = SharedWindows(engine, scope, 0.1, 10, now=clock, background=False)
    _admit(worker, "k", 3)
    worker.sync()
    clock.at += 5 * worker.window
    _admit(worker, "k", 1)
    worker.sync()
    with engine.connect() as connection:
        slots = connection.execute(sa.select(RateCount.slot, RateCount.hits).where(RateCount.scope == scope)).all()  # type: ignore[arg-type]
    current = int(clock.at // worker.window)
    assert {slot for slot, _ in slots} == {current}  # the old window was cleaned; claim + use in the current one
    assert sum(hits for _, hits in slots) == pytest.approx(10.0)  # the one hit plus the claim of what is left


def test_direct_limits_are_exact_across_workers(engine: Engine, scope: str) -> None:
    clock = Clock()
    a, b = (DirectWindows(engine, scope, 0.1, 5, now=clock) for _ in range(2))
    results = [(a if i % 2 else b).take("192.0.2.9") for i in range(9)]
    assert sum(1 for wait in results if wait == 0.0) == 5
    assert all(0 < wait <= 2 * a.window for wait in results[5:])
    with engine.connect() as connection:
        hits = connection.execute(sa.select(sa.func.sum(RateCount.hits)).where(RateCount.scope == scope)).scalar_one()  # type: ignore[arg-type]
    assert hits == pytest.approx(5.0)  # refused attempts are taken back
    clock.at += a.window * 1.5  # half the previous window's hits have decayed
    assert _admit(a, "192.0.2.9", 5) == 2


def test_a_failed_sync_keeps_the_counts_for_the_next(engine: Engine, scope: str, tmp_path: Path) -> None:
    clock = Clock()
    unreachable = sa.create_engine(f"sqlite:///{tmp_path}/missing/directory/ecert.db")
    worker = SharedWindows(unreachable, scope, 0.1, 10, now=clock, background=False)
    assert _admit(worker, "k", 3) == 3
    with pytest.raises(sa.exc.OperationalError):
        worker.sync()
    assert _admit(worker, "k", 5) == 2  # still within the provisional allowance (limit / 2), no more
    worker.engine = engine  # the database is back
    worker.sync()
    with engine.connect() as connection:
        hits = connection.execute(sa.select(sa.func.sum(RateCount.hits)).where(RateCount.scope == scope)).scalar_one()  # type: ignore[arg-type]
    assert hits == pytest.approx(10.0)  # the 5 admitted while it was down, and a claim of the 5 left
    assert _admit(worker, "k", 10) == 5
