"""API clients: creation (secret shown once, stored hashed), listing, disabling, authentication."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from audit.models import AuditEvent
from ecert.db import session_scope
from ca.departments import disable_department
from ca.errors import DepartmentDisabled, UnknownDepartment
from ecert.errors import InvalidInput
from identity.clients import (
    ClientDisabled, UnknownClient, authenticate, create_client, disable_client, get_client, list_clients,
)
from identity.models import ApiClient
from identity.scopes import UnknownScope
from tests.identity.conftest import register_department

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.timezone.utc)


def _create(engine: Engine, department: str | None, scopes: list[str], name: str = "system"):  # type: ignore[no-untyped-def]
    if department is not None and department.isupper():
        register_department(engine, department)
    with session_scope(engine) as session:
        return create_client(session, name=name, department=department, scopes=scopes, actor="test", now=NOW)


def _events(engine: Engine, target: str) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.target == target).order_by(AuditEvent.seq)))


def test_create_returns_the_secret_once_and_stores_only_its_hash(engine: Engine, uid: str) -> None:
    new = _create(engine, f"D{uid.upper()}", ["licences:read", "licences:issue"])
    assert new.client.client_id.startswith("cl_") and len(new.secret) >= 43
    assert "[redacted]" in repr(new) and new.secret not in repr(new)
    with Session(engine) as session:
        row = session.get(ApiClient, new.client.client_id)
        assert row is not None and new.secret not in row.model_dump_json()
        assert row.scopes == "licences:read licences:issue"
    events = _events(engine, f"client:{new.client.client_id}")
    assert [e.action for e in events] == ["identity.client.create"]
    assert events[0].department == f"D{uid.upper()}" and new.secret not in str(events[0].details)


def test_authenticate_accepts_only_the_right_secret(engine: Engine, uid: str) -> None:
    new = _create(engine, f"D{uid.upper()}", ["licences:read"])
    cid = new.client.client_id
    with session_scope(engine) as session:
        assert authenticate(session, cid, new.secret, now=NOW) == new.client
        assert authenticate(session, cid, new.secret + "x", now=NOW) is None
        assert authenticate(session, cid, "", now=NOW) is None
        assert authenticate(session, "cl_" + "0" * 20, new.secret, now=NOW) is None
        assert authenticate(session, new.secret, new.secret, now=NOW) is None  # secret pasted as the id
    reasons = [e.details["reason"] for e in _events(engine, f"client:{cid}") if e.action == "identity.client.auth-failed"]
    assert reasons == ["wrong-secret", "wrong-secret"]
    with Session(engine) as session:
        failed = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "identity.client.auth-failed")).all()
    assert failed and all(new.secret not in f"{e.actor}{e.target}{e.details}" for e in failed)


def test_a_disabled_client_cannot_authenticate(engine: Engine, uid: str) -> None:
    new = _create(engine, f"D{uid.upper()}", ["licences:read"])
    cid = new.client.client_id
    with session_scope(engine) as session:
        disabled = disable_client(session, cid, actor="test", now=NOW)
    assert disabled.disabled_at is not None
    with session_scope(engine) as session:
        assert authenticate(session, cid, new.secret, now=NOW) is None
        with pytest.raises(ClientDisabled):
            disable_client(session, cid, actor="test", now=NOW)
    actions = [(e.action, e.details.get("reason")) for e in _events(engine, f"client:{cid}")]
    assert actions == [("identity.client.create", None), ("identity.client.disable", None),
                       ("identity.client.auth-failed", "disabled")]


def test_unknown_clients_are_named_only_to_operators(engine: Engine) -> None:
    with session_scope(engine) as session:
        with pytest.raises(UnknownClient):
            disable_client(session, "cl_" + "f" * 20, actor="test", now=NOW)
        with pytest.raises(UnknownClient):
            get_client(session, "cl_" + "f" * 20)


def test_admin_clients_have_no_department_and_department_clients_no_admin(engine: Engine, uid: str) -> None:
    admin = _create(engine, None, ["platform:admin"])
    assert admin.client.is_admin and admin.client.department is None
    with pytest.raises(InvalidInput, match="platform:admin"):
        _create(engine, None, ["licences:read"])
    with pytest.raises(InvalidInput, match="only for clients without a department"):
        _create(engine, f"D{uid.upper()}", ["platform:admin"])
    with pytest.raises(UnknownScope):
        _create(engine, f"D{uid.upper()}", ["licences:everything"])
    with pytest.raises(InvalidInput, match="department code"):
        _create(engine, "no spaces allowed", ["licences:read"])


def test_clients_belong_to_registered_active_departments(engine: Engine, uid: str) -> None:
    with pytest.raises(UnknownDepartment):
        with session_scope(engine) as session:
            create_client(session, name="x", department=f"U{uid.upper()}", scopes=["licences:read"], actor="t", now=NOW)
    _create(engine, f"X{uid.upper()}", ["licences:read"])
    with session_scope(engine) as session:
        disable_department(session, f"X{uid.upper()}", actor="test", now=NOW)
    with pytest.raises(DepartmentDisabled):
        with session_scope(engine) as session:
            create_client(session, name="x", department=f"X{uid.upper()}", scopes=["licences:read"], actor="t", now=NOW)


def test_list_by_department(engine: Engine, uid: str) -> None:
    first = _create(engine, f"L{uid.upper()}", ["licences:read"], name="one")
    second = _create(engine, f"L{uid.upper()}", ["licences:issue"], name="two")
    _create(engine, f"M{uid.upper()}", ["licences:read"])
    with session_scope(engine) as session:
        disable_client(session, second.client.client_id, actor="test", now=NOW)
        listed = list_clients(session, department=f"L{uid.upper()}")
        enabled = list_clients(session, department=f"L{uid.upper()}", include_disabled=False)
    assert {c.client_id for c in listed} == {first.client.client_id, second.client.client_id}
    assert [c.client_id for c in enabled] == [first.client.client_id]


def test_the_secret_is_never_logged(engine: Engine, uid: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    new = _create(engine, f"D{uid.upper()}", ["licences:read"])
    with session_scope(engine) as session:
        authenticate(session, new.client.client_id, new.secret, now=NOW)
        authenticate(session, new.client.client_id, new.secret[::-1], now=NOW)
    assert new.secret not in caplog.text and new.secret[::-1] not in caplog.text
