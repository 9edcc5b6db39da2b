"""Appending to the hash-chained audit trail, inside the caller's transaction.

An event is written in the same transaction as the change it records, so a change without
its audit event (or the reverse) can never be committed. Writers serialise on the single
``audit_head`` row: the first statement is an UPDATE that takes its lock on every backend.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from audit.models import AuditEvent
from audit.privacy import redact, redact_text
from audit.stats import DAY_PARAM, UPSERT_SQL, event_counter
from ecert.clock import as_utc

__all__ = ["record_event", "event_hash", "canonical_json"]

_INSERT_SQL = (
    "INSERT INTO audit_event (seq, at, action, actor, target, department, details, prev_hash, hash) "
    "VALUES (:seq, :at, :action, :actor, :target, :department, :details, :prev_hash, :hash)"
)
_HEAD_SQL = "UPDATE audit_head SET hash = :hash WHERE id = 1"
_AT = sa.bindparam("at", type_=sa.DateTime(timezone=True))
_INSERT = sa.text(_INSERT_SQL).bindparams(_AT)
_HEAD = sa.text(_HEAD_SQL)
_UPSERT = sa.text(UPSERT_SQL).bindparams(DAY_PARAM)
# PostgreSQL: data-modifying CTEs put the insert, the counter and the head update in one statement.
_COMBINED = sa.text(f"WITH e AS ({_INSERT_SQL}), s AS ({UPSERT_SQL}) {_HEAD_SQL}").bindparams(_AT, DAY_PARAM)


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def event_hash(
    *,
    seq: int,
    at: dt.datetime,
    action: str,
    actor: str,
    target: str | None,
    department: str | None,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    payload = {
        "seq": seq,
        "at": as_utc(at).isoformat(timespec="microseconds"),
        "action": action,
        "actor": actor,
        "target": target,
        "department": department,
        "details": details,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(payload)).hexdigest()


def record_event(
    session: Session,
    *,
    action: str,
    actor: str,
    target: str | None = None,
    department: str | None = None,
    details: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> AuditEvent:
    """Append one event in ``session``'s transaction; it is committed (or not) with the caller's work.

    The event also bumps its daily statistics counter (:mod:`audit.stats`) in the same transaction.

    ``details`` must hold no secrets and no clear personal ID numbers; any that slip through are
    redacted (:mod:`audit.privacy`) before hashing. The returned event is a value (written with
    plain SQL, not attached to ``session``).
    """
    at = as_utc(at) if at is not None else dt.datetime.now(dt.timezone.utc)
    details = redact(json.loads(canonical_json(details or {})))
    target = redact_text(target) if target else target
    row = session.execute(
        sa.text("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
    ).one()
    seq, prev_hash = int(row[0]), str(row[1])
    digest = event_hash(
        seq=seq, at=at, action=action, actor=actor, target=target, department=department, details=details, prev_hash=prev_hash
    )
    event = AuditEvent(
        seq=seq, at=at, action=action, actor=actor, target=target, department=department,
        details=details, prev_hash=prev_hash, hash=digest,
    )
    params = {
        "seq": seq, "at": at, "action": action, "actor": actor, "target": target, "department": department,
        "details": canonical_json(details).decode(), "prev_hash": prev_hash, "hash": digest,
        **event_counter(action=action, department=department, details=details, at=at),
    }
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_COMBINED, params)  # one round trip for the event, its counter and the head
    else:
        session.execute(_INSERT, params)
        session.execute(_HEAD, params)
        session.execute(_UPSERT, params)
    session.flush()
    return event
