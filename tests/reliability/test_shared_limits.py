"""Rate limits hold across API workers: ``ecert serve`` with ECERT_WORKERS=3 on PostgreSQL, requests on fresh
connections (so both workers answer), and the combined count of admitted requests stays within one limit."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from bench.harness import licence_row
from tests.reliability.conftest import token_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

VERIFY_BURST, LOGIN_BURST, WORKERS = 24, 4, 3


@pytest.fixture
def limited_workers(postgres_workers: Any) -> Any:
    # windows of 240 s (burst / rate): nothing decays while the test runs
    return postgres_workers(WORKERS, ECERT_VERIFY_RATE_PER_SECOND=str(VERIFY_BURST / 240), ECERT_VERIFY_BURST=str(VERIFY_BURST),
                            ECERT_LOGIN_RATE_PER_SECOND=str(LOGIN_BURST / 240), ECERT_LOGIN_BURST=str(LOGIN_BURST),
                            ECERT_RATE_LIMIT_SYNC_SECONDS="0.5")


def _fresh(server: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    with httpx.Client(base_url=server.base, timeout=60) as client:  # a connection of its own: either worker
        return client.request(method, path, **kwargs)


def test_verification_and_login_limits_are_shared_by_the_workers(limited_workers: Any) -> None:
    server, database_url = limited_workers
    headers = {"Authorization": f"Bearer {token_for(server)}"}
    issued = _fresh(server, "POST", "/api/v1/licences", json={"type_code": "BL", **licence_row(random.Random(8))},
                    headers={**headers, "Idempotency-Key": "shared-limits"})
    assert issued.status_code == 201, issued.text
    path = httpx.URL(issued.json()["verification_url"]).path
    lookup = {"headers": {"Accept": "application/json"}}

    first = [_fresh(server, "GET", path, **lookup) for _ in range(4)]  # within the provisional allowance
    assert [r.status_code for r in first] == [200] * 4
    time.sleep(1.5)  # both workers have synced their claims
    with ThreadPoolExecutor(8) as pool:
        rest = list(pool.map(lambda _: _fresh(server, "GET", path, **lookup), range(60)))
    answers = first + rest
    admitted = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code == 429]
    assert len(admitted) + len(refused) == len(answers), {r.status_code for r in answers}
    # one worker alone would admit VERIFY_BURST, three independent ones three times that
    assert VERIFY_BURST // 2 <= len(admitted) <= VERIFY_BURST, len(admitted)
    assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
    assert refused[0].headers["content-type"].startswith("application/problem+json")

    logins = [_fresh(server, "POST", "/portal/login", data={"login_name": "110101199001011237", "password": "wrong 123456"})
              for _ in range(LOGIN_BURST + 4)]
    assert [r.status_code for r in logins] == [401] * LOGIN_BURST + [429] * 4  # exact: counted in the database

    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            workers = connection.execute(sa.text("SELECT count(*) FROM ecert_rate_worker WHERE scope = 'verify'")).scalar_one()
    finally:
        engine.dispose()
    assert workers == WORKERS  # every worker served lookups and synced
