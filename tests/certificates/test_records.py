"""Status changes on stored licences: history, audit, department isolation, amendment, expiry."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from audit.models import AuditEvent
from certificates.issuance import Actor, Issuer
from certificates.lifecycle import Action, InvalidTransition, Status
from certificates.models import Licence, LicenceType
from certificates.records import (
    LicenceNotFound,
    amend,
    change_status,
    effective_status,
    expire_due,
    get_licence,
    history,
)
from ecert.clock import FixedClock, SystemClock
from ecert.db import session_scope
from tests.support.licences import issue_licence as issue


def test_suspend_reinstate_revoke_keeps_a_full_history(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType
) -> None:
    licence = issue(engine, issuer, actor, department)
    clock = SystemClock()
    with session_scope(engine) as session:
        change_status(session, actor, licence.id, Action.SUSPEND, reason="inspection pending", effective_at=None, clock=clock)
    with session_scope(engine) as session:
        change_status(session, actor, licence.id, Action.REINSTATE, reason=None, effective_at=None, clock=clock)
    with session_scope(engine) as session:
        revoked = change_status(session, actor, licence.id, Action.REVOKE, reason="fraud", effective_at=None, clock=clock)
    assert revoked.status == "revoked" and revoked.status_reason == "fraud"
    with pytest.raises(InvalidTransition):
        with session_scope(engine) as session:
            change_status(session, actor, licence.id, Action.REINSTATE, reason=None, effective_at=None, clock=clock)
    with Session(engine) as session:
        steps = [(e.action, e.from_status, e.to_status) for e in history(session, licence.id)]
        actions = session.exec(select(AuditEvent.action).where(AuditEvent.target == f"licence:{licence.id}").order_by(AuditEvent.seq)).all()
    assert steps == [("issue", None, "valid"), ("suspend", "valid", "suspended"), ("reinstate", "suspended", "valid"),
                     ("revoke", "valid", "revoked")]
    assert actions == ["certificates.licence.issue", "certificates.licence.suspend", "certificates.licence.reinstate",
                       "certificates.licence.revoke"]


def test_another_department_can_neither_read_nor_change_a_licence(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType
) -> None:
    licence = issue(engine, issuer, actor, department)
    intruder = Actor("client:intruder", department="ZZOTHER")
    with Session(engine) as session:
        with pytest.raises(LicenceNotFound):
            get_licence(session, intruder, licence.id)
    with pytest.raises(LicenceNotFound):
        with session_scope(engine) as session:
            change_status(session, intruder, licence.id, Action.REVOKE, reason="x", effective_at=None, clock=SystemClock())
    with Session(engine) as session:
        assert get_licence(session, Actor("admin"), licence.id).status == "valid"


def test_amend_issues_a_linked_new_version(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType
) -> None:
    old = issue(engine, issuer, actor, department)
    with session_scope(engine) as session:
        new, old_after, replayed = amend(session, issuer, actor, old.id, fields={"company": "新名称有限公司", "capital": 2},
                                         holder_name=None, reason="name change", idempotency_key="amend-1")
    assert not replayed and new.id != old.id
    assert (new.supersedes_id, new.associated_number) == (old.id, old.number)
    assert old_after.status == "superseded" and old_after.superseded_by_id == new.id
    assert issuer.pii.reveal(new.holder_id_cipher) == issuer.pii.reveal(old.holder_id_cipher)
    with pytest.raises(InvalidTransition):
        with session_scope(engine) as session:
            amend(session, issuer, actor, old.id, fields={"company": "again", "capital": 3}, holder_name=None, reason=None,
                  idempotency_key=None)


def test_expiry_is_effective_at_valid_until(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType
) -> None:
    licence = issue(engine, issuer, actor, department)
    assert licence.valid_until is not None
    later = licence.valid_until + dt.timedelta(days=1)
    assert effective_status(licence, later) is Status.EXPIRED
    with session_scope(engine) as session:
        assert expire_due(session, now=later, department_code=department).expired == 1
    with Session(engine) as session:
        stored = session.get(Licence, licence.id)
        assert stored is not None and stored.status == "expired"
        last = history(session, licence.id)[-1]
        assert last.action == "expire" and last.effective_at.replace(tzinfo=dt.timezone.utc) == licence.valid_until.replace(tzinfo=dt.timezone.utc)
    clock = FixedClock(later)
    with session_scope(engine) as session:
        assert change_status(session, actor, licence.id, Action.REVOKE, reason="fraud found later", effective_at=None, clock=clock).status == "revoked"
