"""Connections killed under keyed load (pg_terminate_backend on the server's own backends): every 503 that says
"nothing was changed" is true, and retrying every unanswered request with its own key yields exactly one licence
each (no duplicate, no loss)."""

from __future__ import annotations

import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from bench.harness import licence_row
from tests.reliability.conftest import audit_verify, token_for
from tests.reliability.test_database_restart import _terminate_backends_of
from tests.reliability.test_faults import _check_records

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CLIENTS, PER_CLIENT = 12, 8
NOTHING_CHANGED = "/problems/database-unavailable"
MAY_HAVE_CHANGED = "/problems/outcome-unknown"


def _licences_by_key(database_url: str) -> dict[str, int]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text(
                "SELECT idempotency_key, count(*) FROM licence WHERE idempotency_key IS NOT NULL GROUP BY 1")).all()
    finally:
        engine.dispose()
    return {key: count for key, count in rows}


def test_killed_connections_never_lie_and_keyed_retries_never_duplicate(postgres_workers: Any) -> None:
    server, database_url = postgres_workers(1)
    headers = {"Authorization": f"Bearer {token_for(server)}"}
    rng = random.Random(17)
    jobs = [(uuid.uuid4().hex, {"type_code": "BL", **licence_row(rng)}) for _ in range(CLIENTS * PER_CLIENT)]
    admin = sa.create_engine(str(sa.engine.make_url(database_url).set(query={})))
    done, kills = threading.Event(), [0]

    def killer() -> None:
        while not done.is_set():
            kills[0] += _terminate_backends_of(server, admin)
            done.wait(0.2)

    def issue(job: tuple[str, dict[str, Any]]) -> tuple[str, int, str]:
        key, body = job
        with httpx.Client(base_url=server.base, timeout=120) as client:
            response = client.post("/api/v1/licences", json=body, headers={**headers, "Idempotency-Key": key})
        kind = response.json().get("type", "") if response.status_code >= 400 else ""
        assert response.status_code in (200, 201, 503), response.text  # never a 500 for a lost database
        if response.status_code == 503:
            assert int(response.headers["Retry-After"]) > 0
        return key, response.status_code, kind

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = list(pool.map(issue, jobs))
    finally:
        done.set()
        thread.join()
    assert kills[0] > 0

    stored = _licences_by_key(database_url)
    claimed_nothing = [key for key, status, kind in answers if kind == NOTHING_CHANGED]
    assert [key for key in claimed_nothing if key in stored] == []  # every "nothing was changed" was true
    assert all(stored.get(key) == 1 for key, status, _ in answers if status in (200, 201))

    bodies = dict(jobs)
    pending = [key for key, status, _ in answers if status not in (200, 201)]
    deadline = time.monotonic() + 120
    while pending and time.monotonic() < deadline:  # the clients' retries, each with its own key
        retried = []
        with httpx.Client(base_url=server.base, timeout=120) as client:
            for key in pending:
                response = client.post("/api/v1/licences", json=bodies[key], headers={**headers, "Idempotency-Key": key})
                assert response.status_code in (200, 201, 409, 503), response.text
                if response.status_code not in (200, 201):
                    retried.append(key)
        pending = retried
        time.sleep(0.5)
    assert pending == []

    stored = _licences_by_key(database_url)
    assert {key: stored.get(key) for key, _ in jobs} == {key: 1 for key, _ in jobs}  # one licence per key
    _check_records(database_url)
    summary = {kind or str(status): sum(1 for _, s, k in answers if (k or str(s)) == (kind or str(status)))
               for _, status, kind in answers}
    print(f"kills={kills[0]} answers={summary}")
    admin.dispose()
    assert audit_verify(server, database_url)["ok"] is True
