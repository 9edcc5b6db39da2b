"""Tampering with the audit trail by SQL, on SQLite and PostgreSQL: ``verify_trail`` names the first bad entry."""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from audit import record_event
from audit.checkpoints import Checkpoint, take_checkpoint
from audit.integrity import verify_trail
from audit.models import AuditEvent
from audit.trail import event_hash
from ecert.clock import SystemClock
from ecert.db import session_scope
from keys import TransitKeyStore

SHIFT = 10_000_000
_AT = sa.bindparam("at", type_=sa.DateTime(timezone=True))


def _append(engine: Engine, uid: str, count: int) -> list[int]:
    with session_scope(engine) as session:
        return [record_event(session, action="test.tamper", actor="system", target=f"t:{uid}", details={"i": i}).seq
                for i in range(count)]


def _row(session: Session, seq: int) -> sa.Row:
    return session.execute(sa.text("SELECT * FROM audit_event WHERE seq = :s"), {"s": seq}).one()


def _event(session: Session, seq: int) -> AuditEvent:
    return session.exec(select(AuditEvent).where(AuditEvent.seq == seq).execution_options(populate_existing=True)).one()


def _rehash(session: Session, seq: int) -> str:
    row = _event(session, seq)
    digest = event_hash(seq=row.seq, at=row.at, action=row.action, actor=row.actor, target=row.target,
                        department=row.department, details=row.details, prev_hash=row.prev_hash)
    session.execute(sa.text("UPDATE audit_event SET hash = :h WHERE seq = :s"), {"h": digest, "s": seq})
    return digest


def _shift(session: Session, first: int, by: int) -> None:
    """Renumber entries >= first by ``by`` in two steps (PostgreSQL checks the primary key per row)."""
    session.execute(sa.text("UPDATE audit_event SET seq = seq + :big WHERE seq >= :f"), {"big": SHIFT, "f": first})
    session.execute(sa.text("UPDATE audit_event SET seq = seq - :back WHERE seq >= :big"),
                    {"back": SHIFT - by, "big": SHIFT})


def _set_head(session: Session, seq: int) -> None:
    head_hash = _row(session, seq).hash
    session.execute(sa.text("UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1"), {"s": seq, "h": head_hash})


def _head(session: Session) -> int:
    return int(session.execute(sa.text("SELECT seq FROM audit_head")).scalar_one())


def test_an_untouched_trail_verifies(engine: Engine, keystore: TransitKeyStore, uid: str) -> None:
    _append(engine, uid, 5)
    checkpoint = take_checkpoint(engine, keystore, SystemClock())
    with Session(engine) as session:
        report = verify_trail(session, keystore)
    assert report.ok, report.problems
    assert report.first_bad_seq is None and report.last_seq >= 5
    assert checkpoint is not None and report.latest_checkpoint == checkpoint


def test_edited_entry(engine: Engine, keystore: TransitKeyStore, tampering: Session, uid: str) -> None:
    seqs = _append(engine, uid, 5)
    tampering.execute(sa.text("UPDATE audit_event SET actor = 'mallory' WHERE seq = :s"), {"s": seqs[2]})
    report = verify_trail(tampering, keystore)
    assert not report.ok and report.first_bad_seq == seqs[2]
    assert report.problems[0].kind == "edited"


def test_edited_and_rehashed_entry(engine: Engine, keystore: TransitKeyStore, tampering: Session, uid: str) -> None:
    seqs = _append(engine, uid, 5)
    tampering.execute(sa.text("UPDATE audit_event SET target = 't:someone-else' WHERE seq = :s"), {"s": seqs[1]})
    _rehash(tampering, seqs[1])
    report = verify_trail(tampering, keystore)
    assert report.first_bad_seq == seqs[1]


def test_edited_timestamp(engine: Engine, keystore: TransitKeyStore, tampering: Session, uid: str) -> None:
    seqs = _append(engine, uid, 3)
    earlier = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    tampering.execute(sa.text("UPDATE audit_event SET at = :at WHERE seq = :s").bindparams(_AT), {"at": earlier, "s": seqs[0]})
    assert verify_trail(tampering, keystore).first_bad_seq == seqs[0]


def test_deleted_entry(engine: Engine, keystore: TransitKeyStore, tampering: Session, uid: str) -> None:
    seqs = _append(engine, uid, 5)
    tampering.execute(sa.text("DELETE FROM audit_event WHERE seq = :s"), {"s": seqs[3]})
    report = verify_trail(tampering, keystore)
    assert report.first_bad_seq == seqs[3] and report.problems[0].kind == "missing"


def test_deleted_entry_with_renumbering(engine: Engine, keystore: TransitKeyStore, tampering: Session, uid: str) -> None:
    seqs = _append(engine, uid, 5)
    tampering.execute(sa.text("DELETE FROM audit_event WHERE seq = :s"), {"s": seqs[2]})
    _shift(tampering, seqs[3], -1)
    tampering.execute(sa.text("UPDATE audit_head SET seq = seq - 1"))
    assert verify_trail(tampering, keystore).first_bad_seq == seqs[2]


def test_inserted_entry(engine: Engine, keystore: TransitKeyStore, tampering: Session, uid: str) -> None:
    """A forged entry, correctly chained and hashed, slipped in at position seqs[2]."""
    seqs = _append(engine, uid, 5)
    at = SystemClock().now()
    _shift(tampering, seqs[2], +1)
    prev = _row(tampering, seqs[1]).hash
    details = {"forged": True}
    digest = event_hash(seq=seqs[2], at=at, action="test.forged", actor="mallory", target=None, department=None,
                        details=details, prev_hash=prev)
    tampering.execute(sa.text(
        "INSERT INTO audit_event (seq, at, action, actor, target, department, details, prev_hash, hash) "
        "VALUES (:s, :at, 'test.forged', 'mallory', NULL, NULL, :d, :p, :h)"
    ).bindparams(_AT), {"s": seqs[2], "at": at, "d": json.dumps(details), "p": prev, "h": digest})
    tampering.execute(sa.text("UPDATE audit_head SET seq = seq + 1"))
    report = verify_trail(tampering, keystore)
    assert report.first_bad_seq == seqs[2] and report.problems[0].kind == "inserted"


def test_reordered_entries(engine: Engine, keystore: TransitKeyStore, tampering: Session, uid: str) -> None:
    seqs = _append(engine, uid, 5)
    a, b = seqs[1], seqs[3]
    tampering.execute(sa.text("UPDATE audit_event SET seq = -1 WHERE seq = :a"), {"a": a})
    tampering.execute(sa.text("UPDATE audit_event SET seq = :a WHERE seq = :b"), {"a": a, "b": b})
    tampering.execute(sa.text("UPDATE audit_event SET seq = :b WHERE seq = -1"), {"b": b})
    assert verify_trail(tampering, keystore).first_bad_seq == a


def test_entry_appended_behind_the_head(engine: Engine, keystore: TransitKeyStore, tampering: Session, uid: str) -> None:
    seqs = _append(engine, uid, 2)
    last = _row(tampering, seqs[-1])
    at = SystemClock().now()
    digest = event_hash(seq=last.seq + 1, at=at, action="test.forged", actor="mallory", target=None, department=None,
                        details={}, prev_hash=last.hash)
    tampering.execute(sa.text(
        "INSERT INTO audit_event (seq, at, action, actor, target, department, details, prev_hash, hash) "
        "VALUES (:s, :at, 'test.forged', 'mallory', NULL, NULL, '{}', :p, :h)"
    ).bindparams(_AT), {"s": last.seq + 1, "at": at, "p": last.hash, "h": digest})
    report = verify_trail(tampering, keystore)
    assert report.first_bad_seq == last.seq + 1 and report.problems[0].kind == "inserted"


def test_truncated_tail_against_the_latest_checkpoint(engine: Engine, keystore: TransitKeyStore, tampering: Session,
                                                      uid: str) -> None:
    """The attacker deletes the last entries and fixes the head row: the signed checkpoint still counts them."""
    seqs = _append(engine, uid, 6)
    checkpoint = take_checkpoint(engine, keystore, SystemClock())
    assert checkpoint is not None and checkpoint.seq == seqs[-1]
    tampering.execute(sa.text("DELETE FROM audit_event WHERE seq >= :s"), {"s": seqs[3]})
    _set_head(tampering, seqs[2])
    report = verify_trail(tampering, keystore)
    assert report.first_bad_seq == seqs[3] and report.problems[0].kind == "truncated"


def test_truncated_tail_after_the_last_checkpoint(engine: Engine, keystore: TransitKeyStore, tampering: Session,
                                                  uid: str) -> None:
    seqs = _append(engine, uid, 2)
    take_checkpoint(engine, keystore, SystemClock())
    later = _append(engine, uid, 4)
    tampering.execute(sa.text("DELETE FROM audit_event WHERE seq >= :s"), {"s": later[1]})
    report = verify_trail(tampering, keystore)
    assert report.first_bad_seq == later[1], report.problems  # the head row still counts them
    assert seqs[-1] < later[1]


def test_truncation_hidden_everywhere_is_caught_by_an_external_anchor(
    engine: Engine, keystore: TransitKeyStore, tampering: Session, uid: str
) -> None:
    """Events, head and checkpoint rows all cut back: only a checkpoint kept outside the database shows it."""
    _append(engine, uid, 2)
    take_checkpoint(engine, keystore, SystemClock())
    later = _append(engine, uid, 4)
    anchor = take_checkpoint(engine, keystore, SystemClock())
    assert anchor is not None
    saved = Checkpoint.from_json(json.loads(json.dumps(anchor.to_json())))
    tampering.execute(sa.text("DELETE FROM audit_event WHERE seq >= :s"), {"s": later[1]})
    tampering.execute(sa.text("DELETE FROM audit_checkpoint WHERE seq >= :s"), {"s": later[1]})
    _set_head(tampering, later[0])
    assert verify_trail(tampering, keystore).ok  # indistinguishable from a shorter honest trail...
    report = verify_trail(tampering, keystore, anchor=saved)  # ...except against the anchor
    assert report.first_bad_seq == later[1] and report.problems[0].kind == "truncated"


def test_rewritten_chain_is_caught_by_its_checkpoint(engine: Engine, keystore: TransitKeyStore, tampering: Session,
                                                     uid: str) -> None:
    """Edit one entry and recompute every later hash: the chain is consistent but the signature is not."""
    before = _append(engine, uid, 2)
    take_checkpoint(engine, keystore, SystemClock())
    seqs = _append(engine, uid, 4)
    take_checkpoint(engine, keystore, SystemClock())
    tampering.execute(sa.text("UPDATE audit_event SET actor = 'mallory' WHERE seq = :s"), {"s": seqs[1]})
    head = _head(tampering)
    prev = _rehash(tampering, seqs[1])
    for seq in range(seqs[1] + 1, head + 1):
        tampering.execute(sa.text("UPDATE audit_event SET prev_hash = :p WHERE seq = :s"), {"p": prev, "s": seq})
        prev = _rehash(tampering, seq)
    _set_head(tampering, head)
    report = verify_trail(tampering, keystore)
    assert report.problems[0].kind == "rewritten"
    assert report.first_bad_seq == before[-1] + 1  # first entry after the last checkpoint that still matches


def test_forged_checkpoint(engine: Engine, keystore: TransitKeyStore, tampering: Session, uid: str) -> None:
    _append(engine, uid, 1)
    checkpoint = take_checkpoint(engine, keystore, SystemClock())
    assert checkpoint is not None
    tampering.execute(sa.text("UPDATE audit_checkpoint SET at = :at WHERE seq = :s").bindparams(_AT),
                      {"at": dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc), "s": checkpoint.seq})
    report = verify_trail(tampering, keystore)
    assert not report.ok and report.first_bad_seq is None
    assert [p.kind for p in report.problems] == ["checkpoint-signature"]


def test_record_event_keeps_times_in_utc(engine: Engine, keystore: TransitKeyStore, uid: str) -> None:
    local = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    with session_scope(engine) as session:
        event = record_event(session, action="test.tz", actor="system", target=f"t:{uid}", at=local)
    with Session(engine) as session:
        assert verify_trail(session, keystore).ok
        stored = _event(session, event.seq).at
    assert stored.replace(tzinfo=None) == dt.datetime(2026, 5, 1, 4, 0)
