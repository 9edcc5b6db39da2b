"""Clock skew between nodes: a token minted by a replica whose clock runs a little ahead or behind is accepted
(30 s leeway); beyond that it is refused with 401, never a 500; and the refusal does not depend on this node's cache."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from ecert.container import Container
from ecert.runtime import Runtime
from tests.identity.conftest import bearer, new_client


@pytest.mark.parametrize(("skew_seconds", "accepted"), [
    (20, True), (-20, True), (-600, True),  # ahead/behind within the leeway; 10 min behind: still inside its lifetime
    (600, False),  # 10 min ahead: not yet valid here
    (-2 * 3600, False),  # 2 h behind: already expired here
])
def test_tokens_from_a_skewed_replica(client: TestClient, runtime: Runtime, container: Container, uid: str, skew_seconds: int,
                                      accepted: bool) -> None:
    system = new_client(runtime, f"SK{uid.upper()}", ["licences:read"])
    tokens = container.tokens
    skewed_now = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=skew_seconds)
    token = tokens.issue(subject=system.client.client_id, scopes=["licences:read"], client_id=system.client.client_id,
                         department=f"SK{uid.upper()}", acr="client-secret", now=skewed_now).token
    response = client.get("/api/v1/licences", headers=bearer(token))
    assert response.status_code == (200 if accepted else 401), response.text
    if not accepted:
        assert "Bearer" in response.headers.get("WWW-Authenticate", "")
