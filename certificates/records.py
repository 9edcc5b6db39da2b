"""Reading licences and changing their legal status (revoke, suspend, reinstate, amend, expire...).

Access rule: a department sees and changes only its own licences; to anyone else they do not
exist (``licence-not-found``), so record ids cannot be probed across departments.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from audit import record_event
from audit.tlog import append_leaf
from certificates.changes import announce
from certificates.holders import HolderKind, PiiVault, normalise_holder_id
from certificates.issuance import Actor, IssueRequest, Issuer, transparency_digest
from certificates.lifecycle import Action, Status, transition
from certificates.models import Licence, LicenceEvent
from certificates.statuslist import mark_changed
from certificates.text import clean_text
from ecert.clock import Clock, as_utc
from ecert.errors import EcertError, NotFound

__all__ = [
    "LicenceNotFound",
    "get_licence",
    "get_by_token",
    "history",
    "change_status",
    "amend",
    "expire_due",
    "SweepReport",
    "list_for_holder",
    "list_by_index",
    "list_for_department",
    "effective_status",
]

log = logging.getLogger(__name__)
_EXPIRABLE = (Status.VALID.value, Status.SUSPENDED.value, Status.OTHER.value)


class LicenceNotFound(NotFound):
    slug = "licence-not-found"
    title = "No such licence"


def get_licence(session: Session, actor: Actor, licence_id: str, *, for_update: bool = False) -> Licence:
    query = select(Licence).where(Licence.id == licence_id)
    if for_update:
        query = query.with_for_update()
    row = session.exec(query).first()
    if row is None or (actor.department is not None and row.department_code != actor.department):
        raise LicenceNotFound(f"no licence {licence_id} among yours")
    return row


def get_by_token(session: Session, token: str) -> Licence | None:
    """For public verification: the licence behind a verification token, if any."""
    return session.exec(select(Licence).where(Licence.token == token)).first()


def effective_status(licence: Licence, now: dt.datetime) -> Status:
    """The status as of ``now``: a licence past ``valid_until`` reads as expired even before the sweep."""
    status = Status(licence.status)
    if status.value in _EXPIRABLE and licence.valid_until is not None and as_utc(licence.valid_until) <= now:
        return Status.EXPIRED
    return status


def history(session: Session, licence_id: str) -> list[LicenceEvent]:
    return list(session.exec(select(LicenceEvent).where(LicenceEvent.licence_id == licence_id).order_by(col(LicenceEvent.id))).all())


def _last_change(session: Session, licence_id: str) -> dt.datetime | None:
    return session.exec(
        select(LicenceEvent.effective_at).where(LicenceEvent.licence_id == licence_id).order_by(col(LicenceEvent.id).desc())
    ).first()


def _not_before(licence: Licence, action: Action) -> dt.datetime:
    """The earliest effective date of a change: issuance, or the start of validity for an expiry (a fact of the
    window) and for a historical record (it existed before ecert recorded it)."""
    issued = as_utc(licence.issued_at)
    if action is Action.EXPIRE or licence.historical:
        return min(issued, as_utc(licence.valid_from))
    return issued


def _apply(
    session: Session, actor: Actor, licence: Licence, action: Action, reason: str | None,
    effective_at: dt.datetime, now: dt.datetime, details: dict[str, Any] | None = None,
) -> Licence:
    if action is not Action.EXPIRE and effective_status(licence, now) is Status.EXPIRED and licence.status != Status.EXPIRED.value:
        assert licence.valid_until is not None  # past its validity, not yet swept: the expiry comes first, in order
        _apply(session, Actor("system:expiry"), licence, Action.EXPIRE, None, as_utc(licence.valid_until), now)
    last = _last_change(session, licence.id)
    change = transition(
        Status(licence.status), action, reason=reason, effective_at=effective_at,
        issued_at=_not_before(licence, action), last_change_at=as_utc(last) if last else None, now=now,
    )
    licence.status = change.to_status.value
    licence.status_reason = change.reason
    licence.status_effective_at = change.effective_at
    licence.updated_at = now
    session.add(licence)
    mark_changed(session, [licence.status_list])
    announce(session, licence.token)
    session.add(LicenceEvent(
        licence_id=licence.id, action=action.value, from_status=change.from_status.value, to_status=change.to_status.value,
        reason=change.reason, effective_at=change.effective_at, actor=actor.subject, at=now,
    ))
    record_event(
        session, action=f"certificates.licence.{action.value}", actor=actor.subject, target=f"licence:{licence.id}",
        department=licence.department_code,
        details={"number": licence.number, "from": change.from_status.value, "to": change.to_status.value,
                 "reason": change.reason, "effective_at": change.effective_at.isoformat(), **(details or {})},
        at=now,
    )
    session.flush()
    return licence


def change_status(
    session: Session, actor: Actor, licence_id: str, action: Action, *, reason: str | None,
    effective_at: dt.datetime | None, clock: Clock,
) -> Licence:
    """Suspend, reinstate, revoke, cancel, transfer, withdraw or mark-other one of the actor's licences."""
    if action in (Action.SUPERSEDE, Action.EXPIRE):
        raise ValueError(f"use amend() / expire_due() for {action.value}")
    now = clock.now()
    reason = clean_text(reason, "#/reason")
    licence = get_licence(session, actor, licence_id, for_update=True)
    return _apply(session, actor, licence, action, reason, effective_at or now, now)


def amend(
    session: Session, issuer: Issuer, actor: Actor, licence_id: str, *, fields: dict[str, Any],
    holder_name: str | None, reason: str | None, idempotency_key: str | None,
) -> tuple[Licence, Licence, bool]:
    """Issue a new version of a licence (latest type version) and mark the old one superseded.

    Returns (new licence, old licence, replayed).
    """
    now = issuer.clock.now()
    reason = clean_text(reason, "#/reason")
    old = get_licence(session, actor, licence_id, for_update=True)
    holder_id = issuer.pii.reveal(old.holder_id_cipher)
    request = IssueRequest(
        type_code=old.type_code, holder_kind=old.holder_kind, holder_name=holder_name or old.holder_name,
        holder_id=holder_id, fields=fields, idempotency_key=idempotency_key, supersedes_id=old.id,
        associated_number=old.number,
    )
    prepared = issuer.prepare(session, actor, old.department_code, request)
    existing = issuer.find_replay(session, prepared)
    if existing is not None:
        return existing, old, True
    new, _ = issuer.issue_one(session, actor, replace(prepared))
    old.superseded_by_id = new.id
    _apply(session, actor, old, Action.SUPERSEDE, reason, now, now, {"superseded_by": new.number})
    append_leaf(session, cert_digest=transparency_digest(old), licence_number=old.number, kind="superseded", at=now)
    return new, old, False


@dataclass
class SweepReport:
    """What one expiry sweep did: how many licences it expired and which it could not (id -> reason)."""

    expired: int = 0
    failed: dict[str, str] = field(default_factory=dict)


def expire_due(
    session: Session, *, now: dt.datetime, limit: int = 1000, department_code: str | None = None,
    skip: Collection[str] = (),
) -> SweepReport:
    """Move licences whose validity ended to ``expired`` (effective at ``valid_until``), each in a savepoint.

    A licence that cannot be expired (its history refuses the change, or its row is broken) is rolled back alone,
    logged and reported in :attr:`SweepReport.failed`; the others are expired all the same. Licences in ``skip``
    (known failures) are not tried again, so they never hold back the ones after them.
    """
    query = select(Licence).where(
        col(Licence.status).in_(_EXPIRABLE), col(Licence.valid_until).is_not(None), col(Licence.valid_until) <= now
    )
    if department_code is not None:
        query = query.where(Licence.department_code == department_code)
    if skip:
        query = query.where(col(Licence.id).not_in(list(skip)))
    report = SweepReport()
    system = Actor("system:expiry")
    for licence in session.exec(query.order_by(col(Licence.valid_until)).limit(limit)).all():
        assert licence.valid_until is not None
        try:
            with session.begin_nested():
                _apply(session, system, licence, Action.EXPIRE, None, as_utc(licence.valid_until), now)
        except (EcertError, ValueError, sa.exc.SQLAlchemyError) as exc:
            if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
                raise  # the database is gone: not this row's fault
            session.expire(licence)
            report.failed[licence.id] = str(exc)
            log.error("expiry sweep skips licence %s (%s): %s", licence.id, licence.number, exc)
        else:
            report.expired += 1
    return report


def list_for_holder(
    session: Session, pii: PiiVault, *, kind: str, id_number: str, limit: int = 100, offset: int = 0
) -> list[Licence]:
    """A holder's own licences, found by blind index (no decryption)."""
    holder_kind = HolderKind(kind)
    index = pii.index(holder_kind, [normalise_holder_id(holder_kind, id_number)])[0]
    return list_by_index(session, kind=holder_kind.value, index=index, limit=limit, offset=offset)


def list_by_index(session: Session, *, kind: str, index: str, limit: int = 100, offset: int = 0) -> list[Licence]:
    """A holder's licences by the blind index already known (an account's ``id_index``): no Vault call."""
    query = (
        select(Licence)
        .where(Licence.holder_index == index, Licence.holder_kind == kind)
        .order_by(col(Licence.issued_at).desc())
        .offset(offset)
        .limit(limit)
    )
    return list(session.exec(query).all())


def list_for_department(
    session: Session, actor: Actor, department_code: str, *, status: str | None = None, limit: int = 100, offset: int = 0
) -> list[Licence]:
    if actor.department is not None and actor.department != department_code:
        return []
    query = select(Licence).where(Licence.department_code == department_code)
    if status:
        query = query.where(Licence.status == status)
    return list(session.exec(query.order_by(col(Licence.issued_at).desc()).offset(offset).limit(limit)).all())
