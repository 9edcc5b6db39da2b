"""Vault down: every route that needs it answers 503 + Retry-After (never 500), and recovers by itself."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from ecert.runtime import Runtime, keystore_for
from ecert.settings import Settings
from keys import VaultCredentials
from keys.openbao import ManagedOpenBao
from tests.support.services import services_for
from tests.identity.conftest import new_client


@pytest.fixture
def own_vault_client(
    private_openbao: tuple[ManagedOpenBao, VaultCredentials], settings: Settings, runtime: Runtime
) -> Iterator[tuple[TestClient, ManagedOpenBao, Runtime]]:
    server, credentials = private_openbao
    own = settings.model_copy(update={"vault_addr": server.addr, "vault_role_id": credentials.role_id,
                                      "vault_secret_id": SecretStr(credentials.secret_id or ""), "vault_timeout": 2})
    own_runtime = Runtime(settings=own, engine=runtime.engine, keystore=keystore_for(own))
    with TestClient(create_app(services_for(own_runtime)), raise_server_exceptions=False) as client:
        yield client, server, own_runtime


def test_token_endpoint_is_503_with_retry_after_while_vault_is_down(
    own_vault_client: tuple[TestClient, ManagedOpenBao, Runtime], uid: str
) -> None:
    client, server, own_runtime = own_vault_client
    new = new_client(own_runtime.engine, f"D{uid.upper()}", ["licences:read"])  # rows only: no CA in this Vault
    form = {"grant_type": "client_credentials", "client_id": new.client.client_id, "client_secret": new.secret}
    assert client.post("/oauth/token", data=form).status_code == 200
    server.stop()
    down = client.post("/oauth/token", data=form)
    assert down.status_code == 503, down.text
    assert down.headers["content-type"] == "application/problem+json"
    assert int(down.headers["retry-after"]) > 0 and down.headers["cache-control"] == "no-store"
    body = down.json()
    assert (body["type"], body["error"]) == ("/problems/vault-unavailable", "temporarily_unavailable")
    assert "access_token" not in body
    server.start()
    assert client.post("/oauth/token", data=form).status_code == 200  # recovered without restarting ecert
