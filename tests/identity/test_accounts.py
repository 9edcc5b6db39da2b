"""Registration of people and enterprises, TOTP enrolment, in-person proofing (real Vault and databases)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from audit.models import AuditEvent
from certificates.holders import PiiVault
from ecert.db import session_scope
from ecert.errors import InvalidInput
from identity import accounts, passwords
from identity.models import Account
from tests.identity.conftest import PASSWORD, person_id, phone_number, uscc

NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone.utc)


def _person(engine: Engine, pii: PiiVault, id_number: str | None = None) -> tuple[accounts.AccountView, str]:
    id_number = id_number or person_id()
    with session_scope(engine) as session:
        return accounts.register_person(session, pii, name="张三", id_number=id_number, phone=phone_number(),
                                        password=PASSWORD, now=NOW), id_number


def test_person_is_stored_encrypted_with_blind_index(engine: Engine, pii: PiiVault) -> None:
    view, id_number = _person(engine, pii)
    assert view.id.startswith("acc_") and view.id_masked.startswith(id_number[:2]) and id_number not in view.id_masked
    with session_scope(engine) as session:
        row = session.get(Account, view.id)
        assert row is not None
        assert id_number not in row.id_cipher and row.id_cipher.startswith("vault:")
        assert row.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        assert accounts.reveal_id_number(pii, row) == id_number
        events = session.exec(select(AuditEvent).where(AuditEvent.target == f"account:{view.id}")).all()
        assert [e.action for e in events] == ["identity.account.register"]
        assert id_number not in str(events[0].details)


def test_same_id_number_cannot_register_twice(engine: Engine, pii: PiiVault) -> None:
    _, id_number = _person(engine, pii)
    with pytest.raises(accounts.AccountExists):
        _person(engine, pii, id_number)


def test_bad_inputs_are_refused(engine: Engine, pii: PiiVault) -> None:
    with session_scope(engine) as session, pytest.raises(InvalidInput):
        accounts.register_person(session, pii, name="x", id_number="110101199001011234", phone=phone_number(),
                                 password=PASSWORD, now=NOW)  # wrong check character
    with session_scope(engine) as session, pytest.raises(InvalidInput):
        accounts.register_person(session, pii, name="x", id_number=person_id(), phone="12345", password=PASSWORD, now=NOW)
    with session_scope(engine) as session, pytest.raises(InvalidInput):
        accounts.register_person(session, pii, name="x", id_number=person_id(), phone=phone_number(), password="short", now=NOW)


def test_enterprise_with_agents(engine: Engine, pii: PiiVault) -> None:
    agent, _ = _person(engine, pii)
    with session_scope(engine) as session:
        firm = accounts.register_enterprise(session, pii, name="某某科技有限公司", credit_code=uscc(), legal_representative="李四",
                                            phone=phone_number(), password=PASSWORD, agents=[agent.id], now=NOW)
        assert firm.kind == "enterprise"
        assert accounts.agents_of(session, firm.id) == [agent.id]
    with session_scope(engine) as session, pytest.raises(accounts.UnknownAccount):
        accounts.add_agent(session, enterprise_id=agent.id, person_id=agent.id, actor="test", now=NOW)


def test_totp_enrolment_gives_recovery_codes(engine: Engine, pii: PiiVault) -> None:
    view, _ = _person(engine, pii)
    with session_scope(engine) as session:
        enrolment = accounts.begin_totp(session, pii, view.id, issuer="ecert")
        assert enrolment.uri.startswith("otpauth://totp/") and "secret=" in enrolment.uri
        assert enrolment.secret not in repr(enrolment)
    with session_scope(engine) as session, pytest.raises(accounts.WrongCode):
        accounts.confirm_totp(session, pii, view.id, "000000" if passwords.totp_code(enrolment.secret, NOW) != "000000"
                              else "111111", now=NOW)
    with session_scope(engine) as session:
        codes = accounts.confirm_totp(session, pii, view.id, passwords.totp_code(enrolment.secret, NOW), now=NOW)
        assert len(codes) == 10 and len(set(codes)) == 10
        row = session.get(Account, view.id)
        assert row is not None and row.totp_cipher and row.totp_pending_cipher is None
        assert enrolment.secret not in row.totp_cipher


def test_in_person_proofing_needs_the_right_document(engine: Engine, pii: PiiVault) -> None:
    view, id_number = _person(engine, pii)
    with session_scope(engine) as session, pytest.raises(accounts.DocumentMismatch):
        accounts.record_in_person_proofing(session, pii, view.id, document_number=person_id(), document_type="resident-id",
                                           staff="staff:acc_x", hall="H1", now=NOW)
    with session_scope(engine) as session:
        proofed = accounts.record_in_person_proofing(session, pii, view.id, document_number=id_number.lower(),
                                                     document_type="resident-id", staff="staff:acc_x", hall="H1", now=NOW)
        assert proofed.assurance == accounts.ACR_IN_PERSON
        event = session.exec(select(AuditEvent).where(AuditEvent.target == f"account:{view.id}",
                                                      AuditEvent.action == "identity.counter.proofing")).one()
        assert event.actor == "staff:acc_x" and id_number not in str(event.details)


def test_totp_codes_are_one_time() -> None:
    secret = passwords.new_totp_secret()
    code = passwords.totp_code(secret, NOW)
    step = passwords.match_totp(secret, code, at=NOW, last_step=0)
    assert step is not None
    assert passwords.match_totp(secret, code, at=NOW, last_step=step) is None
    assert passwords.match_totp(secret, code, at=NOW + dt.timedelta(seconds=31), last_step=0) == step
    assert passwords.match_totp(secret, code, at=NOW + dt.timedelta(seconds=95), last_step=0) is None
