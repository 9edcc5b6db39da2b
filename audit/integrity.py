"""Checking the audit trail: recompute the hash chain, check every signed checkpoint, name the first bad entry.

Each event is checked in ``seq`` order against three things: its position (``seq`` must be the
next number), its link (``prev_hash`` must equal the recomputed hash of the entry before) and its
own hash (recomputed from its fields). The *first bad entry* is the first position where the
stored trail stops being the trail that was written:

* a gap in ``seq`` -> the first missing number (deleted entries);
* a wrong own hash -> that entry (edited, moved or renumbered);
* a broken link while the entry's own hash is right -> the entry before it, which is not the
  entry this one was chained to (edited and re-hashed, or inserted); if ``prev_hash`` names an
  earlier entry, the entries after that one were inserted;
* a chain that is internally consistent but disagrees with a signed checkpoint -> the first entry
  after the previous good checkpoint (someone recomputed every hash from there on);
* fewer entries than a signed checkpoint, the head row or an external anchor says -> the first
  missing one (truncated tail).

Checkpoint signatures are verified with the public key of the Vault key version they name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from audit.checkpoints import Checkpoint, verify_checkpoint_signature
from audit.models import GENESIS_HASH, AuditCheckpoint, AuditEvent
from audit.trail import event_hash
from keys import KeyRef, KeyStore, KeyStoreError, PublicKey

__all__ = ["Problem", "TrailReport", "verify_trail"]

_PAGE = 5000


@dataclass(frozen=True)
class Problem:
    kind: str  # missing | edited | inserted | unlinked | rewritten | truncated | head | checkpoint-signature | anchor
    seq: int
    detail: str


@dataclass(frozen=True)
class TrailReport:
    ok: bool
    events: int
    last_seq: int
    last_hash: str
    checkpoints: int
    first_bad_seq: int | None = None
    problems: tuple[Problem, ...] = ()
    latest_checkpoint: Checkpoint | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "events": self.events, "last_seq": self.last_seq, "last_hash": self.last_hash,
            "checkpoints": self.checkpoints, "first_bad_seq": self.first_bad_seq,
            "problems": [p.__dict__ for p in self.problems],
            "latest_checkpoint": self.latest_checkpoint.to_json() if self.latest_checkpoint else None,
        }


@dataclass
class _Walk:
    expected: int = 1
    prev: str = GENESIS_HASH
    events: int = 0
    last_good_checkpoint: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def bad(self) -> bool:
        return bool(self.problems)


def _events(session: Session) -> Iterator[AuditEvent]:
    last: int | None = None
    while True:
        query = select(AuditEvent).order_by(col(AuditEvent.seq)).limit(_PAGE)
        if last is not None:
            query = query.where(AuditEvent.seq > last)
        rows = session.exec(query).all()
        yield from rows
        if len(rows) < _PAGE:
            return
        last = rows[-1].seq
        session.expunge_all()


def _recompute(event: AuditEvent) -> str:
    return event_hash(
        seq=event.seq, at=event.at, action=event.action, actor=event.actor, target=event.target,
        department=event.department, details=event.details, prev_hash=event.prev_hash,
    )


def _check_event(session: Session, walk: _Walk, event: AuditEvent) -> None:
    if event.seq > walk.expected:
        walk.problems.append(Problem("missing", walk.expected, f"entries {walk.expected}..{event.seq - 1} are missing"))
        return
    if event.seq < walk.expected:  # only possible for seq <= 0
        walk.problems.append(Problem("inserted", event.seq, f"entry {event.seq} is not a valid position"))
        return
    own_ok = _recompute(event) == event.hash
    if event.prev_hash != walk.prev:
        pointed = session.exec(select(AuditEvent.seq).where(AuditEvent.hash == event.prev_hash)).first()
        if pointed is not None and pointed < event.seq - 1:
            walk.problems.append(Problem("inserted", pointed + 1, f"entry {event.seq} was chained to entry {pointed}; "
                                         f"entries {pointed + 1}..{event.seq - 1} were inserted"))
        elif own_ok and event.seq > 1 and pointed is None:
            walk.problems.append(Problem("unlinked", event.seq - 1, f"entry {event.seq - 1} is not the entry that "
                                         f"entry {event.seq} was chained to (edited and re-hashed, or replaced)"))
        else:
            walk.problems.append(Problem("edited", event.seq, f"entry {event.seq} does not link to entry {event.seq - 1}"))
        return
    if not own_ok:
        walk.problems.append(Problem("edited", event.seq, f"entry {event.seq} does not match its hash"))


def _checkpoints(session: Session, keystore: KeyStore) -> tuple[dict[int, Checkpoint], list[Problem]]:
    keys: dict[KeyRef, PublicKey | None] = {}
    valid: dict[int, Checkpoint] = {}
    problems: list[Problem] = []
    for row in session.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.seq))).all():
        checkpoint = Checkpoint.of(row)
        if checkpoint.key not in keys:
            try:
                keys[checkpoint.key] = keystore.public_key(checkpoint.key)
            except KeyStoreError:
                keys[checkpoint.key] = None
        public_key = keys[checkpoint.key]
        if public_key is None or not verify_checkpoint_signature(checkpoint, public_key):
            problems.append(Problem("checkpoint-signature", checkpoint.seq,
                                    f"checkpoint at {checkpoint.seq} has no valid signature by {checkpoint.key}"))
        else:
            valid[checkpoint.seq] = checkpoint
    return valid, problems


def verify_trail(session: Session, keystore: KeyStore, *, anchor: Checkpoint | None = None) -> TrailReport:
    """Check the whole trail as ``session`` sees it; ``anchor`` is a checkpoint kept outside the database."""
    checkpoints, signature_problems = _checkpoints(session, keystore)
    if anchor is not None:
        try:
            anchor_ok = verify_checkpoint_signature(anchor, keystore.public_key(anchor.key))
        except KeyStoreError:
            anchor_ok = False
        if not anchor_ok:
            signature_problems.append(Problem("anchor", anchor.seq, "the anchor checkpoint's signature is not valid"))
        elif anchor.seq not in checkpoints or checkpoints[anchor.seq].hash != anchor.hash:
            checkpoints[anchor.seq] = anchor
    walk = _Walk()
    for event in _events(session):
        _check_event(session, walk, event)
        if walk.bad:
            break
        cp = checkpoints.get(event.seq)
        if cp is not None and cp.hash != event.hash:
            walk.problems.append(Problem("rewritten", walk.last_good_checkpoint + 1,
                                         f"entries after {walk.last_good_checkpoint} no longer match the signed "
                                         f"checkpoint at {event.seq}"))
            break
        if cp is not None:
            walk.last_good_checkpoint = event.seq
        walk.prev, walk.expected, walk.events = event.hash, event.seq + 1, walk.events + 1
    last_seq = walk.expected - 1
    if not walk.bad:
        _check_tail(session, walk, last_seq, checkpoints)
    problems = tuple(walk.problems + signature_problems)
    first_bad = min((p.seq for p in walk.problems), default=None)
    latest = checkpoints[max(checkpoints)] if checkpoints else None
    return TrailReport(
        ok=not problems, events=walk.events, last_seq=last_seq, last_hash=walk.prev, checkpoints=len(checkpoints),
        first_bad_seq=first_bad, problems=problems, latest_checkpoint=latest,
    )


def _check_tail(session: Session, walk: _Walk, last_seq: int, checkpoints: dict[int, Checkpoint]) -> None:
    beyond = [seq for seq in checkpoints if seq > last_seq]
    if beyond:
        walk.problems.append(Problem("truncated", last_seq + 1, f"entries {last_seq + 1}..{max(beyond)} are missing "
                                     f"but a signed checkpoint covers them"))
        return
    head = session.execute(sa.text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
    head_seq, head_hash = int(head[0]), str(head[1])
    if head_seq > last_seq:
        walk.problems.append(Problem("truncated", last_seq + 1, f"entries {last_seq + 1}..{head_seq} are missing"))
    elif head_seq < last_seq:
        walk.problems.append(Problem("inserted", head_seq + 1, f"entries {head_seq + 1}..{last_seq} were never "
                                     "appended through the head"))
    elif head_hash != walk.prev:
        walk.problems.append(Problem("head", last_seq, f"the head does not name entry {last_seq}'s hash"))
