"""Every error is RFC 9457 problem+json with a stable type; outages are 503 with Retry-After."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from api.app import create_app
from api.problems import PROBLEM_JSON
from ecert.errors import Conflict
from ecert.runtime import Runtime
from keys import VaultUnavailable
from tests.support.services import services_for


class Body(BaseModel):
    name: str = Field(min_length=2)
    count: int = Field(ge=1)
    tags: list[str] = []


@pytest.fixture(scope="module")
def probe_client(runtime: Runtime) -> TestClient:
    app = create_app(services_for(runtime))

    @app.post("/probe/echo")
    def echo(body: Body) -> Body:
        return body

    @app.get("/probe/vault-down")
    def vault_down() -> None:
        raise VaultUnavailable("Vault is sealed")

    @app.get("/probe/conflict")
    def conflict() -> None:
        raise Conflict("already revoked", current_status="revoked")

    @app.get("/probe/database-down")
    def database_down() -> None:
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))

    @app.get("/probe/bug")
    def bug() -> None:
        raise RuntimeError("secret internals")

    return TestClient(app, raise_server_exceptions=False)


def _problem(response, status: int, slug: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["type"] == f"/problems/{slug}"
    assert body["status"] == status
    assert body["title"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body  # type: ignore[no-any-return]


def test_unknown_route_and_method(probe_client: TestClient) -> None:
    _problem(probe_client.get("/nowhere"), 404, "not-found")
    _problem(probe_client.delete("/healthz"), 405, "method-not-allowed")


def test_validation_errors_point_at_each_field(probe_client: TestClient) -> None:
    body = _problem(probe_client.post("/probe/echo", json={"name": "x", "count": 0, "tags": [1]}), 422, "validation-error")
    pointers = {error["pointer"] for error in body["errors"]}
    assert pointers == {"#/name", "#/count", "#/tags/0"}
    body = _problem(probe_client.post("/probe/echo", content=b"{not json", headers={"content-type": "application/json"}), 422, "validation-error")
    assert body["errors"]


def test_domain_errors_keep_their_slug_and_extensions(probe_client: TestClient) -> None:
    body = _problem(probe_client.get("/probe/conflict"), 409, "conflict")
    assert body["detail"] == "already revoked"
    assert body["current_status"] == "revoked"
    assert body["instance"] == "/probe/conflict"


def test_outages_are_503_with_retry_after(probe_client: TestClient) -> None:
    response = probe_client.get("/probe/vault-down")
    _problem(response, 503, "vault-unavailable")
    assert int(response.headers["retry-after"]) > 0
    response = probe_client.get("/probe/database-down")
    _problem(response, 503, "database-unavailable")
    assert int(response.headers["retry-after"]) > 0


def test_unexpected_errors_reveal_nothing(probe_client: TestClient) -> None:
    body = _problem(probe_client.get("/probe/bug"), 500, "internal-error")
    assert "secret internals" not in str(body)


def test_problem_types_are_documented(probe_client: TestClient) -> None:
    page = probe_client.get("/problems/vault-unavailable")
    assert page.status_code == 200 and "Vault" in page.text
    assert probe_client.get("/problems/no-such-type").status_code == 404


def test_request_ids_are_echoed_or_generated(probe_client: TestClient) -> None:
    assert probe_client.get("/healthz", headers={"x-request-id": "abc-123"}).headers["x-request-id"] == "abc-123"
    generated = probe_client.get("/healthz", headers={"x-request-id": "bad id <script>"}).headers["x-request-id"]
    assert len(generated) == 32 and "<" not in generated
