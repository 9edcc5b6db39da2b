"""The database drops every connection of the service (as in a PostgreSQL restart or failover): requests in the gap
fail cleanly (503 + Retry-After, nothing half-written) and the service reconnects by itself.

The server's own backends are found by their client ports (psutil) and ended with pg_terminate_backend, so other
users of the shared test server are untouched.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest
import sqlalchemy as sa

from bench.harness import database, licence_row, start_server
from tests.reliability.conftest import audit_verify, token_for
from tests.reliability.test_faults import _check_records, _issue

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _terminate_backends_of(server: Any, admin: sa.Engine) -> int:
    ports = set()
    for proc in [psutil.Process(server.process.pid), *psutil.Process(server.process.pid).children(recursive=True)]:
        for conn in proc.net_connections(kind="tcp"):
            if conn.raddr and conn.raddr.port == 5432:
                ports.add(conn.laddr.port)
    with admin.begin() as connection:
        ended = connection.execute(sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE client_port = ANY(:ports)"),
            {"ports": list(ports)}).scalar_one()
    return int(ended)


def test_connections_dropped_then_service_recovers(tmp_path: Path) -> None:
    url = os.environ.get("ECERT_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("PostgreSQL not available (set ECERT_TEST_POSTGRES_URL)")
    admin = sa.create_engine(url)
    with database("postgresql", tmp_path, url) as database_url:
        server = start_server(tmp_path / "data", database_url, workers=1)
        try:
            token = token_for(server)
            rng = random.Random(9)
            assert _issue(server.base, token, uuid.uuid4().hex, {"type_code": "BL", **licence_row(rng)}).status_code == 201
            assert _terminate_backends_of(server, admin) >= 1

            key, body = uuid.uuid4().hex, {"type_code": "BL", **licence_row(rng)}
            answers = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                response = _issue(server.base, token, key, body)
                answers.append(response.status_code)
                if response.status_code in (200, 201):
                    break
                assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0, response.text
                time.sleep(0.5)
            assert answers[-1] in (200, 201), answers
            assert _issue(server.base, token, key, body).json()["id"] == response.json()["id"]
            rows = _check_records(database_url)
            assert sum(1 for r in rows if r["idempotency_key"] == key) == 1
            assert audit_verify(server, database_url)["ok"] is True
        finally:
            server.stop()
    admin.dispose()
