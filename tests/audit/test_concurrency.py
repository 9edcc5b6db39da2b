"""Concurrent writers never fork the chain; a writer killed mid-transaction leaves a verifiable trail."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from audit import record_event
from audit.checkpoints import take_checkpoint
from audit.integrity import verify_trail
from ecert.clock import SystemClock
from ecert.db import session_scope
from keys import TransitKeyStore

THREADS, PER_THREAD = 6, 15


def test_concurrent_writers_and_checkpointer_keep_one_chain(engine: Engine, keystore: TransitKeyStore, uid: str) -> None:
    errors: list[BaseException] = []
    committed: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(n: int) -> None:
        rng = random.Random(n)
        try:
            for i in range(PER_THREAD):
                try:
                    with session_scope(engine) as session:
                        event = record_event(session, action="test.concurrent", actor=f"w{n}", target=f"t:{uid}",
                                             details={"i": i})
                        if rng.random() < 0.2:
                            raise RuntimeError("business failure: roll back")
                    with lock:
                        committed.append(event.seq)
                except RuntimeError:
                    pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def checkpointer() -> None:
        while not stop.is_set():
            try:
                take_checkpoint(engine, keystore, SystemClock())
            except BaseException as exc:  # pragma: no cover
                errors.append(exc)
            stop.wait(0.05)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    cp = threading.Thread(target=checkpointer)
    cp.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    cp.join()
    assert not errors, errors
    with Session(engine) as session:
        rows = session.execute(sa.text(
            "SELECT seq, actor FROM audit_event WHERE target = :t ORDER BY seq"), {"t": f"t:{uid}"}).all()
        forks = session.execute(sa.text(
            "SELECT prev_hash FROM audit_event GROUP BY prev_hash HAVING COUNT(*) > 1")).all()
        report = verify_trail(session, keystore)
    assert sorted(committed) == [r.seq for r in rows]  # exactly the committed events, no gaps from rollbacks
    assert len({r.actor for r in rows}) == THREADS
    assert not forks
    assert report.ok, report.problems
    assert report.checkpoints >= 1


_WRITER = textwrap.dedent("""
    import sys, time
    from ecert.db import make_engine
    from sqlmodel import Session
    from audit import record_event
    url, schema, target = sys.argv[1:4]
    engine = make_engine(url, **({"connect_args": {"options": f"-csearch_path={schema}"}} if schema else {}))
    session = Session(engine)
    for i in range(3):
        record_event(session, action="test.crash", actor="doomed", target=target, details={"i": i})
    session.flush()
    pid = session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar() if schema else 0
    print(f"appended {pid}", flush=True)
    time.sleep(120)
""")


def _url_and_schema(engine: Engine) -> tuple[str, str]:
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name != "postgresql":
        return url, ""
    with engine.connect() as connection:
        return url, str(connection.execute(sa.text("SELECT current_schema()")).scalar_one())


@pytest.mark.parametrize("how", ["sigkill", pytest.param("terminate-backend", marks=pytest.mark.postgres_only)])
def test_a_writer_killed_mid_append_leaves_a_verifiable_trail(
    engine: Engine, keystore: TransitKeyStore, uid: str, how: str
) -> None:
    with session_scope(engine) as session:
        before = record_event(session, action="test.before-crash", actor="system", target=f"t:{uid}")
    url, schema = _url_and_schema(engine)
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, url, schema, f"t:{uid}"], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        assert writer.stdout is not None
        word, pid = writer.stdout.readline().split()
        assert word == "appended"
        if how == "sigkill":
            writer.send_signal(signal.SIGKILL)
        else:
            with engine.begin() as connection:
                killed = connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": int(pid)}).scalar()
            assert killed
        # The dead writer held the head row; the next writer gets it and continues the chain.
        with session_scope(engine) as session:
            after = record_event(session, action="test.after-crash", actor="system", target=f"t:{uid}")
    finally:
        writer.kill()
        writer.wait()
    assert after.seq == before.seq + 1 and after.prev_hash == before.hash
    with Session(engine) as session:
        doomed = session.execute(sa.text("SELECT COUNT(*) FROM audit_event WHERE target = :t AND actor = 'doomed'"),
                                 {"t": f"t:{uid}"}).scalar_one()
        report = verify_trail(session, keystore)
    assert doomed == 0
    assert report.ok, report.problems
