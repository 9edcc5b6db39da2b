"""Helpers for tests that need API clients and their tokens (also used by tests/api)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from ca.departments import add_department, get_department
from ca.errors import UnknownDepartment
from ca.service import CertificateAuthority, ca_config
from ecert.db import session_scope
from ecert.runtime import Runtime
from identity.clients import NewClient, create_client


def register_department(where: Engine | Runtime, code: str) -> None:
    """Add the department to ca's register unless it is there (clients must name a registered one).

    Given a Runtime, the department also gets its seal certificate (so it can issue sealed licences).
    """
    engine = where.engine if isinstance(where, Runtime) else where
    with session_scope(engine) as session:
        try:
            get_department(session, code)
        except UnknownDepartment:
            if isinstance(where, Runtime):
                CertificateAuthority(engine=where.engine, keystore=where.keystore, clock=where.clock,
                                     config=ca_config(where.settings)).add_department(session, code, f"Department {code}", actor="test")
            else:
                add_department(session, code, f"Department {code}", actor="test", now=dt.datetime.now(dt.timezone.utc))


def new_client(where: Engine | Runtime, department: str | None, scopes: Iterable[str], *, name: str = "test system") -> NewClient:
    engine = where.engine if isinstance(where, Runtime) else where
    if department is not None:
        register_department(where, department)
    with session_scope(engine) as session:
        return create_client(session, name=name, department=department, scopes=list(scopes), actor="test",
                             now=dt.datetime.now(dt.timezone.utc))


def token_for(client: TestClient, new: NewClient, scope: str | None = None) -> str:
    """An access token from the token endpoint (client_secret_post)."""
    form = {"grant_type": "client_credentials", "client_id": new.client.client_id, "client_secret": new.secret}
    if scope is not None:
        form["scope"] = scope
    response = client.post("/oauth/token", data=form)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- accounts (people, enterprises, staff) ---------------------------------------------------

import random  # noqa: E402

import pytest  # noqa: E402

from certificates.holders import PiiVault  # noqa: E402
from keys import TransitKeyStore  # noqa: E402
from tests.support.licences import person_id, uscc  # noqa: E402,F401

PASSWORD = "correct horse battery staple"


def phone_number(rng: random.Random | None = None) -> str:
    return "13" + "".join(str((rng or random.Random()).randint(0, 9)) for _ in range(9))


@pytest.fixture(scope="session")
def pii(keystore: TransitKeyStore) -> PiiVault:
    return PiiVault(keystore)
