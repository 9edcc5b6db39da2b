"""The admin API for department clients, and where sealed PDFs are stored."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from ecert.container import blob_store_for
from certificates.blobs import DatabaseBlobStore, FileBlobStore
from ecert.runtime import Runtime
from tests.identity.conftest import bearer, new_client, register_department, token_for


def test_an_admin_manages_clients_and_the_secret_is_shown_once(client: TestClient, runtime: Runtime, uid: str) -> None:
    admin = bearer(token_for(client, new_client(runtime, None, ["platform:admin"])))
    code = f"C{uid.upper()}"
    register_department(runtime, code)
    created = client.post("/api/v1/clients", json={"name": "registry", "department": code, "scopes": ["licences:read"]},
                          headers=admin)
    assert created.status_code == 201 and created.headers["cache-control"] == "no-store"
    body = created.json()
    token = client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": body["client_id"],
                                               "client_secret": body["client_secret"]})
    assert token.status_code == 200
    shown = client.get(f"/api/v1/clients/{body['client_id']}", headers=admin).json()
    assert "client_secret" not in shown and shown["department"] == code
    assert body["client_id"] in [c["client_id"] for c in client.get("/api/v1/clients", params={"department": code},
                                                                     headers=admin).json()["items"]]
    assert client.post(f"/api/v1/clients/{body['client_id']}/disable", headers=admin).json()["disabled_at"] is not None
    refused = client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": body["client_id"],
                                                 "client_secret": body["client_secret"]})
    assert refused.status_code == 401

    department = bearer(token.json()["access_token"])
    assert client.get("/api/v1/clients", headers=department).status_code == 403
    assert client.post("/api/v1/clients", json={"name": "x", "department": code}, headers=department).status_code == 403
    bad = client.post("/api/v1/clients", json={"name": "x", "department": code, "scopes": ["no:such"]}, headers=admin)
    assert bad.status_code == 422


def test_blob_store_follows_the_setting(runtime: Runtime, tmp_path: Path) -> None:
    assert isinstance(blob_store_for(runtime.settings), DatabaseBlobStore)
    files = blob_store_for(runtime.settings.model_copy(update={"blob_store": "filesystem", "blob_dir": tmp_path}))
    assert isinstance(files, FileBlobStore) and files.root == tmp_path
