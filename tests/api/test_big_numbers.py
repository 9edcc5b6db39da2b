"""Values the database cannot store (numbers beyond its integer types, NUL characters) are refused, never a 500
(found by fuzzing)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from ecert.runtime import Runtime
from tests.identity.conftest import bearer, new_client, token_for

HUGE = str(2**70)


@pytest.mark.parametrize("url", [
    f"/transparency/sth/{HUGE}", f"/transparency/sths?after={HUGE}", f"/transparency/proof/inclusion?leaf_index={HUGE}",
    f"/transparency/proof/consistency?first=1&second={HUGE}", f"/transparency/entries?start={HUGE}&end={HUGE}",
    f"/status-lists/{HUGE}",
])
def test_out_of_range_numbers_are_invalid_input(client: TestClient, url: str) -> None:
    assert client.get(url).status_code == 422


@pytest.mark.parametrize("url", [
    "/api/v1/licences?department=%00x", "/api/v1/licence-types?department=a%00b", "/api/v1/clients?department=%00",
    "/status-lists/19940175615190", f"/api/v1/licences?offset={2**63 + 5}", f"/api/v1/licences?offset={HUGE}",
    "/api/v1/bulk-jobs/x/items?offset=18446744073709551616",
])
def test_unstorable_values_are_invalid_input(client: TestClient, runtime: Runtime, url: str) -> None:
    admin = bearer(token_for(client, new_client(runtime, None, ["platform:admin"])))
    response = client.get(url, headers=admin)
    assert response.status_code in (200, 404, 422), response.text  # SQLite finds nothing; PostgreSQL refuses (422)
