"""Several API workers (ECERT_WORKERS=2) against one PostgreSQL and one Vault: no duplicate licence numbers, one
licence per idempotency key whichever worker answers, and the audit chain intact."""

from __future__ import annotations

import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psutil
import pytest
import sqlalchemy as sa

from bench.harness import licence_row
from tests.reliability.conftest import audit_verify, token_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def two_workers(postgres_workers: Any) -> Any:
    return postgres_workers(2)


def test_two_workers_issue_concurrently_without_duplicates(two_workers: Any) -> None:
    server, database_url = two_workers
    workers = [p for p in psutil.Process(server.process.pid).children(recursive=True) if "bao" not in p.name()]
    assert len(workers) >= 2
    token = token_for(server)
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(5)
    bodies = [{"type_code": "BL", **licence_row(rng)} for _ in range(24)]
    shared_key, shared_body = uuid.uuid4().hex, {"type_code": "BL", **licence_row(rng)}

    def issue(job: tuple[str, dict[str, Any]]) -> httpx.Response:
        key, body = job
        with httpx.Client(base_url=server.base, timeout=120) as client:  # a connection of its own: any worker
            return client.post("/api/v1/licences", json=body, headers={**headers, "Idempotency-Key": key})

    jobs = [(uuid.uuid4().hex, body) for body in bodies] + [(shared_key, shared_body)] * 8
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(issue, jobs))
    distinct, shared = answers[:24], answers[24:]
    assert [r.status_code for r in distinct] == [201] * 24, [r.text for r in distinct if r.status_code != 201]
    assert {r.status_code for r in shared} <= {200, 201, 409}, [r.text for r in shared]
    shared_ids = {r.json()["id"] for r in shared if r.status_code in (200, 201)}
    assert len(shared_ids) == 1
    assert issue((shared_key, shared_body)).json()["id"] in shared_ids  # the retry, whichever worker takes it

    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT number, token, idempotency_key FROM licence")).all()
    finally:
        engine.dispose()
    assert len({r.number for r in rows}) == len(rows) and len({r.token for r in rows}) == len(rows)
    assert sum(1 for r in rows if r.idempotency_key == shared_key) == 1
    assert audit_verify(server, database_url)["ok"] is True
