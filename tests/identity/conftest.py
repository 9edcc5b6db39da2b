"""Helpers for tests that need API clients and their tokens (also used by tests/api)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from ecert.db import session_scope
from identity.clients import NewClient, create_client


def register_department(engine: Engine, code: str) -> None:
    """Add the department to ca's register, where the register exists (clients must name a real one)."""
    try:
        from ca.departments import add_department, get_department
    except ImportError:
        return
    with session_scope(engine) as session:
        if not sa.inspect(session.connection()).has_table("ca_department"):
            return
        try:
            get_department(session, code)
        except Exception:
            add_department(session, code, f"Department {code}", actor="test", now=dt.datetime.now(dt.timezone.utc))


def new_client(engine: Engine, department: str | None, scopes: Iterable[str], *, name: str = "test system") -> NewClient:
    if department is not None:
        register_department(engine, department)
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
