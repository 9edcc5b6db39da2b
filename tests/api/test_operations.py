"""Health, readiness (with real outages), metrics, OpenAPI and log hygiene."""

from __future__ import annotations

import io
import logging

from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from ecert.db import make_engine
from ecert.logs import JsonFormatter
from ecert.runtime import Runtime, keystore_for
from ecert.settings import Settings
from keys import VaultCredentials
from keys.openbao import ManagedOpenBao, free_port
from tests.support.services import services_for


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "vault": "ok"}


def test_readiness_follows_vault_seal_and_recovers(
    private_openbao: tuple[ManagedOpenBao, VaultCredentials], settings: Settings, runtime: Runtime
) -> None:
    server, credentials = private_openbao
    own = settings.model_copy(
        update={"vault_addr": server.addr, "vault_role_id": credentials.role_id, "vault_secret_id": SecretStr(credentials.secret_id or "")}
    )
    app = create_app(services_for(Runtime(settings=own, engine=runtime.engine, keystore=keystore_for(own))))
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
        server.seal()
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["retry-after"] == "5"
        assert response.json()["checks"]["vault"] == "sealed"
        server.stop()
        assert client.get("/readyz").json()["checks"]["vault"] == "unavailable"
        server.start()
        assert client.get("/readyz").status_code == 200  # recovered without restarting ecert


def test_readiness_reports_an_unreachable_database(runtime: Runtime) -> None:
    dead = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none", pool_timeout=1, connect_args={"connect_timeout": 1})
    app = create_app(services_for(Runtime(settings=runtime.settings, engine=dead, keystore=runtime.keystore)))
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "unavailable", "vault": "ok"}


def test_metrics_count_requests_by_route(client: TestClient) -> None:
    client.get("/healthz")
    text = client.get("/metrics").text
    assert 'ecert_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert "ecert_http_request_duration_seconds_bucket" in text


def test_openapi_is_published(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "ecert"
    assert "/readyz" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_logs_never_carry_id_numbers_or_secrets(client: TestClient) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        client.get("/nowhere/510104199001011234", headers={"authorization": "Bearer eyJhbGciOi.eyJzdWIi.c2ln"})
        logging.getLogger("probe").warning(
            "holder 51010419900101123X presented token eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxIn0.sig and secret_id=abc-123"
        )
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    output = stream.getvalue()
    assert '"route": "unmatched"' in output  # the access log has the route template, never the raw path
    for leaked in ("510104199001011234", "51010419900101123X", "eyJhbGciOi", "abc-123"):
        assert leaked not in output
    assert "[id-number]" in output and "[jwt]" in output
